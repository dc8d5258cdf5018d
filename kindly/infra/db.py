"""Engine, sessions and migrations."""

from __future__ import annotations

import datetime as dt
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    MetaData,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from kindly.errors import ServiceUnavailable
from kindly.infra.files import make_private_dir

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Database:
    """One engine and its session factory; create one per process, not at import.

    Every engine hides statement parameters: an error's message (and so the log) would
    otherwise carry the tokens and personal data being written.
    """

    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite:"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                make_private_dir(Path(path).parent)
            self.engine: Engine = create_engine(
                url, connect_args={"timeout": 30}, hide_parameters=True
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(
                url, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True
            )
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # A forked child (an RQ work horse, a gunicorn worker) must not reuse the parent's
        # pooled connections: two processes on one socket corrupt each other's sessions
        # (psycopg's "prepared statement _pg3_0 already exists" is the first sign).
        os.register_at_fork(after_in_child=_forget_in_child(weakref.ref(self)))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @cached_property
    def reads(self) -> Engine:
        """An engine for hot single-statement reads (a microsite view): autocommit, so no
        BEGIN and ROLLBACK round trips, and no ping before each checkout (callers retry once
        on a dropped connection instead, see `read`). SQLite shares the main engine."""
        if self.engine.dialect.name == "sqlite":
            return self.engine
        return create_engine(
            self.engine.url,
            isolation_level="AUTOCOMMIT",
            pool_size=5,
            max_overflow=10,
            hide_parameters=True,
        )

    def read(self, work):
        """`work(connection)` on a `reads` connection, once more on a fresh one when the
        pooled connection turned out dead (the database restarted since)."""
        try:
            with self.reads.connect() as connection:
                return work(connection)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # the database restarted: every pooled connection is as dead as this one
            self.reads.dispose()
        with self.reads.connect() as connection:
            return work(connection)

    def check(self) -> None:
        """Connect once, or raise ServiceUnavailable with one clear line."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("select 1"))
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise ServiceUnavailable(
                f"database unreachable ({_redact(self.url)}): {reason}"
            ) from None

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config

        self.check()
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # web and workers start together on a fresh database: one migrates, the rest wait
                conn.execute(text("SELECT pg_advisory_xact_lock(72657201)"))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")  # one head since 0990

    def forget_connections(self) -> None:
        """Drop the pools without closing their connections: they belong to the parent."""
        if "reads" in self.__dict__ and self.reads is not self.engine:
            self.reads.dispose(close=False)
        self.engine.dispose(close=False)

    def dispose(self) -> None:
        """Close every pooled connection."""
        if "reads" in self.__dict__ and self.reads is not self.engine:
            self.reads.dispose()
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
    return url


def _forget_in_child(ref: weakref.ref):
    """An after-fork hook that drops the pools of the database `ref` names, if it lives."""

    def hook() -> None:
        database = ref()
        if database is not None:
            database.forget_connections()

    return hook


# ---- the declarative base every table derives from

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC datetime: SQLite hands back the UTC wall time without its
    zone, PostgreSQL with it."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names for migrations."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, dt.datetime: DateTime(timezone=True)}
