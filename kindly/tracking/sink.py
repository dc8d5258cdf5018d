"""Where an answered hit goes: the local journal (kindly.tracking.journal) when there is one
and it takes the hit, else the synchronous way it went before the journal: the Redis stream
(kindly.tracking.eventbuffer), or the database itself without Redis or with Redis failing.
Either way the hit is stored before or soon after it is answered, never dropped."""

from __future__ import annotations

import logging
from typing import Any

from kindly.tracking.eventbuffer import RedisEventBuffer, write_batch
from kindly.tracking.journal import Journal, encode
from kindly.tracking.verdict import BURST_LINKS, BURST_WINDOW

log = logging.getLogger(__name__)


class EventSink:
    """The journal, the Redis stream and the database, tried in that order."""

    def __init__(self, journal: Journal | None, buffer: RedisEventBuffer | None, db):
        self.journal = journal
        self.buffer = buffer
        self.db = db

    def add(self, event: dict[str, Any], *, burst: tuple[str, float] | None = None) -> None:
        """Store one answered hit. `burst` (the clicked link and when) asks for the scanner
        check on a click that looked like a person's: settled by the shipper when journaled,
        by Redis or the database otherwise."""
        journal = self.journal
        if journal is not None:
            record = encode(event if burst is None else event | {"_burst": list(burst)})
            if journal.append_record(record):
                return
        if self.buffer is not None:
            try:
                if burst is None:
                    self.buffer.add(event)
                else:
                    link, stamp = burst
                    since = stamp - BURST_WINDOW.total_seconds()
                    self.buffer.add_click(event, link, stamp, since, BURST_LINKS)
                return
            except Exception as exc:  # Redis failing too: the database, as without Redis
                if journal is None:
                    raise
                log.warning("event sink: Redis failed (%s); storing the hit directly",
                            type(exc).__name__)  # fmt: skip
        from kindly.tracking.shipper import settle_bursts

        row = event if burst is None else event | {"_burst": list(burst)}
        with self.db.session() as session:
            settle_bursts(session, [row])
            write_batch(session, [row])
