"""The inbox on PostgreSQL: its migration goes up and down, and readers that pick up the same
`contact` events at the same moment make one item per event."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import func, inspect, select

from kindly.campaigns.models import Debtor
from kindly.inbox import service
from kindly.inbox.models import InboxItem
from kindly.infra.db import MIGRATIONS
from kindly.tracking import events
from tests.support.app import installed, load_campaign, make_settings


def _alembic(ctx, action, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with ctx.db.engine.begin() as conn:
        config.attributes["connection"] = conn
        action(config, revision)


def test_concurrent_readers_make_one_item_per_contact_event(tmp_path, postgres_url):
    settings = make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url)
    with installed(settings) as ctx:
        _alembic(ctx, command.downgrade, "-1")
        assert "inbox_item" not in inspect(ctx.db.engine).get_table_names()
        _alembic(ctx, command.upgrade, "head")
        campaign_id = load_campaign(ctx)
        with ctx.db.session() as session:
            for debtor in session.scalars(select(Debtor)):
                for n in range(20):
                    events.record(session, debtor, "contact", channel="web",
                                  data={"topic": "question", "message": f"Frage {n}"})  # fmt: skip
        start = threading.Barrier(4)
        made: list[int] = []
        errors: list[BaseException] = []

        def read() -> None:
            try:
                with ctx.db.session() as session:
                    start.wait()
                    made.append(service.collect(session, campaign_ids=[campaign_id]))
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(4)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        assert errors == []
        with ctx.db.session() as session:
            items = session.scalar(select(func.count(InboxItem.id)))
            distinct = session.scalar(select(func.count(func.distinct(InboxItem.event_id))))
        assert items == distinct == 60
        assert sum(made) == 60  # a reader that lost the race to an event counts nothing for it
