"""Hits go through a Redis stream into PostgreSQL: none lost, none twice, database down or not."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kindly.tracking.eventbuffer import STREAM, RedisEventBuffer
from kindly.tracking.models import Event

pytestmark = pytest.mark.integration


def stored(context) -> int:
    with context.db.session() as session:
        return session.scalar(select(func.count(Event.id)).where(Event.type != "sent"))


def test_hits_wait_in_the_stream_and_are_written_in_a_batch(buffered):
    context, client, token = buffered
    for _ in range(20):
        assert client.get(f"/o/{token}.gif").status_code == 200
    assert client.get(f"/c/{token}?to=pay&c=email").status_code == 302
    assert stored(context) == 0  # nothing written on the request path
    assert context.event_buffer.waiting() == 21
    assert context.event_buffer.flush_all(context.db) == 21
    assert stored(context) == 21
    assert context.event_buffer.waiting() == 0


def test_database_down_loses_nothing(buffered):
    context, client, token = buffered
    for _ in range(5):
        client.get(f"/o/{token}.gif")
    # the writer meets a database it cannot reach: the entries stay in the stream
    from kindly.infra.db import Database

    down = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        context.event_buffer.flush(down)
    assert context.event_buffer.waiting() == 5
    # a second writer takes over what the first one held, once it has been idle long enough
    other = RedisEventBuffer(context.event_buffer.redis)
    import kindly.tracking.eventbuffer as eventbuffer

    original, eventbuffer.CLAIM_IDLE_MS = eventbuffer.CLAIM_IDLE_MS, 0
    try:
        assert other.flush_all(context.db) == 5
    finally:
        eventbuffer.CLAIM_IDLE_MS = original
    assert stored(context) == 5


def test_a_batch_delivered_twice_is_stored_once(buffered):
    context, client, token = buffered
    client.post(
        f"/s/{token}/e", data='{"type": "view", "id": "page-0001"}', content_type="text/plain"
    )
    client.post(
        f"/s/{token}/e", data='{"type": "view", "id": "page-0001"}', content_type="text/plain"
    )
    redis = context.event_buffer.redis
    entries = redis.xrange(STREAM)
    assert len(entries) == 2
    context.event_buffer.flush_all(context.db)
    assert stored(context) == 1  # the same page load's beacon: one view


def test_the_writer_thread_drains_the_stream(buffered):
    import time

    from kindly.tracking.eventbuffer import Writer

    context, client, token = buffered
    writer = Writer(context.event_buffer, context.db)
    writer.start()
    try:
        for _ in range(3):
            client.get(f"/o/{token}.gif")
        deadline = time.monotonic() + 10
        while stored(context) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        writer.stopping.set()
        writer.join(timeout=5)
    assert stored(context) == 3


def test_a_repeated_hit_costs_no_database_query(buffered):
    from sqlalchemy import event

    context, client, token = buffered
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, …)
    event.listen(context.db.engine, "before_cursor_execute", listener)
    try:
        client.get(f"/o/{token}.gif")  # the first hit reads the token
        first = len(statements)
        for _ in range(10):
            assert client.get(f"/o/{token}.gif").status_code == 200
            assert client.get(f"/c/{token}?to=site&c=sms").status_code == 302
    finally:
        event.remove(context.db.engine, "before_cursor_execute", listener)
    assert first > 0
    assert len(statements) == first  # the next twenty went to the cache and the stream only
    assert context.event_buffer.waiting() == 21


def test_buffered_hits_are_stored_with_every_field(buffered):
    context, client, token = buffered
    client.get(f"/o/{token}.gif")
    client.get(f"/c/{token}?to=pay&c=sms")
    client.post(f"/s/{token}/e", data='{"type": "video_progress", "id": "page-0002", "pct": 50}')
    assert context.event_buffer.flush_all(context.db) == 3
    with context.db.session() as session:
        rows = {e.type: e for e in session.scalars(select(Event).where(Event.type != "sent"))}
    assert (rows["opened"].channel, rows["opened"].agent, rows["opened"].data) == (
        "email", "human", {}
    )  # fmt: skip
    assert (rows["clicked"].channel, rows["clicked"].data) == ("sms", {"to": "pay"})
    progress = rows["video_progress"]
    assert progress.data == {"via": "beacon", "pct": "50"}
    assert progress.idempotency_key.endswith(":page-0002:50")
    assert progress.variant == "A" and progress.campaign_id and progress.debtor_id
    assert progress.occurred_at.tzinfo is not None


def test_three_links_clicked_within_seconds_are_a_scanner(buffered):
    context, client, token = buffered
    for target in ("site", "pay", "plan", "plan"):
        assert client.get(f"/c/{token}?to={target}").status_code == 302
    context.event_buffer.flush_all(context.db)
    with context.db.session() as session:
        agents = session.scalars(
            select(Event.agent).where(Event.type == "clicked").order_by(Event.id)
        ).all()
    assert agents == ["human", "human", "automated", "automated"]


def test_a_warm_page_on_postgresql_survives_a_dropped_connection(buffered):
    from sqlalchemy import text

    context, client, token = buffered
    assert client.get(f"/s/{token}").status_code == 200
    with context.db.engine.connect() as conn:  # the database drops every other connection
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    response = client.get(f"/s/{token}")
    assert response.status_code == 200
    assert "1.234,56" in response.get_data(as_text=True)
