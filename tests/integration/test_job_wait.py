"""Waiting on many RQ jobs: statuses are read a thousand per round trip, and a job whose record
vanished from Redis ends the wait as lost (counted failed) instead of crashing the command."""

from __future__ import annotations

import pytest

from tests.support.app import make_settings
from workers.queues import DEFAULT, Dispatcher, refresh_many

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


def test_waiting_reads_only_the_front_of_each_queue_and_sees_every_job_end(
    tmp_path, redis_url, monkeypatch
):
    import threading

    from rq import Queue, SimpleWorker

    from workers import queues

    dispatcher = Dispatcher(make_settings(tmp_path / "var", KINDLY_REDIS_URL=redis_url))
    handles = [
        dispatcher.enqueue(double, (n,), queue=DEFAULT, job_id=f"wait-{n}", timeout=10)
        for n in range(900)
    ]
    handles.insert(
        500,
        dispatcher.enqueue(
            broken, (7,), queue=DEFAULT, job_id="wait-broken", timeout=10, retries=0
        ),
    )
    reads: list[int] = []
    real = queues.refresh_many

    def counting(front):
        reads.append(len(front))
        real(front)

    monkeypatch.setattr(queues, "refresh_many", counting)
    ended: list[int] = []
    waiting = threading.Thread(
        target=queues.wait_all, args=(handles, ended.append), kwargs={"window": 300}
    )
    waiting.start()
    SimpleWorker([Queue(DEFAULT, connection=dispatcher.redis)], connection=dispatcher.redis).work(
        burst=True
    )  # in this thread: RQ's worker sets signal handlers
    waiting.join(timeout=30)
    assert not waiting.is_alive()
    assert sum(ended) == 901 and all(h.done for h in handles)
    assert handles[500].status == "failed" and handles[500].error == "ValueError: no good: 7"
    assert {h.status for i, h in enumerate(handles) if i != 500} == {"finished"}
    assert reads and max(reads) <= 300  # never a pass over all 901
