"""`kindly backup DEST` and `kindly restore SRC`: the database and the stored objects Kindly
cannot render again, to and from a folder or an s3:// prefix (docs/deploy.md, Backups)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from kindly.backup import service
from kindly.backup.archive import open_archive
from kindly.cli.common import open_context

PG_BIN = click.option(
    "--pg-bin",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar="KINDLY_PG_BIN",
    help="Folder of pg_dump, pg_restore and psql (default: the server's version, found).",
)


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


@click.command("backup")
@click.argument("dest")
@click.option(
    "--all",
    "include_rendered",
    is_flag=True,
    help="Also copy rendered pages, letters and videos (kindly render makes them again).",
)
@PG_BIN
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def backup(dest: str, include_rendered: bool, pg_bin: Path | None, as_json: bool) -> None:
    """Back up the database and the stored objects into DEST (an empty folder or s3:// prefix)."""
    ctx = open_context(migrate=False)  # the database as it is, not as this release would make it
    archive = open_archive(dest, ctx.settings.s3_endpoint_url)
    try:
        done = service.backup(
            ctx,
            archive,
            include_rendered=include_rendered,
            pg_bin=pg_bin,
            progress=lambda step: None if as_json else click.echo(step),
        )
    finally:
        archive.close()
    if as_json:
        click.echo(json.dumps(asdict(done), indent=2))
        return
    click.echo(
        f"backed up the {done.database} database and {done.objects} objects "
        f"({_megabytes(done.bytes)}) to {done.where}"
    )
    if done.rendered_skipped:
        click.echo(
            f"left out {done.rendered_skipped} rendered files (kindly render makes them "
            "again; --all keeps them)"
        )


@click.command("restore")
@click.argument("src")
@click.option("--force", is_flag=True, help="Replace a database and storage that are not empty.")
@click.option(
    "--check", "check_only", is_flag=True, help="Verify the backup and the target, write nothing."
)
@PG_BIN
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def restore(src: str, force: bool, check_only: bool, pg_bin: Path | None, as_json: bool) -> None:
    """Restore a backup taken by `kindly backup` after verifying every checksum."""
    ctx = open_context(migrate=False)  # migrating first would make the target non-empty
    archive = open_archive(src, ctx.settings.s3_endpoint_url)
    try:
        if check_only:
            manifest, _ = service.check(ctx, archive, force=force)
            click.echo(
                f"{archive.where}: the backup of {manifest.created_at} matches its "
                f"manifest ({len(manifest.objects)} objects); the target can take it"
            )
            return
        done = service.restore(
            ctx,
            archive,
            force=force,
            pg_bin=pg_bin,
            progress=lambda step: None if as_json else click.echo(step),
        )
    finally:
        archive.close()
    if as_json:
        click.echo(json.dumps(asdict(done), indent=2))
        return
    click.echo(
        f"restored the {done.database} database and {done.objects} objects "
        f"({_megabytes(done.bytes)}) from {done.where}"
    )
    if done.campaigns_to_render:
        click.echo(
            f"{done.dropped_artifacts} rendered files were not in the backup; make them "
            f"again with: "
            + "; ".join(f"kindly render {slug}" for slug in done.campaigns_to_render)
        )
    for warning in done.warnings:
        click.echo(f"warning: {warning}", err=True)
