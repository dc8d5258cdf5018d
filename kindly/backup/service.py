"""`kindly backup` and `kindly restore`: what is taken, in which order, and what restore checks
before it writes.

A backup is the database (dumped first) and then the stored objects Kindly cannot make
again: bank statements as received, uploaded logos, anything else that is not a rendered
file. Rendered files (pages, letters, videos, their posters and captions, and the link
records written beside the pages) are left out unless asked for: `kindly render` makes them
again from the database. Taking the database first means every object it names was stored
before the dump, so the backup holds it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import mimetypes
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select, text
from sqlalchemy.exc import DBAPIError

import kindly
from kindly.backup import database
from kindly.backup.archive import Archive
from kindly.backup.manifest import (
    NAME,
    OBJECTS,
    BackupError,
    Entry,
    Manifest,
    mismatch,
    secret_fingerprint,
    sha256_of,
)
from kindly.campaigns.models import Campaign, Debtor
from kindly.context import Context
from kindly.infra.db import MIGRATIONS
from kindly.infra.storage import KEY, KINDS, Storage, content_type
from kindly.site.models import Artifact

RENDERED_FILES = frozenset(filename for filename, _ in KINDS.values())
DUMP_NAMES = {"postgresql": "database.pgdump", "sqlite": "database.sqlite3"}

log = logging.getLogger(__name__)


def is_rendered(key: str) -> bool:
    """Whether a stored object is a rendered file (or a link record written beside a page):
    made again by `kindly render`, so a backup may leave it out."""
    parts = key.split("/")
    if parts[0] == "links" and len(parts) == 2 and key.endswith(".json"):
        return True
    if parts[0] != "campaigns" or parts[-1] not in RENDERED_FILES:
        return False
    # campaigns/<slug>/debtors/<id>/<file>, and before migration 0980 campaigns/<slug>/<ref>/<file>
    return (len(parts) == 5 and parts[2] == "debtors") or len(parts) == 4


def guess_type(key: str) -> str:
    """The content type to store an object with again."""
    filename = key.rsplit("/", 1)[-1]
    for kind, (name, _) in KINDS.items():
        if filename == name:
            return content_type(kind)
    if key.startswith("links/"):
        return "application/json"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def current_revision(ctx: Context) -> str | None:
    """The Alembic revision the database stands at (None: no schema yet)."""
    ctx.db.check()  # unreachable is one clear line, not "no schema"
    with ctx.db.engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:  # no such table: an empty database
            return None


def known_revision(revision: str | None) -> bool:
    """Whether this Kindly's migrations know the revision (an older or the same release)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    if revision is None:
        return False
    scripts = ScriptDirectory(str(MIGRATIONS))
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:
        return False


@dataclass
class Outcome:
    """What a backup or restore did, for the command's report."""

    where: str
    database: str = ""
    objects: int = 0
    bytes: int = 0
    rendered_skipped: int = 0
    dropped_artifacts: int = 0
    campaigns_to_render: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---- backup ----------------------------------------------------------------------------------


def backup(
    ctx: Context,
    archive: Archive,
    *,
    include_rendered: bool = False,
    pg_bin: Path | None = None,
    progress: Callable[[str], None] = log.info,
) -> Outcome:
    """Take a backup into an empty archive; the manifest is written last."""
    if not archive.is_empty():
        raise BackupError(f"{archive.where} is not empty: back up into a new folder or prefix")
    engine = database.engine_of(ctx.settings.database_url)
    outcome = Outcome(where=archive.where, database=engine)
    revision = current_revision(ctx)
    if revision is None:
        raise BackupError("the database has no Kindly schema: nothing to back up")
    with tempfile.TemporaryDirectory(prefix="kindly-backup-") as work:
        dump = Path(work) / DUMP_NAMES[engine]
        progress(f"dumping the {engine} database")
        if engine == "postgresql":
            facts = database.pg_dump(ctx.settings.database_url, dump, pg_bin)
        else:
            facts = database.sqlite_dump(database.sqlite_path(ctx.settings.database_url), dump)
        facts |= {"name": dump.name, "size": dump.stat().st_size, "sha256": sha256_of(dump)}
        archive.put_file(dump.name, dump)
    progress("copying the stored objects")
    entries, skipped = _copy_objects(ctx.storage, archive, include_rendered)
    manifest = Manifest(
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        kindly_version=kindly.__version__, alembic_revision=revision, database=facts,
        objects=entries, rendered_included=include_rendered, rendered_skipped=skipped,
        secret_fingerprint=secret_fingerprint(ctx.settings.secret_key),
    )  # fmt: skip
    archive.put_bytes(NAME, manifest.to_json())
    outcome.objects, outcome.rendered_skipped = len(entries), skipped
    outcome.bytes = facts["size"] + sum(entry.size for entry in entries)
    return outcome


def _copy_objects(storage: Storage, archive: Archive, include_rendered: bool):
    """Copy each object into the archive; its entries and how many rendered ones were left."""
    entries: list[Entry] = []
    skipped = 0
    for key in storage.list_keys():
        if not include_rendered and is_rendered(key):
            skipped += 1
            continue
        try:
            data = storage.get(key)
        except KeyError:  # deleted since it was listed (an erasure, a moved artifact)
            continue
        name = f"{OBJECTS}/{key}"
        archive.put_bytes(name, data)
        entries.append(Entry(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                             key=key, content_type=guess_type(key)))  # fmt: skip
    return entries, skipped


# ---- restore ---------------------------------------------------------------------------------


def read_manifest(archive: Archive) -> Manifest:
    """The archive's manifest, or BackupError when there is none (an unfinished backup)."""
    path = archive.fetch(NAME)
    if path is None:
        raise BackupError(
            f"{archive.where} holds no {NAME}: not a Kindly backup, or one that did not finish"
        )
    return Manifest.from_json(path.read_bytes())


def verify(archive: Archive, manifest: Manifest) -> dict[str, Path]:
    """Every file of the backup checked against the manifest; the local path of each by name.
    Lists every file that does not match (at most 10) and writes nothing."""
    problems: list[str] = []
    paths: dict[str, Path] = {}
    for entry in [manifest.database_entry(), *manifest.objects]:
        if entry.key and not KEY.match(entry.key):
            problems.append(f"{entry.name}: not a storage key")
            continue
        path = archive.fetch(entry.name)
        wrong = mismatch(entry, path)
        if wrong:
            problems.append(wrong)
        else:
            paths[entry.name] = path
    if problems:
        shown = "; ".join(problems[:10]) + (
            f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        )
        raise BackupError(
            f"the backup at {archive.where} does not match its manifest, nothing was "
            f"restored: {shown}"
        )
    return paths


def check(
    ctx: Context, archive: Archive, *, force: bool = False
) -> tuple[Manifest, dict[str, Path]]:
    """Everything restore checks before it writes: the manifest, the checksums, the target."""
    manifest = read_manifest(archive)
    engine = database.engine_of(ctx.settings.database_url)
    if manifest.database.get("engine") != engine:
        raise BackupError(
            f"the backup holds a {manifest.database.get('engine')} database; this installation "
            f"uses {engine} (KINDLY_DATABASE_URL)"
        )
    if not known_revision(manifest.alembic_revision):
        raise BackupError(
            f"the backup's schema revision {manifest.alembic_revision!r} is unknown to Kindly "
            f"{kindly.__version__}: restore it with Kindly {manifest.kindly_version} or newer"
        )
    if not force:
        if _database_tables(ctx, engine):
            raise BackupError(
                "the target database is not empty: restore into an empty database, or add "
                "--force to replace everything in it"
            )
        if next(iter(ctx.storage.list_keys()), None) is not None:
            raise BackupError(
                "the target storage is not empty: restore into an empty bucket or folder, or "
                "add --force to write the backup's objects over it"
            )
    paths = verify(archive, manifest)  # last: it reads (or downloads) every file
    return manifest, paths


def _database_tables(ctx: Context, engine: str) -> int:
    if engine == "postgresql":
        return database.server_facts(ctx.settings.database_url)["tables"]
    return database.sqlite_tables(database.sqlite_path(ctx.settings.database_url))


def restore(
    ctx: Context,
    archive: Archive,
    *,
    force: bool = False,
    pg_bin: Path | None = None,
    progress: Callable[[str], None] = log.info,
) -> Outcome:
    """Verify the backup, then restore the database (all or nothing) and the objects."""
    manifest, paths = check(ctx, archive, force=force)
    engine = manifest.database["engine"]
    outcome = Outcome(where=archive.where, database=engine)
    dump = paths[manifest.database["name"]]
    outcome.bytes = dump.stat().st_size
    progress(f"restoring the {engine} database")
    ctx.db.dispose()  # no pooled connection may hold the tables the restore replaces
    if engine == "postgresql":
        made_by = int(manifest.database.get("pg_dump") or 0)  # the pg_dump's major version
        database.pg_restore(ctx.settings.database_url, dump, made_by, clean=force, pg_bin=pg_bin)
    else:
        target = database.sqlite_path(ctx.settings.database_url)
        database.sqlite_restore(dump, target)
    progress("storing the objects")
    storage = ctx.storage
    storage.ensure()
    for entry in manifest.objects:
        storage.put(
            entry.key,
            paths[entry.name].read_bytes(),
            entry.content_type or "application/octet-stream",
        )
        outcome.objects += 1
        outcome.bytes += entry.size
    ctx.db.migrate()  # a backup of an older release: brought up to this one's schema
    restored = {entry.key for entry in manifest.objects}
    outcome.dropped_artifacts, outcome.campaigns_to_render = _forget_unrestored(ctx, restored)
    if manifest.secret_fingerprint != secret_fingerprint(ctx.settings.secret_key):
        outcome.warnings.append(
            "the backup was taken with another KINDLY_SECRET_KEY: unsubscribe links already "
            "sent will not be recognised; set the old key to keep them working"
        )
    return outcome


def _forget_unrestored(ctx: Context, restored: Iterable[str]) -> tuple[int, list[str]]:
    """Drop the records of rendered files the backup left out, so `kindly render` makes them
    again (it renders what is missing); the campaigns that need it, by slug."""
    restored = set(restored)
    with ctx.db.session() as session:
        query = (
            select(Artifact.id, Artifact.key, Campaign.slug)
            .join(Debtor, Debtor.id == Artifact.debtor_id)
            .join(Campaign, Campaign.id == Debtor.campaign_id)
        )
        rows = session.execute(query).all()
        missing = [(row.id, row.slug) for row in rows if row.key not in restored]
        ids = [artifact_id for artifact_id, _ in missing]
        for start in range(0, len(ids), 1000):
            session.execute(delete(Artifact).where(Artifact.id.in_(ids[start : start + 1000])))
    return len(ids), sorted({slug for _, slug in missing})
