"""Waiting on many RQ jobs: statuses are read a thousand per round trip, and a job whose record
vanished from Redis ends the wait as lost (counted failed) instead of crashing the command."""

from __future__ import annotations

import pytest

from kindly.workers.queues import DEFAULT, Dispatcher, refresh_many
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


def double(n: int) -> int:
    """A job that works."""
    return 2 * n


def broken(n: int) -> int:
    """A job that fails, with a reason."""
    raise ValueError(f"no good: {n}")


def test_statuses_of_many_jobs_in_few_round_trips_and_a_lost_one(tmp_path, redis_url):
    from rq import Queue, SimpleWorker

    dispatcher = Dispatcher(make_settings(tmp_path / "var", KINDLY_REDIS_URL=redis_url))
    handles = [
        dispatcher.enqueue(double, (n,), queue=DEFAULT, job_id=f"double-{n}", timeout=10)
        for n in range(1200)
    ]
    handles.append(
        dispatcher.enqueue(broken, (7,), queue=DEFAULT, job_id="broken", timeout=10, retries=0)
    )
    refresh_many(handles)
    assert {h.status for h in handles} == {"queued"}
    SimpleWorker([Queue(DEFAULT, connection=dispatcher.redis)], connection=dispatcher.redis).work(
        burst=True
    )
    handles[5].rq_job.delete()  # as if Redis had evicted it
    commands = []
    real = dispatcher.redis.pipeline

    def counting(*args, **kwargs):
        commands.append(1)
        return real(*args, **kwargs)

    dispatcher.redis.pipeline = counting
    refresh_many(handles)
    assert len(commands) == 2  # 1,201 jobs, a thousand per round trip
    assert handles[5].status == "lost" and handles[5].done and "vanished" in handles[5].error
    assert handles[-1].status == "failed" and handles[-1].error == "ValueError: no good: 7"
    others = [h.status for i, h in enumerate(handles[:-1]) if i != 5]
    assert set(others) == {"finished"}
