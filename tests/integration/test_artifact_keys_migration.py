"""Migration 0980 on a database Kindly filled under the old, reference-named storage keys:
every row whose folder two debtors shared goes (its object may be the other's), the rest stay,
and from then on no two rows may name one object."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.tokens import new_token
from kindly.context import Context
from kindly.infra.db import MIGRATIONS, utcnow
from kindly.infra.storage import legacy_artifact_key
from kindly.site.models import Artifact
from tests.support.app import make_settings

PEOPLE = (("A/1", "Alpha"), ("A 1", "Beta"), ("A-2", "Own"), ("B/2", "Only"), ("B 2", "Never"))
OLD_ROWS = [  # (reference, kind) as Kindly before 0980 recorded them
    ("A/1", "site"),  # A/1 and A 1 both stored their page at campaigns/old/A_1/site.html
    ("A 1", "site"),
    ("A 1", "letter"),  # only A 1 had a letter: still in the shared folder
    ("A-2", "site"),  # A-2's folder was its own
    ("A-2", "letter"),
    ("B/2", "site"),  # B 2 never kept a row, but a rendering of it may have overwritten this
]


def upgrade(context: Context, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with context.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request, tmp_path) -> Context:
    env = {}
    if request.param == "postgresql":
        env["KINDLY_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    context = Context(make_settings(Path(tmp_path / "var"), **env))
    for revision in ("0970", "0960"):  # the heads before 0980 (0960 is a branch of its own)
        upgrade(context, revision)
    with context.db.session() as session:
        # the columns of the time (the models have more, which this schema does not have yet)
        campaign_id = session.execute(insert(Campaign.__table__).values(
            slug="old", name="Old", default_locale="de-DE", brand_color="#1f5f8b", settings={},
            created_at=utcnow()).returning(Campaign.__table__.c.id)).scalar_one()  # fmt: skip
        session.execute(insert(Debtor.__table__), [
            {"campaign_id": campaign_id, "reference": ref, "token": new_token(),
             "last_name": name, "currency": "EUR", "amount_due_minor": 1000,
             "due_date": dt.date(2026, 12, 15), "attributes": {}, "segment": "default",
             "variant": "A", "channel": "email", "created_at": utcnow(), "updated_at": utcnow()}
            for ref, name in PEOPLE
        ])  # fmt: skip
        ids = dict(session.execute(select(Debtor.reference, Debtor.id)).all())
        # the columns of the time: the model has more, which this schema does not have yet
        session.execute(insert(Artifact.__table__), [
            {"debtor_id": ids[reference], "kind": kind, "sha256": "0" * 64, "size": 1,
             "key": legacy_artifact_key("old", reference, kind), "content_type": "text/html"}
            for reference, kind in OLD_ROWS
        ])  # fmt: skip
    return context


def test_rows_of_shared_folders_go_and_keys_become_unique(old_database):
    context = old_database
    context.db.migrate()  # to the head, as `kindly serve` and the workers do on start
    with context.db.session() as session:
        left = session.execute(
            select(Debtor.reference, Artifact.kind, Artifact.key).join(Debtor).order_by(Artifact.id)
        ).all()
    assert left == [
        ("A-2", "site", "campaigns/old/A-2/site.html"),
        ("A-2", "letter", "campaigns/old/A-2/letter.pdf"),
    ]
    with pytest.raises(IntegrityError), context.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A/1"))
        session.add(Artifact(debtor_id=anna.id, kind="site", key="campaigns/old/A-2/site.html",
                             sha256="1" * 64, size=1, content_type="text/html"))  # fmt: skip
        session.flush()
    context.db.dispose()
