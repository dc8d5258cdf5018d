"""Queue names and how every job is enqueued: on RQ when Redis is set, in-process otherwise."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kindly.errors import ConfigError, ServiceUnavailable
from kindly.infra import tracing
from kindly.infra.config import Settings
from kindly.infra.redact import redact
from kindly.infra.redis import redis_connection
from workers.joblog import job_line

log = logging.getLogger(__name__)

RENDER = "render"
"""Microsites and letters: quick jobs, many of them."""
VIDEO = "video"
"""Videos: slow jobs on their own queue so they never starve the rest."""
SEND = "send"
"""Email, SMS and print-batch delivery."""
DEFAULT = "default"
"""Everything else."""
ALL = (RENDER, VIDEO, SEND, DEFAULT)

ENDED = ("finished", "failed", "stopped", "canceled")
"""Job statuses after which nothing more happens to a job."""
RETRY_INTERVALS = (10, 60, 300)
"""Seconds between the attempts of a failing job."""


@dataclass(slots=True)
class JobHandle:
    """A job's id and, once known, its status ('queued', 'started', 'finished', 'failed').

    Light on purpose: `kindly render` holds one per debtor while it waits, and the RQ Job
    objects it used to keep cost about 3.7 KB each (370 MB of memory at 100,000 debtors).
    """

    id: str
    status: str
    error: str | None = None
    origin: str | None = None
    """The RQ queue the job is on; None for a job that ran in this process."""
    connection: Any = None

    @property
    def key(self) -> str:
        """The job's hash in Redis."""
        from rq.job import Job

        return Job.key_for(self.id)

    @property
    def rq_job(self) -> Any:
        """RQ's Job, read from Redis now (None for a job that ran in this process)."""
        if self.connection is None:
            return None
        from rq.job import Job

        return Job.fetch(self.id, connection=self.connection)

    def refresh(self) -> str:
        """Re-read the status from Redis (in-process jobs are final already)."""
        if self.connection is not None:
            refresh_many([self])
        return self.status

    def _read(self, raw: bytes | None) -> None:
        if raw is None:  # the job's hash is gone: deleted, expired or evicted by Redis
            self.status, self.error = LOST, "its record vanished from Redis; run it again"
            return
        self.status = raw.decode()
        if self.status == "failed":
            result = _latest_result(self)
            self.error = (result.exc_string or "").strip().splitlines()[-1] if result else None

    @property
    def done(self) -> bool:
        """Whether the job has ended, well or not."""
        return self.status in (*ENDED, LOST)


def _latest_result(handle: JobHandle):
    """The failed job's last result (its error), or None when Redis no longer has it."""
    from rq.exceptions import NoSuchJobError

    try:
        return handle.rq_job.latest_result()
    except NoSuchJobError:
        return None


LOST = "lost"
"""A job whose record is no longer in Redis: its outcome can't be known (count it failed)."""
REFRESH_BATCH = 1000
"""Job statuses read per Redis round trip."""


def refresh_many(handles: Sequence[JobHandle]) -> None:
    """Re-read the statuses of many RQ jobs, a thousand per round trip (a campaign's wait
    would otherwise cost one round trip per pending job, twice a second)."""
    queued = [h for h in handles if h.connection is not None]
    for start in range(0, len(queued), REFRESH_BATCH):
        batch = queued[start : start + REFRESH_BATCH]
        with batch[0].connection.pipeline(transaction=False) as pipe:
            for handle in batch:
                pipe.hget(handle.key, "status")
            statuses = pipe.execute()
        for handle, raw in zip(batch, statuses, strict=True):
            handle._read(raw)


WAIT_WINDOW = 2000
"""At most this many pending jobs per queue are read each half second while waiting."""
WAIT_FLOOR = 256
"""At least this many (the window follows the pace at which jobs end, between the two)."""


def wait_all(handles: list, ended: Callable[[int], object], *, window: int = WAIT_WINDOW) -> None:
    """Wait until every job has ended, calling `ended(n)` as n more end.

    Jobs end roughly in the order they were queued: each half second the first pending jobs
    of each queue are read and the ended ones dropped from the front, so a round costs the
    same at 1,000 debtors as at 100,000 (no pass over every pending job). How many are read
    follows the pace (four times what ended in the last round, at least WAIT_FLOOR) and
    doubles up to `window` while none ends, in case the front is held up by slow or retried
    jobs while later ones finish.
    """
    pending: dict[str, list] = {}
    for handle in handles:
        if not handle.done:
            pending.setdefault(handle.origin, []).append(handle)
    reads = dict.fromkeys(pending, min(WAIT_FLOOR, window))
    while pending:
        time.sleep(0.5)
        for origin, waiting in list(pending.items()):
            size = reads[origin]
            front = waiting[:size]
            refresh_many(front)
            still = [h for h in front if not h.done]
            count = len(front) - len(still)
            if count:
                ended(count)
                reads[origin] = min(window, max(WAIT_FLOOR, 4 * count))
            else:
                reads[origin] = min(window, 2 * size)
            waiting[:size] = still
            if not waiting:
                del pending[origin]


def depths(connection) -> dict[str, int]:
    """Jobs waiting in each queue (kindly_rq_queue_jobs), in one round trip."""
    from rq import Queue

    with connection.pipeline(transaction=False) as pipe:
        for name in ALL:
            pipe.llen(Queue(name, connection=connection).key)
        return dict(zip(ALL, (int(n) for n in pipe.execute()), strict=True))


def live_metrics(settings: Settings):
    """Queue depths and the event lag, read from Redis at each scrape (None without Redis)."""
    if not settings.redis_url:
        return None
    from redis import Redis

    from kindly.infra.exposition import Live
    from kindly.tracking.eventbuffer import lag_seconds

    # a scrape must not hang on Redis: short timeouts, and the gauges are left out instead
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    return Live(depths=lambda: depths(redis), lag=lambda: lag_seconds(redis))


class Dispatcher:
    """Enqueues jobs for one process, keeping one Redis connection."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._redis = None

    @property
    def redis(self):
        """The Redis connection (opened on first use)."""
        if self._redis is None:
            self._redis = redis_connection(self.settings)
        return self._redis

    def enqueue(
        self,
        func: Callable[..., Any],
        args: Sequence[Any],
        *,
        queue: str,
        job_id: str,
        timeout: int,
        retries: int = len(RETRY_INTERVALS),
        again: bool = False,
    ) -> JobHandle:
        """Run `func(*args)` as a job with a deterministic id; a queued duplicate is not added.

        With `again`, a job of that id that has already ended (finished, failed, stopped) is
        replaced by a new run instead of being handed back as it is.
        """
        if self.settings.jobs_in_process:
            try:
                with job_line(job_id, None, f"{func.__module__}.{func.__qualname__}"):
                    func(*args)
            except ServiceUnavailable:
                raise  # every later job would fail the same way: stop with one clear line
            except Exception as exc:  # the caller reports failures; the job id says which
                # a gateway's reply may quote the recipient: the record keeps it, the log not
                log.error("job %s failed: %s: %s", job_id, type(exc).__name__, redact(str(exc)))
                log.debug("job %s failed", job_id, exc_info=True)
                return JobHandle(job_id, "failed", error=f"{type(exc).__name__}: {exc}")
            return JobHandle(job_id, "finished")

        from rq import Queue, Retry
        from rq.exceptions import DuplicateJobError
        from rq.job import Job

        rq_queue = Queue(queue, connection=self.redis)

        def submit():
            try:
                return rq_queue.enqueue_call(
                    func,
                    args=tuple(args),
                    timeout=timeout,
                    job_id=job_id,
                    unique=True,
                    retry=Retry(max=retries, interval=list(RETRY_INTERVALS[:retries]))
                    if retries
                    else None,
                    result_ttl=86400,
                    failure_ttl=7 * 86400,
                    meta=tracing.carrier() or None,  # the job's span joins this trace
                )
            except DuplicateJobError:
                return Job.fetch(job_id, connection=self.redis)

        job = submit()
        # A finished or failed job keeps its id for a day (a week when failed); without
        # `again` a later `kindly render` would only read that old outcome back, and a job
        # that failed while S3 or the database was away would never be tried again.
        if again and job.get_status(refresh=False) in ENDED:
            job.delete()
            job = submit()  # two callers racing here still leave one queued job
        return JobHandle(job.id, "queued", origin=job.origin, connection=self.redis)

    def enqueue_at(
        self,
        when: dt.datetime,
        func: Callable[..., Any],
        args: Sequence[Any],
        *,
        queue: str,
        job_id: str,
        timeout: int,
    ) -> JobHandle:
        """Run the job at `when` through RQ's scheduler (workers run `with_scheduler`).

        Scheduling needs Redis: without it there is nobody to wake up later.
        """
        if self.settings.jobs_in_process:
            raise ConfigError("scheduling needs KINDLY_REDIS_URL and a running `kindly worker`")
        from rq import Queue

        job = Queue(queue, connection=self.redis).enqueue_at(
            when, func, *args, job_id=job_id, job_timeout=timeout, result_ttl=86400,
            failure_ttl=7 * 86400,
        )  # fmt: skip
        return JobHandle(job.id, "scheduled", origin=job.origin, connection=self.redis)
