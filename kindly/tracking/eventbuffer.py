"""Event ingestion off the request path: hits go to a Redis stream, a writer inserts them
into the database in batches. Nothing is lost: an entry leaves the stream only after its
batch is committed, entries a dead writer held are claimed by another, and idempotency keys
make a repeated insert harmless."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql, sqlite

from kindly.campaigns.models import Debtor
from kindly.infra.db import utcnow
from kindly.tracking.events import AGENTS, CHANNELS, TYPES
from kindly.tracking.models import Event

log = logging.getLogger(__name__)

STREAM = "kindly:events"
_STREAM = STREAM.encode()
GROUP = "writers"
BATCH = 500
CLAIM_IDLE_MS = 30_000
"""Entries a writer has held this long without acknowledging are taken over by another."""
CLAIM_EVERY = 5.0
"""Seconds between looks for a dead writer's entries while there are none (one round trip
each, which every batch used to pay)."""
LINGER = 0.05
"""After a batch smaller than BATCH, the writer waits this long so the next one is bigger:
a batch costs about the same few round trips whatever its size."""

_INSERT_JSON = text(
    "INSERT INTO event (idempotency_key, campaign_id, debtor_id, type, channel, variant, agent,"
    " occurred_at, data)"
    " SELECT idempotency_key, campaign_id, debtor_id, type, channel, variant, agent,"
    " occurred_at, data"
    " FROM json_to_recordset(CAST(:rows AS json)) AS r(idempotency_key varchar,"
    " campaign_id integer, debtor_id integer, type varchar, channel varchar, variant varchar,"
    " agent varchar, occurred_at timestamptz, data json)"
    " ON CONFLICT (idempotency_key) DO NOTHING"
)
"""PostgreSQL reads the buffered JSON itself: the writer neither parses nor binds each event,
which kept it holding the GIL the request threads of its process need."""


_CLICK_SCRIPT = b"""
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local latest = redis.call('HGETALL', KEYS[1])
redis.call('EXPIRE', KEYS[1], 60)
local recent = 0
for i = 2, #latest, 2 do
  if tonumber(latest[i]) >= tonumber(ARGV[3]) then recent = recent + 1 end
end
local burst = recent >= tonumber(ARGV[4])
redis.call('XADD', KEYS[2], '*', 'e', burst and ARGV[6] or ARGV[5])
return burst and 1 or 0
"""
"""RedisEventBuffer.add_click inside Redis: the burst check and the event in one round trip."""


def _packed(*parts: bytes) -> bytes:
    """One command in Redis's wire format."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def _exchange(conn, commands: list[bytes]) -> list[Any]:
    """Write the commands, read every answer (all of them even after an error answer, so
    the connection stays in step), raise the first error."""
    conn.send_packed_command(commands, check_health=False)
    answers, error = [], None
    for _ in commands:
        try:
            answers.append(conn.read_response())
        except ResponseError as exc:
            error = error or exc
            answers.append(None)
    if error is not None:
        raise error
    return answers


def pending(
    debtor: Debtor,
    type_: str,
    *,
    channel: str | None = None,
    agent: str = "human",
    data: dict[str, Any] | None = None,
    key: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """One event as plain data, ready to buffer (validated now, not when written)."""
    if type_ not in TYPES or agent not in AGENTS:
        raise ValueError(f"unknown event type or agent: {type_!r}, {agent!r}")
    return {
        "idempotency_key": key or f"{type_}:{uuid.uuid4().hex}",
        "campaign_id": debtor.campaign_id,
        "debtor_id": debtor.id,
        "type": type_,
        "channel": channel if channel in CHANNELS else None,
        "variant": debtor.variant,
        "agent": agent,
        "occurred_at": (at or utcnow()).isoformat(),
        "data": data or {},
    }


def write_batch(session, rows: list[dict[str, Any]]) -> int:
    """Insert the events, skipping keys already stored; returns how many were offered."""
    if not rows:
        return 0
    values = [row | {"occurred_at": dt.datetime.fromisoformat(row["occurred_at"])} for row in rows]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement = postgresql.insert(Event).on_conflict_do_nothing(
            index_elements=["idempotency_key"]
        )
    elif dialect == "sqlite":
        statement = sqlite.insert(Event).on_conflict_do_nothing(index_elements=["idempotency_key"])
    else:  # pragma: no cover - only the two dialects above are supported
        statement = insert(Event)
    session.execute(statement, values)
    return len(values)


def write_raw(session, raws: list[bytes | str]) -> int:
    """Insert events as buffered (one JSON object each), skipping keys already stored."""
    if not raws:
        return 0
    if session.get_bind().dialect.name != "postgresql":
        return write_batch(session, [json.loads(raw) for raw in raws])
    joined = ",".join(raw.decode() if isinstance(raw, bytes) else raw for raw in raws)
    session.execute(_INSERT_JSON, {"rows": f"[{joined}]"})
    return len(raws)


class RedisEventBuffer:
    """A Redis stream of pending events and the consumer group that writes them."""

    def __init__(self, redis):
        self.redis = redis
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._group_ready = False
        self._holding = False  # entries read and not yet acknowledged (a failed attempt)
        self._claim_at = 0.0  # when to look for a dead writer's entries next
        self._line = threading.local()  # each thread's own connection for send()

    def add(self, event: dict[str, Any]) -> None:
        """Append one event (a single round trip to Redis)."""
        raw = json.dumps(event, separators=(",", ":")).encode()
        self.send([_packed(b"XADD", _STREAM, b"*", b"e", raw)])

    def add_click(self, event: dict[str, Any], link: str, stamp: float, since: float,
                  links: int) -> str:  # fmt: skip
        """Note a click on this link (as clicked_links does) and append the event, whose agent
        is 'automated' when clicks at or after `since` name `links` or more of the debtor's
        links (a scanner following every link), else as given: one round trip, where
        clicked_links and add took two. Returns the agent stored."""
        automated = json.dumps(event | {"agent": "automated"}, separators=(",", ":")).encode()
        given = json.dumps(event, separators=(",", ":")).encode()
        key = f"kindly:clicks:{event['debtor_id']}".encode()
        (verdict,) = self.send([_packed(
            b"EVAL", _CLICK_SCRIPT, b"2", key, _STREAM, link.encode(), repr(stamp).encode(),
            repr(since).encode(), str(links).encode(), given, automated,
        )])  # fmt: skip
        return "automated" if verdict == 1 else event["agent"]

    def clicked_links(self, debtor_id: int, link: str, stamp: float) -> dict[str, float]:
        """Note a click on this link now; every link of the debtor's with its latest click
        (one field per link, kept a minute after the last click; one round trip)."""
        key = f"kindly:clicks:{debtor_id}".encode()
        _, latest, _ = self.send([
            _packed(b"HSET", key, link.encode(), repr(stamp).encode()),
            _packed(b"HGETALL", key),
            _packed(b"EXPIRE", key, b"60"),
        ])  # fmt: skip
        if isinstance(latest, list):  # RESP2 answers a flat list, RESP3 a map
            latest = dict(zip(latest[::2], latest[1::2], strict=True))
        return {name.decode(): float(at) for name, at in latest.items()}

    def send(self, commands: list[bytes]) -> list[Any]:
        """Packed commands on this thread's own connection, written at once, answers read in
        order. The hot routes use this instead of the client's methods: redis-py's pool,
        retry wrapper and packing cost about 90 µs of CPU a call, more than the rest of a
        tracking hit. A broken connection (Redis restarted, an idle one closed) is opened
        again and the commands sent once more: an event sent twice has one idempotency key
        and is stored once."""
        line = self._line
        conn = getattr(line, "conn", None)
        if conn is None or line.pid != os.getpid():  # none yet, or inherited through a fork
            conn = line.conn = self.redis.connection_pool.make_connection()
            line.pid = os.getpid()
        try:
            return _exchange(conn, commands)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            conn.disconnect()
            return _exchange(conn, commands)

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def flush(self, db, *, block_ms: int | None = None) -> int:
        """Write one batch: entries this writer holds from a failed attempt first (a database
        that is back gets them at once), then stale entries of dead writers, then new ones."""
        try:
            return self._flush(db, block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis lost the stream and its group (restarted without persistence, flushed):
            # create them again instead of failing forever.
            log.warning("event writer: the consumer group is gone; creating it again")
            self._group_ready = False
            return self._flush(db, block_ms)

    def _flush(self, db, block_ms: int | None) -> int:
        self._ensure_group()
        entries = []
        if self._holding:  # a failed attempt left entries with this writer: retry them first
            answer = self.redis.xreadgroup(GROUP, self.consumer, {STREAM: "0"}, count=BATCH)
            held = answer[0][1] if answer else []
            gone = [entry_id for entry_id, fields in held if not fields]  # deleted, never acked
            if gone:
                self.redis.xack(STREAM, GROUP, *gone)
            entries = [(entry_id, fields) for entry_id, fields in held if fields]
            self._holding = bool(entries)
        if not entries and time.monotonic() >= self._claim_at:
            entries = self.redis.xautoclaim(
                STREAM, GROUP, self.consumer, CLAIM_IDLE_MS, "0-0", count=BATCH
            )[1]
            # while there were some, look again next time; else not for a while
            self._claim_at = time.monotonic() + (0 if entries else CLAIM_EVERY)
        if not entries:
            answer = self.redis.xreadgroup(
                GROUP, self.consumer, {STREAM: ">"}, count=BATCH, block=block_ms
            )
            entries = answer[0][1] if answer else []
        entries = [(entry_id, fields) for entry_id, fields in entries if fields]
        if not entries:
            return 0
        self._holding = True
        raws = [fields[b"e"] if b"e" in fields else fields["e"] for _, fields in entries]
        with db.session() as session:
            write_raw(session, raws)
        # Acknowledged only after the commit: a crash before this line re-delivers the batch.
        ids = [entry_id for entry_id, _ in entries]
        self.redis.xack(STREAM, GROUP, *ids)
        self.redis.xdel(STREAM, *ids)
        self._holding = False
        return len(raws)

    def flush_all(self, db) -> int:
        """Write until nothing is waiting (tests, `kindly events flush`, shutdown)."""
        total = 0
        while written := self.flush(db):
            total += written
        return total

    def waiting(self) -> int:
        """How many events are in the stream, written or not yet acknowledged."""
        return int(self.redis.xlen(STREAM))


def lag_seconds(redis) -> float:
    """Age of the oldest hit not yet written to the database (0 when none waits), by Redis's
    clock: entries leave the stream only once their batch is committed (`_flush`), and an
    entry's id is the millisecond Redis added it."""
    with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.xrange(STREAM, count=1)
        (seconds, micros), oldest = pipe.execute()
    if not oldest:
        return 0.0
    entry_id = oldest[0][0]
    added_ms = int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-")[0])
    return max(0.0, seconds + micros / 1e6 - added_ms / 1000)


class Writer(threading.Thread):
    """A daemon thread in each web process that drains the buffer into the database."""

    def __init__(self, buffer: RedisEventBuffer, db):
        super().__init__(name="kindly-event-writer", daemon=True)
        self.buffer, self.db = buffer, db
        self.stopping = threading.Event()

    def run(self) -> None:
        """Write batches until stopped; when the database is down, wait and try again."""
        while not self.stopping.is_set():
            try:
                if 0 < self.buffer.flush(self.db, block_ms=200) < BATCH:
                    self.stopping.wait(LINGER)
            except Exception as exc:  # keep serving; the entries stay in the stream
                log.warning("event writer: %s: %s (retrying)", type(exc).__name__, str(exc)[:200])
                self.stopping.wait(1.0)
