"""Fixed-window request counters per client address or link: in Redis when there is one,
in the database otherwise (and while Redis is unreachable).

Each hit is counted atomically before the work it guards (Redis INCR, or one
`INSERT … ON CONFLICT DO UPDATE … RETURNING`), so parallel requests cannot all slip under
the limit; a hit that turns out not to count (a right answer) is given back. Keys are stored
as an HMAC of the address or token under the secret key: neither reaches Redis or a table.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from dataclasses import dataclass, replace

from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kindly.site.models import RateCount

log = logging.getLogger(__name__)

KEEP_SECONDS = 2 * 86400
"""Windows older than this are deleted from the table (the longest window is shorter)."""
REDIS_REST = 30.0
"""Seconds the database counts alone after Redis failed, before Redis is tried again."""


@dataclass(frozen=True)
class Rule:
    """At most `hits` per `seconds` for one key; `name` keeps rules' counters apart."""

    name: str
    hits: int
    seconds: int


@dataclass(frozen=True)
class Ticket:
    """One counted hit: whether it was allowed, and where it was counted (to give it back)."""

    rule: Rule
    key: str  # the HMAC, never the address or token itself
    window: int  # the window's start, in Unix seconds
    count: int
    in_redis: bool = False

    @property
    def allowed(self) -> bool:
        """Whether this hit was within the limit."""
        return self.count <= self.rule.hits

    def retry_after(self, now: float | None = None) -> int:
        """Seconds until the window ends and hits are allowed again (at least 1)."""
        now = time.time() if now is None else now
        return max(1, math.ceil(self.window + self.rule.seconds - now))


class RateLimiter:
    """Counts hits per rule and key (see the module's docstring)."""

    def __init__(self, db, secret: str, redis_url: str | None = None):
        self._db = db
        self._secret = secret.encode()
        self._redis_url = redis_url
        self._redis = None
        self._resting_until = 0.0

    def take(
        self, rule: Rule, key: str, *, now: float | None = None, session: Session | None = None
    ) -> Ticket:
        """Count one hit for the key; the ticket says whether it is within the limit.

        `session`: count inside the caller's transaction (the database counter only), for
        a caller that must not open a second writer (SQLite) or gives the hit back later.
        """
        now = time.time() if now is None else now
        window = int(now // rule.seconds) * rule.seconds
        digest = hmac.new(self._secret, f"{rule.name}:{key}".encode(), hashlib.sha256)
        ticket = Ticket(rule, digest.hexdigest()[:40], window, 0)
        count = self._redis_add(ticket, 1)
        if count is not None:
            return replace(ticket, count=count, in_redis=True)
        return replace(ticket, count=self._db_add(ticket, 1, session))

    def give_back(self, ticket: Ticket, *, session: Session | None = None) -> None:
        """Uncount a hit that turned out not to count against the limit."""
        if ticket.in_redis:
            self._redis_add(ticket, -1)  # lost while Redis is away: the hit stays counted
        else:
            self._db_add(ticket, -1, session)

    def _client(self):
        if self._redis is None:
            from redis import Redis

            self._redis = Redis.from_url(
                self._redis_url, socket_connect_timeout=2, socket_timeout=2
            )
        return self._redis

    def _redis_add(self, ticket: Ticket, step: int) -> int | None:
        """The new count in Redis, or None without Redis (or while it is unreachable)."""
        if not self._redis_url or time.monotonic() < self._resting_until:
            return None
        from redis.exceptions import RedisError

        name = f"kindly:rate:{ticket.rule.name}:{ticket.key}:{ticket.window}"
        try:
            pipe = self._client().pipeline(transaction=True)
            pipe.incrby(name, step)
            pipe.expire(name, ticket.rule.seconds + 60)
            return int(pipe.execute()[0])
        except RedisError as exc:
            # one line, then the database for a while: no wait on Redis per request
            self._resting_until = time.monotonic() + REDIS_REST
            log.warning("rate limits counted in the database for %d s: Redis unreachable (%s)",
                        REDIS_REST, exc)  # fmt: skip
            return None

    def _db_add(self, ticket: Ticket, step: int, session: Session | None) -> int:
        if session is None:
            with self._db.session() as own:
                return self._db_add(ticket, step, own)
        if step < 0:
            table = RateCount.__table__
            session.execute(
                update(table)
                .where(
                    table.c.rule == ticket.rule.name,
                    table.c.key == ticket.key,
                    table.c.window_start == ticket.window,
                )
                .values(hits=table.c.hits + step)
            )
            return ticket.count + step
        count = int(session.execute(_upsert(session, ticket)).scalar_one())
        if count == 1:  # a new window: the time to drop the old ones
            cutoff = ticket.window - KEEP_SECONDS
            session.execute(delete(RateCount).where(RateCount.window_start < cutoff))
        return count


def _upsert(session: Session, ticket: Ticket):
    """INSERT the window's first hit, or add one to it, returning the count: one statement."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = RateCount.__table__
    statement = insert(table).values(
        rule=ticket.rule.name, key=ticket.key, window_start=ticket.window, hits=1
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.rule, table.c.key, table.c.window_start],
        set_={"hits": table.c.hits + 1},
    ).returning(table.c.hits)
