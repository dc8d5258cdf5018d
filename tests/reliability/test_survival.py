"""Survival drills: a worker killed mid-render, an event writer that crashes, a database that
goes away. Each drill counts what went in and what came out: nothing may be lost or doubled."""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

import kindly.tracking.eventbuffer as eventbuffer
from kindly.campaigns.models import Debtor
from kindly.infra.db import Database
from kindly.site.models import Artifact
from kindly.tracking.eventbuffer import RedisEventBuffer, Writer
from kindly.tracking.models import Event
from tests.reliability.conftest import DOWN, PHONE, start_worker, stop, wait_for
from tests.support.app import load_campaign

pytestmark = pytest.mark.integration


# ---- a worker killed in the middle of a render ------------------------------------------------


def test_a_worker_killed_mid_render_is_retried_and_stores_the_video_once(stack, stack_env):
    from rq.job import Job
    from rq.registry import StartedJobRegistry

    from workers import queues
    from workers.render import enqueue_renders

    load_campaign(stack)
    with stack.db.session() as session:
        debtor_id = session.scalar(select(Debtor.id).where(Debtor.reference == "A-2"))
    (handle,) = enqueue_renders(stack, [debtor_id], ["video"])
    redis = queues.redis_connection(stack.settings)
    job = Job.fetch(handle.id, connection=redis)
    retries = job.retries_left

    scratch = Path(stack_env["KINDLY_DATA_DIR"]).parent / "worker-tmp"  # the worker's TMPDIR
    scratch.mkdir()
    first = start_worker(stack_env | {"TMPDIR": str(scratch)}, "video")
    try:
        wait_for(lambda: job.get_status(refresh=True) == "started", 60, "the render to start")
        # the personal scenes are handed to ffmpeg: encoding has begun, joining has not
        wait_for(lambda: any(scratch.glob("kindly-video-*/personal-*.raw")), 60, "the encoding")
    finally:
        stop(first, signal.SIGKILL)  # the machine dies: worker and work horse at once
    assert job.get_status(refresh=True) == "started", "the render finished before the kill"
    with stack.db.session() as session:
        assert session.scalar(select(func.count(Artifact.id)).where(Artifact.kind == "video")) == 0

    # Nobody heartbeats the job any more; once its heartbeat expires (at most 90 s with RQ's
    # defaults) any worker's maintenance or registry cleanup retries it. Jump that far ahead.
    registry = StartedJobRegistry(queues.VIDEO, connection=redis)
    registry.cleanup(timestamp=time.time() + 120)
    assert job.get_status(refresh=True) in ("scheduled", "queued")
    job.refresh()
    assert job.retries_left == retries - 1  # one attempt used up, the rest still there

    second = start_worker(stack_env, "video")  # the scheduler in it re-queues after 10 s
    try:
        wait_for(lambda: job.get_status(refresh=True) in ("finished", "failed"), 90, "the retry")
    finally:
        stop(second)
    assert job.get_status(refresh=True) == "finished"
    with stack.db.session() as session:
        videos = session.scalars(
            select(Artifact).where(Artifact.debtor_id == debtor_id, Artifact.kind == "video")
        ).all()
        kinds = set(session.scalars(select(Artifact.kind).where(Artifact.debtor_id == debtor_id)))
    assert len(videos) == 1
    data = stack.storage.get(videos[0].key)
    assert hashlib.sha256(data).hexdigest() == videos[0].sha256  # complete, as recorded
    assert b"moov" in data and len(data) == videos[0].size
    assert {"video", "poster", "captions"} <= kinds
    leftovers = [p for p in (Path(stack_env["KINDLY_DATA_DIR"])).rglob("*") if ".tmp" in p.name]
    assert leftovers == []  # nothing half-written next to the artifacts


# ---- the event writer -------------------------------------------------------------------------


def stored(context) -> tuple[int, int]:
    """(events stored, distinct idempotency keys) apart from sends."""
    with context.db.session() as session:
        return session.execute(
            select(func.count(Event.id), func.count(func.distinct(Event.idempotency_key))).where(
                Event.type != "sent"
            )
        ).one()


class Crash(BaseException):
    """The process dies here (BaseException: nothing on the way catches it)."""


class CrashingRedis:
    """A Redis client that dies on the first XACK: the batch is committed, never acknowledged."""

    def __init__(self, redis):
        self._redis = redis

    def __getattr__(self, name):
        return getattr(self._redis, name)

    def xack(self, *args):
        raise Crash


def test_events_survive_a_writer_crash_and_are_stored_exactly_once(buffered, monkeypatch):
    context, client, token = buffered
    monkeypatch.setattr(eventbuffer, "BATCH", 100)
    for _ in range(250):
        assert client.get(f"/o/{token}.gif").status_code == 200
    redis = context.event_buffer.redis

    # 1. a writer dies after its commit and before acknowledging: 100 stored, still pending
    with pytest.raises(Crash):
        RedisEventBuffer(CrashingRedis(redis)).flush(context.db)
    assert stored(context) == (100, 100)
    # 2. another dies before its commit (the database connection breaks): nothing stored
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        RedisEventBuffer(redis).flush(Database(DOWN))
    assert stored(context) == (100, 100)
    assert context.event_buffer.waiting() == 250  # every entry is still in the stream

    # 3. a restarted writer (a new consumer) takes over what the dead ones held once they
    #    have been idle CLAIM_IDLE_MS, then reads the rest
    monkeypatch.setattr(eventbuffer, "CLAIM_IDLE_MS", 0)
    assert RedisEventBuffer(redis).flush_all(context.db) == 250
    assert stored(context) == (250, 250)  # the 100 delivered twice are stored once
    assert context.event_buffer.waiting() == 0
    assert redis.xpending(eventbuffer.STREAM, eventbuffer.GROUP)["pending"] == 0


class Switchable:
    """The writer's database, which can go away and come back."""

    def __init__(self, db):
        self.up, self.down = db, Database(DOWN)
        self.current = self.down

    def session(self):
        return self.current.session()


def test_database_down_the_front_answers_and_events_are_written_when_it_returns(buffered, caplog):
    context, client, token = buffered
    caplog.set_level(logging.WARNING, logger=eventbuffer.log.name)

    def failures() -> int:
        return sum("event writer:" in record.getMessage() for record in caplog.records)

    client.get(f"/o/{token}.gif")  # the token is in the front's cache
    database = Switchable(context.db)
    writer = Writer(context.event_buffer, database)
    writer.start()
    try:
        answered = []
        for _ in range(300):
            started = time.perf_counter()
            response = client.get(f"/o/{token}.gif")
            answered.append((response.status_code, time.perf_counter() - started))
        assert {status for status, _ in answered} == {200}
        assert max(seconds for _, seconds in answered) < 1.0
        failed = failures()  # the writer keeps failing and retrying meanwhile
        wait_for(lambda: failures() >= failed + 2, 15, "the writer to fail twice more")
        assert stored(context) == (0, 0)
        assert context.event_buffer.waiting() == 301
        assert writer.is_alive()

        database.current = database.up  # the database is back
        back = time.monotonic()
        wait_for(lambda: stored(context)[0] >= 301, 15, "the buffered events")
        drained = time.monotonic() - back
        wait_for(lambda: context.event_buffer.waiting() == 0, 5, "the stream to empty")
    finally:
        writer.stopping.set()
        writer.join(timeout=5)
    assert stored(context) == (301, 301)
    assert drained < 5  # its own held batch is retried at once, not after CLAIM_IDLE_MS


def test_the_writer_recreates_a_group_redis_lost(buffered):
    context, client, token = buffered
    client.get(f"/o/{token}.gif")
    assert context.event_buffer.flush_all(context.db) == 1
    context.event_buffer.redis.flushdb()  # Redis restarted without its data
    client.get(f"/o/{token}.gif")
    assert context.event_buffer.flush_all(context.db) == 1
    assert stored(context) == (2, 2)


def test_hits_during_the_outage_from_many_threads_are_all_kept(buffered):
    context, client, token = buffered
    app = client.application
    client.get(f"/o/{token}.gif")
    statuses: list[int] = []

    def hammer() -> None:
        local = app.test_client()
        local.environ_base["HTTP_USER_AGENT"] = PHONE
        statuses.extend(local.get(f"/o/{token}.gif").status_code for _ in range(100))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 400
    assert context.event_buffer.waiting() == 401
    assert context.event_buffer.flush_all(context.db) == 401
    assert stored(context) == (401, 401)
