"""Which microsite pages changed, as PostgreSQL says it (LISTEN on `kindly_pages`).

A web process keeps the pages it served together with the live state they were built from
(web.debtor.fastlane). Migration 0970's triggers notify the debtors, campaigns or `*` (all) a
committed change touched. A kept page may be served without reading the database while the
watch is listening and no notification touching it arrived after the read it was built from:

- `snapshot()` is taken *before* that read; a change committed earlier has been read, or its
  notification comes later and marks the page stale (at worst one needless read more);
- every notification gets the next sequence number, and each debtor, campaign and `*` keeps
  the number of the last one naming it; a page read at sequence s is current while none of
  its marks is above s;
- a lost connection makes every kept page stale (a new generation) until listening again:
  notifications sent meanwhile are gone, so nothing read before can be trusted.

A change that outdates stored pages without touching these rows (a creditor profile, say)
reaches kept pages through `kindly.site.artifacts.mark_stale`: it updates the artifact rows,
whose trigger names their debtors (or `*` beyond 500), and the stale mark is in the stamp.

The window in which a page can be out of date is the time a notification takes to arrive,
milliseconds; a page is also never kept longer than PAGE_SECONDS by its cache.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)

CHANNEL = "kindly_pages"
MARKS = 100_000
"""Debtors remembered as changed; beyond this every kept page is made stale (bounded memory)."""


@dataclass(frozen=True)
class Seen:
    """When a kept page's live state was read: the watch's generation and sequence then."""

    generation: int
    seq: int


class PageWatch(threading.Thread):
    """A daemon thread in each web process listening for page changes (PostgreSQL only)."""

    def __init__(self, url: str):
        super().__init__(name="kindly-page-watch", daemon=True)
        self.url = url  # a libpq URL (postgresql://…)
        self.pid = 0  # the process that started it (a forked child starts its own)
        self.stopping = threading.Event()
        self.listening = threading.Event()
        self._lock = threading.Lock()
        self._generation = 0
        self._seq = 0
        self._all = 0
        self._debtors: dict[int, int] = {}
        self._campaigns: dict[int, int] = {}

    def snapshot(self) -> Seen | None:
        """Take before reading a page's state; None while not listening (don't keep it)."""
        if not self.listening.is_set():
            return None
        with self._lock:
            return Seen(self._generation, self._seq)

    def current(self, seen: Seen, debtor_id: int, campaign_id: int) -> bool:
        """Whether a state read after `seen` still holds for this debtor."""
        if not self.listening.is_set():
            return False
        with self._lock:
            return (
                seen.generation == self._generation
                and self._all <= seen.seq
                and self._debtors.get(debtor_id, 0) <= seen.seq
                and self._campaigns.get(campaign_id, 0) <= seen.seq
            )

    def apply(self, payload: str) -> None:
        """One notification: `d1,2`, `c3` or `*`."""
        with self._lock:
            self._seq += 1
            kind, ids = payload[:1], payload[1:]
            if kind == "*" or len(self._debtors) >= MARKS:
                self._all = self._seq
                self._debtors.clear()
                self._campaigns.clear()
                return
            marks = self._debtors if kind == "d" else self._campaigns if kind == "c" else None
            if marks is None:
                log.warning("page watch: unknown notification %r; every page made stale", kind)
                self._all = self._seq
                return
            for text in ids.split(","):
                if text.isdigit():
                    marks[int(text)] = self._seq

    def _forget(self) -> None:
        """Notifications may have been missed: nothing read so far can be trusted."""
        self.listening.clear()
        with self._lock:
            self._generation += 1
            self._debtors.clear()
            self._campaigns.clear()

    def run(self) -> None:
        """Listen until stopped; after a lost connection, forget and listen again."""
        import psycopg

        while not self.stopping.is_set():
            try:
                # keepalives: a connection that died without a word is noticed within ~10 s
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5, keepalives=1,
                                     keepalives_idle=4, keepalives_interval=2,
                                     keepalives_count=2) as conn:  # fmt: skip
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._forget()  # a new generation: only reads from now on count
                    self.listening.set()
                    while not self.stopping.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.apply(note.payload)
            except Exception as exc:  # the database away or restarting: pages are read again
                log.warning("page watch: %s: %s (listening again in 1 s)", type(exc).__name__,
                            str(exc).splitlines()[0][:200] if str(exc) else "")  # fmt: skip
            self._forget()
            self.stopping.wait(1.0)
