"""A warm RQ worker: renderers are imported and warmed once, and quick jobs run in it.

Render, send and default jobs take tens of milliseconds. RQ's default worker forks a work
horse for each job: that cost about 40 ms per letter (copy-on-write faults over the warm heap)
plus a new database connection per job, and threw away whatever the job had warmed (fonts,
the campaign's logo, pooled connections). Those queues therefore run their jobs in the worker
process itself (RQ's SimpleWorker). A worker that takes video jobs keeps one forked horse per
job: videos take seconds, run ffmpeg, and a crash or a leak stays in the horse.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from kindly.infra import exposition, metrics, tracing
from kindly.infra.config import Settings
from workers import joblog, queues, reaper

log = logging.getLogger(__name__)

MAINTENANCE_SECONDS = 60
"""How often a worker cleans the registries, which is when a dead worker's job is retried."""
MAX_JOBS = 10_000
"""Jobs an in-process worker runs before it starts afresh (KINDLY_WORKER_MAX_JOBS; 0: never).

A warm render worker's memory creeps up by about 1 KB a job (bench_campaign: 166 MB after
6,400 jobs, 199 MB after 32,000; below Python, in what WeasyPrint's letters leave in C
libraries or the allocator), which over a busy week would add up to gigabytes. After
MAX_JOBS jobs the worker replaces itself with a fresh copy of the same command (exec: same
pid, so supervisors and compose see nothing), which costs about 3 s of warming per 10,000 jobs.
Forking workers (video) don't need it: each job's memory goes with its horse.
"""


def preload(names: list[str]) -> None:
    """Import and warm the heavy renderers before the first job (~1 s saved per job)."""
    if queues.RENDER in names:
        import renderer.letter
        import renderer.site

        renderer.letter.warm()  # a sample letter: fonts, faces, stylesheet, once
        renderer.site.environment()
    if queues.VIDEO in names:
        import renderer.video

        renderer.video.warm()  # templates, fonts and the encoder's identity, once
    # What is loaded now lives as long as the process: keep it out of every later garbage
    # collection (about 5 % of a letter) and, for forked horses, off their copy-on-write pages.
    gc.freeze()


def worker_class(names: list[str]):
    """RQ's forking Worker when video jobs are among the queues, else the in-process one."""
    from rq import SimpleWorker, Worker

    return Worker if queues.VIDEO in names else SimpleWorker


def run(
    settings: Settings, names: list[str], *, burst: bool = False, max_jobs: int | None = None
) -> None:
    """Work the queues until stopped (or until empty with burst); an in-process worker
    starts afresh after `max_jobs` jobs (default MAX_JOBS)."""
    from rq import Queue, SimpleWorker

    names = names or list(queues.ALL)
    unknown = set(names) - set(queues.ALL)
    if unknown:
        raise ValueError(f"unknown queues {sorted(unknown)}; choose from {', '.join(queues.ALL)}")
    connection = queues.redis_connection(settings)
    tracing.configure(settings.otlp_endpoint, "kindly-worker")  # off without an endpoint
    preload(names)
    worker = worker_class(names)(
        [Queue(name, connection=connection) for name in names],
        connection=connection,
        # Requeue the jobs of workers that died (SIGKILL, lost machine) within a minute or
        # two instead of RQ's default ten (see docs/operations.md).
        maintenance_interval=MAINTENANCE_SECONDS,
    )
    joblog.logged_worker(worker, forking=not isinstance(worker, SimpleWorker))
    limit = MAX_JOBS if max_jobs is None else max_jobs
    if not isinstance(worker, SimpleWorker):
        limit = 0  # forking worker: a job's memory leaves with its horse
    done = 0
    execute = worker.execute_job
    forks = not isinstance(worker, SimpleWorker)

    def counted(job, queue):
        nonlocal done
        done += 1
        with observed(job, forks=forks):
            return execute(job, queue)

    worker.execute_job = counted  # RQ counts jobs only in Redis
    served = serve_metrics(settings)
    log.info("%s listening on %s", type(worker).__name__, ", ".join(names))
    # a job of a worker that vanished goes back on its queue within ~35 s (workers/reaper.py)
    heart = reaper.Heart(reaper.own_connection(settings), worker.name, names)
    heart.start()
    try:
        worker.work(burst=burst, with_scheduler=True, max_jobs=limit or None)
    finally:
        heart.stop()
        if served is not None:
            served.shutdown()
            served.server_close()  # the port is free again for a fresh start (restart())
    if limit and done >= limit and not burst and not worker._stop_requested:
        log.info("%d jobs done: starting afresh to give back the memory they left", done)
        restart()


@contextmanager
def observed(job, *, forks: bool) -> Iterator[None]:
    """Count one job's attempt in this process (kindly_rq_job_duration_seconds and, when it
    did not finish, kindly_rq_jobs_failed_total), whether it ran here or in a forked horse,
    whose counts are then folded into the directory's totals."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - started
        if forks:
            exposition.fold_exited()  # the horse that ran the job, now ended
        try:
            failed = job.get_status(refresh=True) != "finished"
        except Exception:  # its hash is gone (a result kept for no time): no failure known
            failed = False
        metrics.observe_job(job.origin, job.func_name.rsplit(".", 1)[-1], seconds, failed=failed)


def serve_metrics(settings: Settings):
    """Answer Prometheus on KINDLY_METRICS_PORT from this worker (None when unset)."""
    if settings.metrics_port is None:
        return None
    return exposition.serve(
        settings.metrics_port, settings.metrics_host, queues.live_metrics(settings)
    )


def restart() -> None:
    """Replace this process with a fresh run of the same `kindly` command (same pid)."""
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "kindly", *sys.argv[1:]])  # noqa: S606
