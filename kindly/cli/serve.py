"""`kindly serve` and `kindly worker`: the long-running processes."""

from __future__ import annotations

import click

from kindly.cli.common import open_context
from kindly.errors import ConfigError
from kindly.infra import exposition
from kindly.infra.config import check_production, load_settings


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the debtor front with gunicorn (hits journaled to DATA_DIR/journal unless
    KINDLY_JOURNAL says otherwise)."""
    import os

    from web.server import run  # gunicorn and Flask load only for the commands that serve

    # the event journal is on for the front unless set: its workers read this environment
    os.environ.setdefault("KINDLY_JOURNAL", "on")

    ctx = open_context()
    if ctx.settings.metrics_port == port:
        raise ConfigError(
            f"KINDLY_METRICS_PORT {port} is the public port: metrics need a port of their own, "
            "out of a reverse proxy's reach"
        )
    exposition.prepare(ctx.settings.metrics_port)
    ctx.storage.ensure()
    ctx.close()
    run(host, port, workers, ctx.settings)


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option(
    "--max-jobs", type=click.IntRange(min=0), default=None, envvar="KINDLY_WORKER_MAX_JOBS",
    help="Jobs before a render/send/default worker starts afresh (default 10,000; 0: never).",
)  # fmt: skip
def worker(queues: tuple[str, ...], burst: bool, max_jobs: int | None) -> None:
    """Run an RQ worker on the given queues (default: all of them)."""
    from workers.worker import run  # rq and the renderers load only in a worker

    settings = load_settings()
    check_production(settings)  # workers charge instalments and send: same rules as the front
    if not settings.redis_url:
        raise ConfigError("kindly worker needs KINDLY_REDIS_URL; without it jobs run in-process")
    exposition.prepare(settings.metrics_port)  # before the first job counts anything
    open_context()
    if not queues or "default" in queues:
        # instalment collection, the retention purge (daily) and the stale sweep: default queue
        from workers.daily import schedule_daily
        from workers.queues import Dispatcher
        from workers.render import schedule_sweep

        schedule_daily(Dispatcher(settings))
        schedule_sweep(Dispatcher(settings))  # stale pages rebuilt in the background
    run(settings, list(queues), burst=burst, max_jobs=max_jobs)
