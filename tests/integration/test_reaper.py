"""The reaper on a real Redis with RQ's own records: a job whose worker stopped beating goes
back on its queue once, at the front, a retry used; the jobs of live workers, of workers
that never beat and of jobs without a retry left are not put back."""

from __future__ import annotations

import pytest
from redis import Redis
from rq import Queue, Retry, SimpleWorker
from rq.job import JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from workers import reaper


@pytest.fixture
def redis(redis_url):
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def taken(redis, queue: Queue, job_id: str, *, retries: int = 3):
    """A job taken by a worker, as RQ records it: started, in the started registry."""
    retry = Retry(max=retries, interval=[10] * retries) if retries else None
    job = queue.enqueue("time.sleep", 0, job_id=job_id, retry=retry)
    queue.remove(job)
    worker = SimpleWorker([queue], connection=redis)
    worker.register_birth()
    worker.prepare_execution(job)
    worker.prepare_job_execution(job)
    assert job.get_status() == JobStatus.STARTED
    return worker, job


def test_a_dead_workers_job_goes_back_to_the_front_once(redis):
    queue = Queue("send", connection=redis)
    queue.enqueue("time.sleep", 0, job_id="waiting")
    worker, job = taken(redis, queue, "send-1-0-email")
    reaper.beat(redis, worker.name)
    assert reaper.reap(redis, ["send"]) == []  # alive: left alone
    redis.delete(reaper.alive_key(worker.name))  # its beat expired: lost, killed, cut off

    assert reaper.reap(redis, ["send"]) == ["send-1-0-email"]
    assert queue.get_job_ids() == ["send-1-0-email", "waiting"]  # at the front
    job.refresh()
    assert job.get_status() == JobStatus.QUEUED and job.retries_left == 2
    assert StartedJobRegistry(queue=queue).get_job_ids(cleanup=False) == []
    # the next beat of any worker finds nothing more; the dead worker is forgotten
    assert reaper.reap(redis, ["send"]) == []
    assert queue.get_job_ids() == ["send-1-0-email", "waiting"]
    assert not redis.hexists(reaper.BEATING, worker.name)


def test_jobs_of_live_workers_and_of_workers_that_never_beat_stay(redis):
    queue = Queue("render", connection=redis)
    live, _ = taken(redis, queue, "render-1-site")
    taken(redis, queue, "render-2-site")  # taken by an `rq worker` without the heart
    reaper.beat(redis, live.name)
    gone, _ = taken(redis, queue, "render-3-site")
    reaper.beat(redis, gone.name)
    redis.delete(reaper.alive_key(gone.name))

    assert reaper.reap(redis, ["render"]) == ["render-3-site"]
    assert sorted(StartedJobRegistry(queue=queue).get_job_ids(cleanup=False)) == [
        "render-1-site",
        "render-2-site",
    ]


def test_a_job_without_a_retry_left_is_failed_by_rqs_cleanup(redis):
    queue = Queue("default", connection=redis)
    worker, job = taken(redis, queue, "sweep-stale-2026-12-01T1000", retries=0)
    reaper.beat(redis, worker.name)
    redis.delete(reaper.alive_key(worker.name))

    assert reaper.reap(redis, ["default"]) == []
    assert queue.count == 0
    StartedJobRegistry(queue=queue).cleanup()  # what a worker's maintenance runs
    assert job.get_status() == JobStatus.FAILED
    assert FailedJobRegistry(queue=queue).get_job_ids() == ["sweep-stale-2026-12-01T1000"]


def test_a_worker_that_stops_on_purpose_leaves_nothing_to_reap(redis):
    queue = Queue("send", connection=redis)
    worker = SimpleWorker([queue], connection=redis)
    heart = reaper.Heart(redis, worker.name, ["send"])
    heart.start()
    assert redis.exists(reaper.alive_key(worker.name))
    heart.stop()
    assert not redis.exists(reaper.alive_key(worker.name))
    assert not redis.hexists(reaper.BEATING, worker.name)
