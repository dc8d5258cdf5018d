"""The front with the local event journal on: the fast lane and Flask answer alike and
journal the same events, which the shipper stores once each (kindly.tracking.journal)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, update

from kindly.campaigns.models import Debtor
from kindly.site.pagewatch import PageWatch
from kindly.tracking.eventbuffer import Writer
from kindly.tracking.models import Event
from kindly.tracking.shipper import Shipper
from tests.integration.conftest import PHONE
from tests.integration.test_fastlane import REQUESTS, exchange, flask_paths
from tests.support.app import front_client, installed, load_campaign, make_settings

pytestmark = pytest.mark.integration
FIVE_MINUTES = dt.timedelta(minutes=5)


@pytest.fixture
def journaled(tmp_path, postgres_url, redis_url):
    """The front on PostgreSQL with a journal folder; tests drive the shipper."""
    for thread in threading.enumerate():
        if isinstance(thread, Writer | PageWatch):
            thread.stopping.set()
            thread.join(timeout=5)
    settings = make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url,
                             KINDLY_REDIS_URL=redis_url,
                             KINDLY_JOURNAL=str(tmp_path / "journal"))  # fmt: skip
    with installed(settings) as context:
        load_campaign(context)
        client = front_client(context, user_agent=PHONE, TESTING=True, KINDLY_EVENT_WRITER=False)
        with context.db.session() as session:
            token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
        shipper = Shipper(settings.journal, context.db)
        assert shipper.acquire()
        yield context, client, token, shipper
        shipper.release()


def shipped(context, shipper) -> list[tuple]:
    """Ship the journal; the stored tracking events, the random parts left out."""
    shipper.drain()
    with context.db.session() as session:
        rows = session.scalars(select(Event).where(Event.type != "sent").order_by(Event.id))
        return [(e.type, e.channel, e.agent, e.variant, e.debtor_id, e.data) for e in rows]


def test_with_the_journal_the_lane_answers_as_flask_does_and_both_journal_alike(journaled):
    context, client, token, shipper = journaled
    app = client.application
    seen = flask_paths(client)
    client.get(f"/o/{token}.gif")  # the lane reads a new token itself; Flask builds the page
    client.get(f"/s/{token}")
    assert seen == [f"/s/{token}"]
    warm = len(shipped(context, shipper))
    assert warm == 2
    answers = {}
    for run, lane in enumerate((True, False)):
        app.config["KINDLY_FAST_LANE"] = lane
        with context.db.session() as session:  # a fresh burst window for each run
            session.execute(update(Event).values(occurred_at=Event.occurred_at - FIVE_MINUTES))
        seen.clear()
        answers[lane] = [
            exchange(client, method, path.format(token=token), body and body.format(run=run))
            for method, path, body in REQUESTS
        ]
        assert len(seen) == (0 if lane else len(REQUESTS))
        # nothing went to Redis: every hit is in the journal until shipped
        assert context.event_buffer.waiting() == 0
        stored = shipped(context, shipper)
    lane_events = stored[warm : warm + len(REQUESTS)]
    flask_events = stored[warm + len(REQUESTS) :]
    assert answers[True] == answers[False]
    assert lane_events == flask_events
    agents = [agent for _, _, agent, *_ in lane_events]
    assert agents[:2] == ["unverified"] * 2
    assert agents[3:7] == ["human", "human", "automated", "automated"]


def test_redis_down_the_journal_still_takes_every_hit(journaled, monkeypatch):
    context, client, token, shipper = journaled
    client.get(f"/o/{token}.gif")
    monkeypatch.setattr(context.event_buffer, "redis", None)  # any use of Redis would fail
    context.event_buffer._line.conn = None
    for _ in range(20):
        assert client.get(f"/o/{token}.gif").status_code == 200
        assert client.get(f"/c/{token}?to=pay").status_code == 302
    types = [kind for kind, *_ in shipped(context, shipper)]
    assert types.count("opened") == 21
    assert types.count("clicked") == 20


def test_a_warm_view_asks_neither_the_database_nor_redis_until_its_page_changes(journaled):
    from sqlalchemy import event as sa_event

    from tests.integration.test_fastlane import lane_of, listening, settle

    context, client, token, shipper = journaled
    first = client.get(f"/s/{token}").get_data(as_text=True)  # Flask builds and keeps it
    client.get(f"/s/{token}")  # the lane starts the page watch and reads once
    seq = listening(client)
    client.get(f"/s/{token}")  # read again: the first read came before the watch listened
    statements: list[str] = []

    def note(conn, cursor, sql, *rest) -> None:
        statements.append(sql)

    sa_event.listen(context.db.engine, "before_cursor_execute", note)
    try:
        for _ in range(10):
            assert client.get(f"/s/{token}").get_data(as_text=True) == first
        assert statements == []  # ten views: no query at all
        assert context.event_buffer.waiting() == 0  # and nothing through Redis
        with context.db.session() as session:  # the page changes: the watch is told
            debtor = session.scalar(select(Debtor).where(Debtor.token == token))
            debtor.last_name = "Zoë-Nachname"
        settle(client, seq)
        statements.clear()
        assert "Zoë-Nachname" in client.get(f"/s/{token}").get_data(as_text=True)
        assert statements  # read (and built) again after the change
    finally:
        sa_event.remove(context.db.engine, "before_cursor_execute", note)
    assert lane_of(client)._watch is not None
    viewed = [kind for kind, *_ in shipped(context, shipper)].count("viewed")
    assert viewed == 3 + 10 + 1
