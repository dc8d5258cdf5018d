"""The database's half of a backup: PostgreSQL through pg_dump / pg_restore (custom format,
binaries matched to the server), the embedded SQLite file through SQLite's backup API."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from kindly.backup.manifest import BackupError

DUMP_TIMEOUT_SECONDS = 6 * 3600
"""Longer than any dump should take; a hung pg_dump must not hang a cron job forever."""
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
"""Where Debian and Ubuntu install each major version's client (`<major>/bin/pg_dump`)."""
REJECTED_STDERR = ("DETAIL:", "CONTEXT:", "LINE ", "HINT:", "Command was:")
"""Lines of a PostgreSQL error that quote row values (personal data): never repeated."""


def engine_of(url: str) -> str:
    """`postgresql` or `sqlite`, from a KINDLY_DATABASE_URL."""
    name = make_url(url).get_backend_name()
    if name not in ("postgresql", "sqlite"):
        raise BackupError(f"backups support PostgreSQL and SQLite, not {name}")
    return name


def sqlite_path(url: str) -> Path:
    """The file of a sqlite:/// URL."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


# ---- PostgreSQL ------------------------------------------------------------------------------


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and the environment that carries it
    (a password on a command line is visible to every user of the machine)."""
    from psycopg.conninfo import make_conninfo

    parsed = make_url(url)
    params: dict[str, Any] = {}
    for name, value in parsed.query.items():
        params[name] = value[-1] if isinstance(value, tuple) else value
    for name, value in (("host", parsed.host), ("port", parsed.port), ("user", parsed.username),
                        ("dbname", parsed.database)):  # fmt: skip
        if value:
            params[name] = str(value)
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    return make_conninfo("", **params), env


def _connect(url: str):
    import psycopg

    conninfo, env = _libpq(url)
    return psycopg.connect(conninfo, password=env.get("PGPASSWORD"), autocommit=True)


def server_facts(url: str) -> dict[str, Any]:
    """The server's major version, the schema Kindly's tables live in and how many there are."""
    import psycopg

    try:
        with _connect(url) as conn:
            schema = conn.execute("SELECT current_schema()").fetchone()[0]
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchone()[0]
            return {"major": conn.info.server_version // 10000, "schema": schema,
                    "tables": tables, "version": conn.info.server_version}  # fmt: skip
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackupError(f"database unreachable: {reason}") from None


def tool_major(path: Path) -> int | None:
    """The major version a pg_dump / pg_restore / psql binary reports, or None."""
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True,
                             timeout=30, check=False).stdout  # fmt: skip
    except OSError:
        return None
    found = re.search(r"\(PostgreSQL\) (\d+)", out)
    return int(found.group(1)) if found else None


def find_tool(name: str, at_least: int, pg_bin: Path | None = None) -> Path:
    """The `name` binary for a server (or dump) of major version `at_least`: from `pg_bin`
    when given, else the same major's Debian folder, else PATH, else any newer Debian one.
    pg_dump refuses servers newer than itself, and pg_restore archives of a newer pg_dump."""
    if pg_bin is not None:
        candidates = [pg_bin / name]
    else:
        candidates = [DEBIAN_BINARIES / str(at_least) / "bin" / name]
        on_path = shutil.which(name)
        if on_path:
            candidates.append(Path(on_path))
        if DEBIAN_BINARIES.is_dir():
            newer = sorted((p for p in DEBIAN_BINARIES.iterdir() if p.name.isdigit()),
                           key=lambda p: int(p.name))  # fmt: skip
            candidates += [p / "bin" / name for p in newer if int(p.name) > at_least]
    found: list[str] = []
    for path in candidates:
        if not path.is_file():
            continue
        major = tool_major(path)
        if major is not None and major >= at_least:
            return path
        found.append(f"{path} (version {major})")
    seen = f"; found only {', '.join(found)}" if found else ""
    raise BackupError(
        f"no {name} of PostgreSQL {at_least} or newer{seen}: install the matching client "
        f"(e.g. apt-get install postgresql-client-{at_least}) or name its folder with "
        f"--pg-bin / KINDLY_PG_BIN"
    )


def _run(command: list[str], env: dict[str, str], what: str, **kwargs: Any) -> None:
    with tempfile.TemporaryFile() as errors:
        try:
            result = subprocess.run(
                command, env=os.environ | env, stderr=errors, timeout=DUMP_TIMEOUT_SECONDS,
                check=False, **kwargs,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise BackupError(f"{what} did not finish in {DUMP_TIMEOUT_SECONDS} s") from None
        if result.returncode != 0:
            errors.seek(0)
            raise BackupError(f"{what} failed: {_error_lines(errors.read())}")


def _error_lines(stderr: bytes) -> str:
    """The error lines of a PostgreSQL tool, without the ones that quote data."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
    kept = [line for line in lines if line and not any(m in line for m in REJECTED_STDERR)]
    kept = [line for line in kept if "ERROR" in line or "error" in line] or kept
    return "; ".join(kept[:3]) or "no message"


def pg_dump(url: str, target: Path, pg_bin: Path | None = None) -> dict[str, Any]:
    """Dump the database in pg_dump's custom format (compressed, one consistent snapshot)."""
    facts = server_facts(url)
    tool = find_tool("pg_dump", facts["major"], pg_bin)
    conninfo, env = _libpq(url)
    _run([str(tool), "--format=custom", "--no-password", f"--file={target}",
          f"--dbname={conninfo}"], env, "pg_dump")  # fmt: skip
    return {"engine": "postgresql", "server_version": facts["version"],
            "pg_dump": tool_major(tool), "schema": facts["schema"]}  # fmt: skip


def pg_restore(url: str, dump: Path, dump_major: int, *, clean: bool,
               pg_bin: Path | None = None) -> None:  # fmt: skip
    """Restore a custom-format dump in one transaction: either every table and row is there
    afterwards, or (on any error) the database is as it was. `clean` first drops the schema
    Kindly's tables live in, and everything in it.

    pg_restore turns the archive into SQL and psql runs it. The COMMIT is sent only once
    pg_restore has finished without error: a cut-off archive never commits half of itself.
    """
    facts = server_facts(url)
    restore_tool = find_tool("pg_restore", max(dump_major, facts["major"]), pg_bin)
    psql = find_tool("psql", facts["major"], pg_bin)
    conninfo, env = _libpq(url)
    schema = facts["schema"].replace('"', '""')
    prologue = "BEGIN;\n"
    if clean:
        prologue += f'DROP SCHEMA "{schema}" CASCADE;\nCREATE SCHEMA "{schema}";\n'
    with tempfile.TemporaryFile() as restore_errors, tempfile.TemporaryFile() as psql_errors:
        reader = subprocess.Popen(
            [str(restore_tool), "--no-owner", "--no-privileges", "--exit-on-error", "--file=-",
             str(dump)], stdout=subprocess.PIPE, stderr=restore_errors,
        )  # fmt: skip
        writer = subprocess.Popen(
            [str(psql), "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1",
             f"--dbname={conninfo}"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=psql_errors, env=os.environ | env,
        )  # fmt: skip
        piped = _pipe(prologue.encode(), reader, writer)
        status = writer.wait(timeout=DUMP_TIMEOUT_SECONDS)
        if status != 0:  # psql stopped at the first error, before any COMMIT
            psql_errors.seek(0)
            raise BackupError(
                f"restoring the dump failed, nothing was restored: "
                f"{_error_lines(psql_errors.read())}"
            )
        if not piped:
            restore_errors.seek(0)
            raise BackupError(
                f"pg_restore failed, nothing was restored: {_error_lines(restore_errors.read())}"
            )


def _pipe(prologue: bytes, reader: subprocess.Popen, writer: subprocess.Popen) -> bool:
    """Feed the prologue and pg_restore's SQL to psql; COMMIT only when pg_restore succeeded.
    Returns whether it did (False also when psql stopped reading: its status says why)."""
    complete = False
    try:
        writer.stdin.write(prologue)
        shutil.copyfileobj(reader.stdout, writer.stdin, 1 << 20)
        complete = reader.wait(timeout=DUMP_TIMEOUT_SECONDS) == 0
        if complete:
            writer.stdin.write(b"COMMIT;\n")
    except BrokenPipeError:
        pass
    finally:
        reader.stdout.close()  # pg_restore, if still writing, stops on a closed pipe
        if reader.poll() is None:
            reader.kill()
        reader.wait(timeout=60)
        with suppress(BrokenPipeError):
            writer.stdin.close()
    return complete


# ---- SQLite ----------------------------------------------------------------------------------


def sqlite_tables(path: Path) -> int:
    """How many tables a SQLite file holds (0 when it does not exist)."""
    if not path.exists():
        return 0
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchone()[0]


def sqlite_dump(source: Path, target: Path) -> dict[str, Any]:
    """Copy the live database with SQLite's online backup API (a consistent copy while the
    app keeps writing), then check the copy's integrity."""
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(target)) as copy:
        live.backup(copy)
        if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError("the copy of the SQLite database failed its integrity check")
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    return {"engine": "sqlite", "sqlite": sqlite3.sqlite_version}


def sqlite_restore(dump: Path, target: Path) -> None:
    """Write the backup's database over `target` with the backup API: one write transaction,
    so a reader sees the old database or the restored one, never a mix."""
    from kindly.infra.files import make_private_dir

    with closing(sqlite3.connect(dump)) as source:
        if source.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError("the backup's SQLite database failed its integrity check")
        make_private_dir(target.parent)
        with closing(sqlite3.connect(target, timeout=30)) as live:
            source.backup(live)
