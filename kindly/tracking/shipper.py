"""The journal's shipper: moves journaled hits (kindly.tracking.journal) into the database in
batches, exactly once, and deletes a segment once it is closed and stored.

One shipper ships a folder at a time: it holds `ship.lock` (flock), so web processes' shipper
threads and `kindly events ship` can all run on one folder and only one works; when it dies
its lock goes with it and another takes over. Per segment it keeps the offset stored so far in
`<segment>.shipped`, written after the batch's commit: a shipper killed between the commit and
that write offers the batch again, and each record's idempotency key (the events table's
unique key, ON CONFLICT DO NOTHING) stores it once.

A click that looked like a person's carries `_burst` (its link and time): whether it was part
of a scanner's burst over every link is settled here, against the clicks already stored and
those earlier in the batch, so the answer never waited for that question.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from kindly.tracking.eventbuffer import write_raw
from kindly.tracking.journal import SHIPPED_SUFFIX, is_segment, shipped_offset
from kindly.tracking.models import Event
from kindly.tracking.verdict import BURST_WINDOW, is_burst

log = logging.getLogger(__name__)

LOCK_NAME = "ship.lock"
BATCH = 500
"""Records per transaction."""
READ_BYTES = 512 * 1024
"""Bytes read per batch: 500 records of about 350 bytes fit well within."""
LINGER = 0.02
"""Seconds a shipper waits after a pass that found fewer than BATCH records."""
IDLE = 0.05
"""Seconds between looks at the folder while nothing is waiting."""


def _write_offset(segment: Path, offset: int) -> None:
    """Note the stored offset (a temporary file, then a rename: never half a number)."""
    final = segment.parent / (segment.name + SHIPPED_SUFFIX)
    temporary = segment.parent / f".{final.name}.{os.getpid()}"
    try:
        temporary.write_text(str(offset))
        os.replace(temporary, final)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def settle_bursts(session, events: list[dict[str, Any]]) -> None:
    """Mark as automated each click carrying `_burst` whose debtor's links clicked in the
    burst window (stored clicks and this batch's earlier ones) make a burst; drop the mark.

    Per debtor and link only the latest click counts (a link is in the window when its latest
    click is): one grouped query per batch, and a few links per debtor to look at per click,
    however many clicks one debtor's links had."""
    marked = [e for e in events if "_burst" in e]
    if not marked:
        return
    window = BURST_WINDOW.total_seconds()
    since = min(float(e["_burst"][1]) for e in marked) - window
    debtors = {e["debtor_id"] for e in marked}
    latest: dict[int, dict[str | None, float]] = defaultdict(dict)
    link = Event.data["to"].as_string()
    rows = session.execute(
        select(Event.debtor_id, link, func.max(Event.occurred_at))
        .where(
            Event.type == "clicked",
            Event.debtor_id.in_(debtors),
            Event.occurred_at >= dt.datetime.fromtimestamp(since, dt.UTC),
        )
        .group_by(Event.debtor_id, link)
    )
    for debtor_id, name, occurred_at in rows:
        if occurred_at.tzinfo is None:
            occurred_at = occurred_at.replace(tzinfo=dt.UTC)
        latest[debtor_id][name] = occurred_at.timestamp()
    for event in events:
        if event.get("type") != "clicked":
            continue
        mark = event.pop("_burst", None)
        name = (event.get("data") or {}).get("to")
        if mark is not None:
            stamp = float(mark[1])
        else:
            stamp = dt.datetime.fromisoformat(event["occurred_at"]).timestamp()
        links = latest[event["debtor_id"]]
        links[name] = max(stamp, links.get(name, stamp))
        if mark is not None and event["agent"] == "human":
            recent = [at for at in links.values() if at >= stamp - window]
            if is_burst(recent):
                event["agent"] = "automated"


def store(db, lines: list[bytes]) -> int:
    """Write journal records to the database in one transaction (keys already stored are
    skipped); a line that is not an event is logged and left out. Returns records offered."""
    raws: list[bytes] = []
    parsed: list[dict[str, Any]] = []
    for line in lines:
        try:
            event = json.loads(line)
            if not isinstance(event, dict) or "idempotency_key" not in event:
                raise ValueError("not an event")
        except ValueError:
            log.error("event journal: a record that is not an event was skipped (%d bytes)",
                      len(line))  # fmt: skip
            continue
        parsed.append(event)
        raws.append(line)
    if not parsed:
        return 0
    with db.session() as session:
        if any("_burst" in event for event in parsed):
            settle_bursts(session, parsed)
            raws = [json.dumps(event, separators=(",", ":")).encode() for event in parsed]
        write_raw(session, raws)
    return len(parsed)


class Shipper:
    """Ships one journal folder into the database (see the module's docstring)."""

    def __init__(self, folder: Path, db, *, batch: int = BATCH):
        self.folder = Path(folder)
        self.db = db
        self.batch = batch
        self._lock_fd = -1
        self._offsets: dict[str, int] = {}  # kept here too: a full disk refuses the files
        self.shipped = 0  # records stored by this shipper (offered: re-offers count too)

    @property
    def holding(self) -> bool:
        """Whether this shipper holds the folder's lock."""
        return self._lock_fd >= 0

    def acquire(self, *, wait: bool = False) -> bool:
        """Take the folder's shipping lock; False when another shipper has it (unless `wait`)."""
        if self._lock_fd >= 0:
            return True
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def release(self) -> None:
        """Let another shipper take the folder."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def ship(self) -> int:
        """One pass over every segment: store what is new, delete what is closed and stored.
        Returns the records stored. Needs the folder's lock."""
        if not self.holding:
            raise RuntimeError("ship() without the folder's lock")
        try:
            names = sorted(name for name in os.listdir(self.folder) if is_segment(name))
        except FileNotFoundError:
            return 0
        total = 0
        for name in names:
            total += self._ship_segment(self.folder / name)
        return total

    def _ship_segment(self, segment: Path) -> int:
        try:
            fd = os.open(segment, os.O_RDONLY)
        except FileNotFoundError:
            return 0
        total = 0
        try:
            try:  # a lock nobody else holds: no process will ever append to it again
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                closed = True
            except BlockingIOError:
                closed = False
            size = os.fstat(fd).st_size
            offset = max(shipped_offset(segment), self._offsets.get(segment.name, 0))
            while offset < size:
                chunk = os.pread(fd, min(READ_BYTES, size - offset), offset)
                lines = chunk.split(b"\n")[:-1][: self.batch]  # complete lines only
                if not lines:
                    break
                consumed = sum(len(line) + 1 for line in lines)
                total += store(self.db, [line for line in lines if line])
                offset += consumed
                self._offsets[segment.name] = offset
                try:
                    _write_offset(segment, offset)
                except OSError as exc:  # the disk is full: this shipper remembers it
                    log.warning("journal shipper: cannot note the offset of %s (%s)",
                                segment.name, exc.strerror)  # fmt: skip
            if closed and b"\n" not in os.pread(fd, READ_BYTES, offset):
                if offset < size:  # a record the disk cut short: its hit went the other way
                    log.warning("event journal: %d bytes of an unfinished record at the end "
                                "of %s ignored", size - offset, segment.name)  # fmt: skip
                segment.unlink()
                self._offsets.pop(segment.name, None)
                with contextlib.suppress(FileNotFoundError):
                    (segment.parent / (segment.name + SHIPPED_SUFFIX)).unlink()
        finally:
            os.close(fd)
        self.shipped += total
        return total

    def drain(self, *, passes: int = 10_000) -> int:
        """Ship until a pass finds nothing new (tests, `kindly events ship --once`)."""
        total = 0
        for _ in range(passes):
            done = self.ship()
            total += done
            if not done:
                break
        return total


class ShipperThread(threading.Thread):
    """A daemon thread in a web process: ships the folder whenever it holds its lock, and
    otherwise looks every second whether the shipper holding it has gone."""

    def __init__(self, folder: Path, db):
        super().__init__(name="kindly-journal-shipper", daemon=True)
        self.shipper = Shipper(folder, db)
        self.stopping = threading.Event()

    def run(self) -> None:
        """Ship until stopped; when the database is down, wait and try again."""
        run_shipper(self.shipper, self.stopping)


def run_shipper(shipper: Shipper, stopping: threading.Event, *, wait: bool = False) -> None:
    """Ship the folder until `stopping` is set (the thread's and `kindly events ship`'s loop)."""
    try:
        while not stopping.is_set():
            if not shipper.acquire(wait=wait):
                stopping.wait(1.0)
                continue
            try:
                done = shipper.ship()
            except Exception as exc:  # the database away: the records wait in the journal
                log.warning("journal shipper: %s: %s (retrying)", type(exc).__name__,
                            str(exc).splitlines()[0][:200] if str(exc) else "")  # fmt: skip
                stopping.wait(1.0)
                continue
            if done < shipper.batch:
                stopping.wait(LINGER if done else IDLE)
    finally:
        shipper.release()


@dataclass(frozen=True)
class Lag:
    """How far the shipper is behind the writers of one folder."""

    segments: int
    open_segments: int  # still being written
    unshipped_bytes: int
    unshipped_records: int
    oldest: dt.datetime | None  # the oldest record not yet stored
    shipper_running: bool

    def seconds(self, now: dt.datetime) -> float:
        """Age of the oldest record not yet stored (0 when none)."""
        return max(0.0, (now - self.oldest).total_seconds()) if self.oldest else 0.0


def lag(folder: Path) -> Lag:
    """What the journal folder holds that is not yet stored."""
    folder = Path(folder)
    segments = opened = size_left = records = 0
    oldest: dt.datetime | None = None
    try:
        names = sorted(name for name in os.listdir(folder) if is_segment(name))
    except FileNotFoundError:
        names = []
    for name in names:
        path = folder / name
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            segments += 1
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                opened += 1
            offset = shipped_offset(path)
            rest = b""
            size = os.fstat(fd).st_size
            while offset + len(rest) < size:
                piece = os.pread(fd, READ_BYTES, offset + len(rest))
                if not piece:
                    break
                rest += piece
            complete = rest[: rest.rfind(b"\n") + 1]
            size_left += len(complete)
            records += complete.count(b"\n")
            if complete:
                try:
                    first = json.loads(complete[: complete.index(b"\n")])
                    at = dt.datetime.fromisoformat(first["occurred_at"])
                    oldest = at if oldest is None or at < oldest else oldest
                except (ValueError, KeyError, TypeError):
                    pass
        finally:
            os.close(fd)
    running = False
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        pass
    else:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            running = True
        finally:
            os.close(fd)
    return Lag(segments, opened, size_left, records, oldest, running)
