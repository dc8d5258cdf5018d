"""The local event journal: every answered hit is appended to a file on this machine's disk
with one write(2) before the answer goes out, and shipped to the database in the background
(kindly.tracking.shipper).

A SIGKILLed process loses nothing it journaled: the kernel holds what was written. A machine
crash (power, kernel panic) can lose what was written since the last fsync, which the policy
bounds: `always` (fdatasync before each answer), every N ms (a thread of the process syncs;
the default, 100 ms) or `never` (the kernel's own writeback, about 30 s on Linux).

Files, in one folder shared by the web processes of a machine:

- `<time>-<pid>-<random>.jnl`: a segment, one JSON event per line, written by one process
  only. The writer holds an exclusive flock on it for as long as it may append; a segment
  nobody holds a lock on is closed for good (rotated, or its process died), so a shipper
  may delete it once everything in it is stored. A segment is created under a temporary
  name, locked, then renamed, so no shipper ever sees it unlocked while it is still written.
- `<segment>.shipped`: the byte offset up to which the segment is stored in the database
  (written after the commit; lost or behind, records are offered again and their
  idempotency keys make that harmless).
- `ship.lock`: held by the one shipper that ships this folder (kindly.tracking.shipper).

When the journal cannot take a hit (the disk is full or unwritable, or the journal is over
its size limit), `append` says so and the caller stores the hit the synchronous way
(EventSink): nothing answered is dropped.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from kindly.infra.fsync import FsyncPolicy, parse_fsync

log = logging.getLogger(__name__)

SEGMENT_SUFFIX = ".jnl"
SHIPPED_SUFFIX = ".shipped"
SEGMENT_BYTES = 4 * 1024 * 1024
"""A segment is closed and a new one begun past this size: shipped segments are deleted
whole, so this is also about the most disk a shipped-but-open segment keeps."""
DEFAULT_FSYNC = "100ms"
"""Like Redis's `appendfsync everysec`, tighter: a machine crash loses at most the hits of
the last 100 ms (and those in an fsync still under way)."""
DEFAULT_LIMIT_MB = 1024
RETRY_SECONDS = 1.0
"""After the disk refused a write, hits take the synchronous path this long before the
journal is tried again (a full disk is not retried on every hit)."""
CHECK_SECONDS = 1.0
"""How often a writer re-counts the folder's unshipped bytes against the limit."""
ALARM_SECONDS = 60.0
"""At most one log line per this many seconds while the journal is over its limit."""

_SEGMENT = re.compile(r"^\d{19}-\d+-[0-9a-f]{8}\.jnl$")


def is_segment(name: str) -> bool:
    """Whether a file name in the folder is a journal segment."""
    return bool(_SEGMENT.match(name))


def shipped_offset(segment: Path) -> int:
    """The segment's offset already stored in the database (0 when none was noted)."""
    try:
        return int((segment.parent / (segment.name + SHIPPED_SUFFIX)).read_text() or 0)
    except (OSError, ValueError):
        return 0


def backlog_bytes(folder: Path) -> int:
    """Bytes journaled in the folder and not yet stored."""
    total = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if is_segment(entry.name):
            try:
                size = entry.stat().st_size
            except OSError:
                continue
            total += max(0, size - shipped_offset(Path(entry.path)))
    return total


def encode(event: dict[str, Any]) -> bytes:
    """One record: the event as one line of JSON (no raw newline can occur inside)."""
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


class Journal:
    """This process's writer of the journal folder (one open segment, opened on first use
    and again after a fork)."""

    def __init__(self, folder: Path, *, fsync: FsyncPolicy | str = DEFAULT_FSYNC,
                 limit_bytes: int = DEFAULT_LIMIT_MB * 1024 * 1024,
                 segment_bytes: int = SEGMENT_BYTES):  # fmt: skip
        self.folder = Path(folder)
        self.fsync = parse_fsync(fsync) if isinstance(fsync, str) else fsync
        self.limit_bytes = limit_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._fd = -1
        self._pid = 0
        self._size = 0
        self._dirty = False
        self._refused_until = 0.0  # the disk refused a write: synchronous until then
        self._checked_at = 0.0
        self._over = False
        self._alarmed_at = -ALARM_SECONDS
        self._syncer: threading.Thread | None = None
        self.fallbacks = 0  # hits this process sent the synchronous way (tests and status)

    # writing

    def append(self, event: dict[str, Any]) -> bool:
        """Journal one event with one write(2); False when the journal can't take it now
        (the caller then stores it the synchronous way)."""
        return self.append_record(encode(event))

    def append_record(self, record: bytes) -> bool:
        """Journal one encoded record (see `encode`); False when the journal can't take it."""
        now = time.monotonic()
        with self._lock:
            if now < self._refused_until:
                self.fallbacks += 1
                return False
            if now - self._checked_at >= CHECK_SECONDS:
                self._check_limit(now)
            if self._over:
                self.fallbacks += 1
                return False
            try:
                if self._fd < 0 or self._pid != os.getpid():
                    self._open()
                written = os.write(self._fd, record)
                if written != len(record):
                    # a torn record ends the segment: nothing more is written after it, and
                    # the shipper ignores an unfinished last line of a closed segment
                    raise OSError(errno.ENOSPC, "short write to the event journal")
                if self.fsync.mode == "always":
                    os.fdatasync(self._fd)
                self._dirty = True
                self._size += written
                if self._size >= self.segment_bytes:
                    self._close()
            except OSError as exc:
                self._refuse(now, exc)
                return False
        return True

    def _open(self) -> None:
        """A new segment of this process's own, locked before any shipper can see it."""
        if self._pid != os.getpid():  # inherited through a fork: the parent's, not ours
            self._fd, self._syncer = -1, None
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():019d}-{os.getpid()}-{secrets.token_hex(4)}{SEGMENT_SUFFIX}"
        temporary = self.folder / f".new-{name}"
        fd = os.open(temporary, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(temporary, self.folder / name)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        self._fd, self._pid, self._size, self._dirty = fd, os.getpid(), 0, False
        if self.fsync.mode == "interval" and self._syncer is None:
            self._syncer = threading.Thread(target=self._sync_loop, name="kindly-journal-sync",
                                            daemon=True)  # fmt: skip
            self._syncer.start()

    def _close(self) -> None:
        """End the current segment (synced first unless the policy is `never`): its lock goes
        with the descriptor, and a shipper may delete it once it is stored."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        try:
            if self._dirty and self.fsync.mode != "never":
                os.fdatasync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
            self._dirty = False

    def _refuse(self, now: float, exc: OSError) -> None:
        """The disk refused: close the segment (a torn record stays its last) and send hits
        the synchronous way for a while."""
        self._refused_until = now + RETRY_SECONDS
        self.fallbacks += 1
        if self._fd >= 0 and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = -1
        log.error("event journal: %s (%s); hits are stored synchronously for %.0f s",
                  os.strerror(exc.errno) if exc.errno else exc, self.folder,
                  RETRY_SECONDS)  # fmt: skip

    def _check_limit(self, now: float) -> None:
        self._checked_at = now
        backlog = backlog_bytes(self.folder)
        self._over = backlog >= self.limit_bytes
        if self._over and now - self._alarmed_at >= ALARM_SECONDS:
            self._alarmed_at = now
            log.error("event journal over its limit: %d MB not yet stored of %d MB allowed "
                      "(%s); hits are stored synchronously until the shipper catches up",
                      backlog // 2**20, self.limit_bytes // 2**20, self.folder)  # fmt: skip

    def _sync_loop(self) -> None:
        """fdatasync the open segment every interval while it has unsynced writes."""
        me = os.getpid()
        while os.getpid() == me:
            time.sleep(self.fsync.interval_ms / 1000)
            self.sync()

    def sync(self) -> None:
        """Force what this process journaled to disk now (outside the writers' lock)."""
        with self._lock:
            if self._fd < 0 or not self._dirty or self._pid != os.getpid():
                return
            fd = os.dup(self._fd)  # the segment may rotate meanwhile; this copy stays valid
            self._dirty = False
        try:
            os.fdatasync(fd)
        except OSError as exc:
            log.warning("event journal: fsync failed: %s", exc)
        finally:
            os.close(fd)

    def close(self) -> None:
        """End this process's segment (synced unless the policy is `never`)."""
        with self._lock:
            if self._pid == os.getpid():
                self._close()
