"""The doctor's checks of the services Kindly stores into: the database, Redis and S3."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import text

from kindly.doctor import ERROR, OK, SKIPPED, WARNING, Finding
from kindly.errors import ServiceUnavailable

if TYPE_CHECKING:
    from kindly.doctor import Installation

CLOCK_WARNING_SECONDS = 5.0
"""Skew from the database's clock above which links, send windows and rate limits drift."""
CLOCK_ERROR_SECONDS = 120.0
"""Skew at which tokens expire early or late and scheduled sends go out at the wrong time."""

TABLE_RIGHTS = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
  AND NOT (has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT')
           AND has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE'))
ORDER BY c.relname
"""


def _unreachable(name: str, installation: Installation) -> Finding:
    return Finding(name, SKIPPED, "not checked: the database is unreachable")


def database(installation: Installation) -> Finding:
    """Reachable, and with the rights Kindly needs on its tables."""
    db = installation.database()
    if db is None:
        return Finding(
            "database", ERROR, installation.database_error or "database unreachable",
            "check KINDLY_DATABASE_URL (host, port, database name, user, password) and that "
            "the server accepts connections from this host",
        )  # fmt: skip
    if db.engine.dialect.name == "sqlite":
        return Finding("database", OK, "SQLite file reachable")
    with db.engine.connect() as conn:
        user, version = conn.execute(
            text("SELECT current_user, current_setting('server_version')")
        ).one()
        lacking = list(conn.scalars(text(TABLE_RIGHTS)))
        can_create = conn.scalar(text("SELECT has_schema_privilege(current_schema(), 'CREATE')"))
    if lacking:
        shown = ", ".join(lacking[:5]) + (
            f" and {len(lacking) - 5} more" if len(lacking) > 5 else ""
        )
        return Finding(
            "database", ERROR,
            f"PostgreSQL {version}: {user} cannot read and write {shown}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {user}",
        )  # fmt: skip
    if not can_create:
        return Finding(
            "database", WARNING,
            f"PostgreSQL {version}: {user} cannot create tables, so migrations will fail",
            f"GRANT CREATE ON SCHEMA public TO {user}, or run migrations as the owner",
        )  # fmt: skip
    return Finding("database", OK, f"PostgreSQL {version} as {user}, rights on every table")


def migrations(installation: Installation) -> Finding:
    """The database's Alembic revision against the newest one this Kindly ships."""
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from kindly.infra.db import MIGRATIONS

    db = installation.database()
    if db is None:
        return _unreachable("migrations", installation)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    heads = set(script.get_heads())
    with db.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current == heads:
        return Finding("migrations", OK, f"at head {', '.join(sorted(heads))}")
    known = {revision.revision for revision in script.walk_revisions()}
    if current - known:
        return Finding(
            "migrations", ERROR,
            f"the database is at {', '.join(sorted(current))}, newer than this Kindly "
            f"({', '.join(sorted(heads))})",
            "run the Kindly version that migrated it (or newer) on every host",
        )  # fmt: skip
    at = ", ".join(sorted(current)) or "no revision (an empty database)"
    needs = ", ".join(sorted(heads))
    return Finding(
        "migrations", ERROR, f"the database is at {at}; this Kindly needs {needs}",
        "run the migrations: start `kindly serve` once (web migrates before it serves) or the "
        "chart's migration Job, then restart the workers",
    )  # fmt: skip


def clock(installation: Installation) -> Finding:
    """This host's clock against the database server's."""
    db = installation.database()
    if db is None:
        return _unreachable("clock", installation)
    if db.engine.dialect.name == "sqlite":
        return Finding("clock", SKIPPED, "SQLite keeps no clock of its own: nothing to compare")
    with db.engine.connect() as conn:
        before = time.time()
        server_now: dt.datetime = conn.scalar(text("SELECT clock_timestamp()"))
        after = time.time()
    skew = server_now.timestamp() - (before + after) / 2
    said = f"{abs(skew):.1f} s {'behind' if skew > 0 else 'ahead of'} the database server"
    fix = "run an NTP client (chrony or systemd-timesyncd) on this host and on the database's"
    if abs(skew) > CLOCK_ERROR_SECONDS:
        return Finding("clock", ERROR, f"this host's clock is {said}", fix)
    if abs(skew) > CLOCK_WARNING_SECONDS:
        return Finding("clock", WARNING, f"this host's clock is {said}", fix)
    return Finding(
        "clock", OK, f"within {CLOCK_WARNING_SECONDS:.0f} s of the database ({skew:+.2f} s)"
    )


def redis(installation: Installation) -> Finding:
    """Reachable, writable, and keeping what it is given (no eviction of queued jobs)."""
    settings = installation.settings
    if not settings.redis_url:
        status = WARNING if installation.production else SKIPPED
        return Finding(
            "redis", status, "no KINDLY_REDIS_URL: jobs run inside the web process",
            "set KINDLY_REDIS_URL and run `kindly worker` processes" if status == WARNING else "",
        )  # fmt: skip
    from redis.exceptions import RedisError, ResponseError

    from kindly.infra.redis import redis_connection

    fix = "check KINDLY_REDIS_URL (host, port, password, database number) and that Redis runs"
    try:
        client = redis_connection(settings)
    except ServiceUnavailable as exc:
        return Finding("redis", ERROR, str(exc), fix)
    try:
        probe = f"kindly:doctor:{uuid.uuid4().hex}"
        client.set(probe, "1", px=30_000)
        if client.get(probe) != b"1":
            return Finding("redis", ERROR, "Redis does not keep a key it was just given", fix)
        client.delete(probe)
        version = client.info("server").get("redis_version", "?")
        try:
            policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
        except ResponseError:  # managed Redis often refuses CONFIG
            policy = None
    except RedisError as exc:
        return Finding(
            "redis", ERROR, f"Redis refuses what Kindly needs: {exc}",
            "give the user Kindly connects as read and write rights on all keys "
            "(ACL: ~* +@all -@dangerous)",
        )  # fmt: skip
    finally:
        client.close()
    if policy and policy != "noeviction":
        return Finding(
            "redis", WARNING,
            f"Redis {version} evicts keys when full (maxmemory-policy {policy}): queued jobs "
            "and buffered hits can vanish",
            "set maxmemory-policy noeviction",
        )  # fmt: skip
    return Finding("redis", OK, f"Redis {version}: set, get and delete work")


def storage(installation: Installation) -> Finding:
    """The bucket (or folder) exists, and a probe object can be written, read and deleted."""
    from kindly.infra.storage import LocalStorage, S3Storage, StorageError, open_storage

    settings = installation.settings
    store = open_storage(
        settings.storage_url, settings.s3_endpoint_url, settings.s3_public_endpoint_url,
        s3_upload_attempts=1,  # the doctor reports an outage, it does not ride it out
    )  # fmt: skip
    where = settings.storage_url
    fix = "check KINDLY_STORAGE_URL, KINDLY_S3_ENDPOINT_URL and the AWS_* credentials"
    if isinstance(store, S3Storage):
        missing, absent = _missing_bucket(store)
        if missing:
            bucket_fix = f"create the bucket ({where}), or {fix}" if absent else fix
            return Finding("storage", ERROR, missing, bucket_fix)
        fix = f"{fix}; the credentials need s3:PutObject, s3:GetObject and s3:DeleteObject"
    elif isinstance(store, LocalStorage) and not store.root.is_dir():
        return Finding(
            "storage", WARNING, f"the folder {store.root} does not exist yet",
            "start `kindly serve` once (it creates it) or create it for the user Kindly runs as",
        )  # fmt: skip
    key = f"doctor/probe-{uuid.uuid4().hex}.txt"
    payload = f"kindly doctor {time.time()}".encode()
    step = "write"
    try:
        store.put(key, payload, "text/plain")
        step = "read"
        if store.get(key) != payload:
            return Finding("storage", ERROR, "a probe object read back differs", fix)
        step = "delete"
        store.delete(key)
    except (StorageError, OSError, KeyError) as exc:
        return Finding("storage", ERROR, f"cannot {step} a probe object: {exc}", fix)
    return Finding("storage", OK, f"{_kind(store)}: write, read and delete work")


def _missing_bucket(store) -> tuple[str | None, bool]:
    """Why the bucket cannot be reached (HEAD bucket, nothing created), or None; and whether
    it is because the bucket does not exist."""
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"s3://{store.bucket}" + (f" at {store.endpoint_url}" if store.endpoint_url else "")
    try:
        store.client.head_bucket(Bucket=store.bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        if code in ("404", "NoSuchBucket", "NotFound"):
            return f"the bucket {where} does not exist", True
        return f"HEAD bucket {where} refused: {code}", False
    except BotoCoreError as exc:
        return f"S3 unreachable ({where}): {type(exc).__name__}", False
    return None, False


def _kind(store) -> str:
    bucket = getattr(store, "bucket", None)
    return f"S3 bucket {bucket}" if bucket else f"folder {getattr(store, 'root', '')}"
