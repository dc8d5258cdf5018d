"""Jobs of workers that vanished go back on their queue within seconds, not minutes.

RQ finds an abandoned job only when the job's entry in the started registry expires: for
the in-process workers (render, send, default) that is the job's timeout plus 60 s after it
was taken, since they send no heartbeat while a job runs (180 s for a send or a render), and
then the next registry cleanup (every MAINTENANCE_SECONDS) schedules the retry 10 s later on
RQ's scheduler, which may itself have lived on the lost machine (its lock lasts 61 s). A
worker cut off from the network, killed by the OOM killer or lost with its machine therefore
held up its job for about four minutes.

Here every `kindly worker` keeps a short-lived key of its own alive from a thread
(BEAT_SECONDS, LIVE_SECONDS): it beats while a job runs. On each beat it also looks at the
jobs every worker has taken: one whose worker announced it beats but whose key has expired is
abandoned. Its started-registry entry is removed (ZREM: whichever worker removes it, and only
it, goes on) and the job is put back at the front of its queue, one of its retries used.
A job with no retry left is handed to RQ's own cleanup (its entry expired now), which fails it.

Nothing is lost if a worker thought dead comes back and finishes the job too: every job is
safe to run twice (artifacts are keyed by content, a send is claimed once per debtor, step
and channel before anything leaves; docs/operations.md, "Several machines").
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

BEAT_SECONDS = 5
"""How often a worker says it is alive and looks for abandoned jobs."""
LIVE_SECONDS = 30
"""How long a beat counts: a worker silent this long (lost, killed, cut off) is dead.

Six beats, so a worker whose thread is held up by a long call that keeps the interpreter
lock (a huge letter in the layout engine) is not taken for dead.
"""
BEATING = "kindly:workers:beating"
"""Hash of the workers that beat (name -> last beat, Unix time). Workers not in it (an RQ
worker of another version, `rq worker` by hand) are left to RQ's own, slower cleanup."""


def own_connection(settings):
    """A Redis client for the heart alone, whose calls give up after a few seconds (the
    worker's own may wait minutes for a job)."""
    from redis import Redis

    return Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=10)


def alive_key(worker_name: str) -> str:
    """The key a worker keeps alive while it runs."""
    return f"kindly:workers:alive:{worker_name}"


def beat(connection, worker_name: str) -> None:
    """Say this worker is alive for LIVE_SECONDS."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.set(alive_key(worker_name), 1, ex=LIVE_SECONDS)
        pipe.hset(BEATING, worker_name, int(time.time()))
        pipe.execute()


def retire(connection, worker_name: str) -> None:
    """A worker that stops on its own: no longer alive, nothing of it to reap."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.delete(alive_key(worker_name))
        pipe.hdel(BEATING, worker_name)
        pipe.execute()


def dead_workers(connection) -> set[str]:
    """Workers that beat once and whose last beat has expired."""
    names = [name.decode() for name in connection.hkeys(BEATING)]
    if not names:
        return set()
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.exists(alive_key(name))
        alive = pipe.execute()
    return {name for name, live in zip(names, alive, strict=True) if not live}


def reap(connection, queue_names: list[str]) -> list[str]:
    """Put the jobs of dead workers back on their queues; return the ids put back."""
    from rq import Queue
    from rq.exceptions import NoSuchJobError
    from rq.executions import Execution
    from rq.job import Job, JobStatus
    from rq.registry import StartedJobRegistry

    dead = dead_workers(connection)
    if not dead:
        return []
    requeued = []
    holding: set[str] = set()  # dead workers that still had a job here when we looked
    for name in queue_names:
        queue = Queue(name, connection=connection)
        registry = StartedJobRegistry(queue=queue)
        for job_id, execution_id in registry.get_job_and_execution_ids():
            try:
                execution = Execution.fetch(execution_id, job_id, connection=connection)
            except ValueError:  # the execution's record expired: RQ's cleanup sees to it
                continue
            if execution.worker_name not in dead:
                continue
            holding.add(execution.worker_name)
            member = execution.composite_key
            try:
                job = Job.fetch(job_id, connection=connection)
            except NoSuchJobError:
                continue
            if job.get_status() != JobStatus.STARTED:
                continue  # ended after all; RQ's cleanup drops a leftover entry
            if not job.retries_left:
                # no retry left: let RQ's cleanup fail it, as it fails any abandoned job
                registry.connection.zadd(registry.key, {member: 0}, xx=True)
                continue
            if not connection.zrem(registry.key, member):
                continue  # another worker reaped it first
            job.retries_left -= 1
            queue.enqueue_job(job, at_front=True)
            log.warning("job %s put back on %s: worker %s is gone (%d retries left)",
                        job_id, name, execution.worker_name, job.retries_left)  # fmt: skip
            requeued.append(job_id)
    # Forget the dead that held nothing (nothing of theirs is left to reap); one that comes
    # back beats again and is counted anew.
    for name in dead - holding:
        connection.hdel(BEATING, name)
    return requeued


class Heart:
    """The thread that beats for a worker and reaps the jobs of dead ones.

    It has a Redis connection of its own: the worker's is busy with the job in hand, and
    RQ's scheduler process must never inherit one this thread may be using.
    """

    def __init__(self, connection, worker_name: str, queue_names: list[str]):
        self.connection = connection
        self.worker_name = worker_name
        self.queue_names = queue_names
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kindly-heart", daemon=True)

    def start(self) -> None:
        """Beat once now (before the first job is taken), then every BEAT_SECONDS."""
        beat(self.connection, self.worker_name)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and say this worker is gone on purpose."""
        self._stop.set()
        self._thread.join(timeout=BEAT_SECONDS + 5)
        try:
            retire(self.connection, self.worker_name)
        except Exception as exc:  # Redis away at shutdown: the key expires by itself
            log.warning("could not retire worker %s: %s", self.worker_name, exc)

    def _run(self) -> None:
        while not self._stop.wait(BEAT_SECONDS):
            try:
                beat(self.connection, self.worker_name)
                reap(self.connection, self.queue_names)
            except Exception as exc:  # Redis away: the worker's own loop reports it
                log.warning("heartbeat of worker %s failed: %s: %s",
                            self.worker_name, type(exc).__name__, exc)  # fmt: skip
