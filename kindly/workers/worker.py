"""A warm RQ worker: renderers are imported once, before jobs fork."""

from __future__ import annotations

import logging

from kindly.core.config import Settings
from kindly.workers import queues

log = logging.getLogger(__name__)

MAINTENANCE_SECONDS = 60
"""How often a worker cleans the registries, which is when a dead worker's job is retried."""


def preload(names: list[str]) -> None:
    """Import the heavy renderers in the parent so each forked job starts warm (~1 s saved)."""
    if queues.RENDER in names:
        import kindly.renderer.letter
        import kindly.renderer.site

        kindly.renderer.letter.default_renderer()
        kindly.renderer.site.environment()
    if queues.VIDEO in names:
        import kindly.renderer.video

        kindly.renderer.video.warm()  # templates, fonts and the encoder's identity, once


def run(settings: Settings, names: list[str], *, burst: bool = False) -> None:
    """Work the queues until stopped (or until empty with burst)."""
    from rq import Queue, Worker

    names = names or list(queues.ALL)
    unknown = set(names) - set(queues.ALL)
    if unknown:
        raise ValueError(f"unknown queues {sorted(unknown)}; choose from {', '.join(queues.ALL)}")
    connection = queues.redis_connection(settings)
    preload(names)
    worker = Worker(
        [Queue(name, connection=connection) for name in names],
        connection=connection,
        # Requeue the jobs of workers that died (SIGKILL, lost machine) within a minute or
        # two instead of RQ's default ten (see docs/operations.md).
        maintenance_interval=MAINTENANCE_SECONDS,
    )
    log.info("worker listening on %s", ", ".join(names))
    worker.work(burst=burst, with_scheduler=True)
