"""`kindly migrate`: bring the database schema up to date, then stop (a deploy's one-shot step)."""

from __future__ import annotations

import click
from sqlalchemy import text

from kindly.cli.common import open_context


@click.command("migrate")
def command() -> None:
    """Bring the database schema to the newest revision and exit (Helm's pre-upgrade Job).

    Every Kindly process migrates when it starts, so this is never required; it lets a
    deployment migrate once, before any new web or worker process starts.
    """
    ctx = open_context(migrate=True)
    try:
        with ctx.db.engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        ctx.close()
    click.echo(f"database schema at revision {revision}")
