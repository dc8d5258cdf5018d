"""The long-lived objects of one process: settings, database, storage."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import kindly.models  # noqa: F401 - every table registered before the first query
from kindly.infra.config import Settings, load_settings
from kindly.infra.db import Database
from kindly.infra.storage import Storage, open_storage


@dataclass
class Context:
    """Built once per process (web app, worker, command) and reused."""

    settings: Settings

    @cached_property
    def db(self) -> Database:
        """The database, connected lazily."""
        return Database(self.settings.database_url)

    @cached_property
    def storage(self) -> Storage:
        """The artifact store."""
        return open_storage(
            self.settings.storage_url,
            self.settings.s3_endpoint_url,
            self.settings.s3_public_endpoint_url,
            s3_upload_attempts=self.settings.s3_upload_attempts,
        )

    @cached_property
    def event_buffer(self):
        """The Redis stream that takes hits off the request path, or None without Redis."""
        if not self.settings.redis_url:
            return None
        from kindly.infra.redis import redis_connection
        from kindly.tracking.eventbuffer import RedisEventBuffer

        return RedisEventBuffer(redis_connection(self.settings))

    @cached_property
    def journal(self):
        """This process's writer of the local event journal, or None when it is off."""
        if self.settings.journal is None:
            return None
        from kindly.tracking.journal import Journal

        return Journal(self.settings.journal, fsync=self.settings.journal_fsync,
                       limit_bytes=self.settings.journal_limit_mb * 2**20)  # fmt: skip

    @cached_property
    def events(self):
        """Where answered hits go: the journal, else Redis, else the database (EventSink)."""
        from kindly.tracking.sink import EventSink

        return EventSink(self.journal, self.event_buffer, self.db)

    @cached_property
    def rate_limiter(self):
        """Request counters per address or link: Redis when configured, else the database."""
        from kindly.site.ratelimit import RateLimiter

        return RateLimiter(self.db, self.settings.secret_key, self.settings.redis_url)

    def close(self) -> None:
        """Release pooled connections."""
        if "journal" in self.__dict__ and self.journal is not None:
            self.journal.close()
        if "db" in self.__dict__:
            self.db.dispose()


_current: Context | None = None


def current() -> Context:
    """This process's context, built from the environment the first time."""
    global _current
    if _current is None:
        _current = Context(load_settings())
    return _current


def use(context: Context | None) -> None:
    """Install a context (the CLI and tests do this); None forgets it."""
    global _current
    if _current is not None and _current is not context:
        _current.close()
    _current = context
