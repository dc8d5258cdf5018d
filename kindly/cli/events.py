"""`kindly events status` and `kindly events ship`: the local event journal
(kindly.tracking.journal) and its shipper."""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
from pathlib import Path

import click

from kindly.cli.common import open_context
from kindly.infra.config import load_settings


def _folder(given: Path | None) -> Path:
    """The journal folder: as given, as configured, else `kindly serve`'s default."""
    if given is not None:
        return given
    settings = load_settings()
    return settings.journal or settings.data_dir / "journal"


@click.group("events")
def command() -> None:
    """The local event journal: how far behind its shipper is, and shipping it."""


@command.command("status")
@click.option(
    "--folder",
    type=click.Path(path_type=Path),
    default=None,
    help="The journal folder (default: KINDLY_JOURNAL, else DATA_DIR/journal).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def status(folder: Path | None, as_json: bool) -> None:
    """What the journal holds that is not yet stored in the database (the lag)."""
    from kindly.tracking.shipper import lag

    folder = _folder(folder)
    settings = load_settings()
    now = dt.datetime.now(dt.UTC)
    found = lag(folder)
    limit = settings.journal_limit_mb * 2**20
    over = found.unshipped_bytes >= limit
    waiting = None
    if settings.redis_url:
        try:
            from kindly.infra.redis import redis_connection
            from kindly.tracking.eventbuffer import STREAM

            waiting = int(redis_connection(settings).xlen(STREAM))
        except Exception:  # Redis down: say so, the journal's figures still count
            waiting = None
    answer = {
        "folder": str(folder),
        "segments": found.segments,
        "open_segments": found.open_segments,
        "unshipped_records": found.unshipped_records,
        "unshipped_bytes": found.unshipped_bytes,
        "lag_seconds": round(found.seconds(now), 3),
        "limit_bytes": limit,
        "over_limit": over,
        "shipper_running": found.shipper_running,
        "redis_stream_waiting": waiting,
    }
    if as_json:
        click.echo(json.dumps(answer))
        return
    click.echo(f"journal {folder}: {found.segments} segments ({found.open_segments} open)")
    click.echo(f"not yet stored: {found.unshipped_records} records, "
               f"{found.unshipped_bytes / 2**20:.1f} MB of {limit // 2**20} MB allowed, "
               f"oldest {found.seconds(now):.1f} s old")  # fmt: skip
    click.echo(f"shipper: {'running' if found.shipper_running else 'none running'}")
    if waiting is not None:
        click.echo(f"Redis stream (the synchronous way): {waiting} events waiting")
    if over:
        click.echo("ALARM: over the limit; hits are stored synchronously until it shrinks")


@command.command("ship")
@click.option(
    "--folder",
    type=click.Path(path_type=Path),
    default=None,
    help="The journal folder (default: KINDLY_JOURNAL, else DATA_DIR/journal).",
)
@click.option("--once", is_flag=True, help="Ship what is there and stop (waits for the lock).")
def ship(folder: Path | None, once: bool) -> None:
    """Ship the journal into the database: runs until stopped (SIGTERM), or with --once
    until nothing is left. Only one shipper ships a folder at a time; others wait."""
    from kindly.tracking.shipper import Shipper, run_shipper

    folder = _folder(folder)
    ctx = open_context()
    shipper = Shipper(folder, ctx.db)
    if once:
        shipper.acquire(wait=True)
        try:
            done = shipper.drain()
        finally:
            shipper.release()
        click.echo(f"shipped {done} records from {folder}")
        return
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    click.echo(f"shipping {folder} (waiting for the folder's lock if another shipper has it)")
    run_shipper(shipper, stopping, wait=False)
    click.echo(f"stopped after {shipper.shipped} records")
