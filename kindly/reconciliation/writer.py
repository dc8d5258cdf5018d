"""The bank import's second thread: the writer that sends each chunk of entries and bookings
over the import's connection while the importing thread decides the next (PostgreSQL with
psycopg), and the helper that runs a server query or storage I/O beside it."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from kindly.reconciliation import matching
from kindly.reconciliation.booking import Booking, write_arrays
from kindly.reconciliation.booking import write as book_rows
from kindly.reconciliation.bulk import insert_rows
from kindly.reconciliation.models import BankEntry

ENTRY = (
    "statement_id", "identity", "account", "entry_ref", "booking_date", "value_date",
    "amount_minor", "currency", "credit", "bank_status", "counterparty_name",
    "counterparty_iban", "counterparty_bic", "remittance", "creditor_reference", "end_to_end_id",
    "bank_code", "is_return", "return_reason", "original_reference", "origin", "state", "rule",
    "matched_text", "reason",
)  # fmt: skip
"""The bank_entry columns an import writes, in the order of `_row`'s values."""


CHUNK = 4096
"""Entries per chunk (at least) the writer thread takes while the next one is decided."""
CHUNKS = 8
"""Chunks a large file is cut into: fewer, larger statements cost the server less each (a
chunk of 12,500 took 100,000 entries in 5.2 s where chunks of 4,096 took 5.5), while eight
still let deciding and writing overlap."""
MAX_CHUNK = 16384


def chunk_size(count: int) -> int:
    """Entries per chunk for a file of `count` fresh ones."""
    return min(max(CHUNK, -(-count // CHUNKS)), max(CHUNK, MAX_CHUNK))


def threaded(connection) -> bool:
    return connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg"


def bookings_of(entry_ids, bookings, fresh, index: matching.Index) -> list[Booking]:
    """The money of the chunk's matched entries (their positions in `fresh`, with the ids
    of all fresh entries in `entry_ids`)."""
    return [
        Booking(
            entry_ids[number], fresh[number][0], 0, verdict.debtor_id,
            index.cases[verdict.debtor_id].campaign_id, entry.amount_minor, entry.currency,
            matching.compact_iban(entry.counterparty_iban),
            entry.booking_date or entry.value_date, item_id=verdict.item_id,
        )
        for number, entry, verdict in bookings
    ]  # fmt: skip


@dataclass
class Chunk:
    rows: list[tuple]
    ids: list[int] | None  # drawn beforehand (PostgreSQL), else given by the insert
    start: int  # the first entry's position among the fresh ones
    bookings: list | None = None  # (position, entry, match), booked once the ids are known
    arrays: dict | None = None  # the bookings as prepared columns (PostgreSQL)


class Writer:
    """Writes chunks of entries and their bookings, in order, in a thread of its own
    (PostgreSQL) or at once; `close` waits for the last one and raises what failed."""

    def __init__(self, connection, *, threaded: bool) -> None:
        self.connection = connection
        self.ids: list[int] = []
        self.pending: list[Chunk] = []
        self.failed: BaseException | None = None
        self.queue: queue.Queue | None = None
        self.thread: threading.Thread | None = None
        if threaded:
            self.queue = queue.Queue(maxsize=2)
            self.thread = threading.Thread(target=self._run, name="bank-import-writer")
            self.thread.start()

    def send(self, chunk: Chunk) -> None:
        if self.failed is not None:
            raise self.failed
        if self.queue is None:
            self._one(chunk)
        else:
            self.queue.put(chunk)

    def close(self, fresh, index: matching.Index, matched: list[Booking]) -> list[int]:
        """Wait for the last chunk; book the chunks whose ids came from their insert."""
        if self.queue is not None and self.thread is not None:
            self.queue.put(None)
            self.thread.join()
        if self.failed is not None:
            raise self.failed
        for chunk in self.pending:
            booked = bookings_of(self.ids, chunk.bookings, fresh, index)
            matched.extend(booked)
            book_rows(self.connection, booked,
                      {b.debtor_id: index.cases[b.debtor_id].variant for b in booked})  # fmt: skip
        return self.ids

    def _run(self) -> None:
        assert self.queue is not None
        while (chunk := self.queue.get()) is not None:
            if self.failed is None:
                try:
                    self._one(chunk)
                except BaseException as error:  # handed to the deciding thread
                    self.failed = error

    def _one(self, chunk: Chunk) -> None:
        table = BankEntry.__table__
        given = chunk.ids if chunk.ids is not None else True
        self.ids.extend(insert_rows(self.connection, table, ENTRY, chunk.rows, ids=given))
        if chunk.arrays is not None:
            write_arrays(self.connection, chunk.arrays)
        elif chunk.bookings:
            self.pending.append(chunk)


class Helper:
    """Runs a call beside this thread (PostgreSQL with psycopg: a server query or storage I/O
    that releases the GIL), or at once elsewhere; `result()` waits and raises what failed.

    A call on the session's connection only ever runs while this thread leaves the session
    alone; `own=True` marks a call that does not touch the session (the storage upload) and
    so may run on a thread of its own beside everything else."""

    def __init__(self, threaded: bool) -> None:
        self.threaded = threaded
        self.pool: ThreadPoolExecutor | None = None
        self.own: ThreadPoolExecutor | None = None

    def __enter__(self) -> Helper:
        return self

    def run(self, function, *args, own: bool = False) -> Future:
        if not self.threaded:
            done: Future = Future()
            try:
                done.set_result(function(*args))
            except BaseException as error:  # raised by result(), as a thread's would be
                done.set_exception(error)
            return done
        if own:
            self.own = self.own or ThreadPoolExecutor(1, thread_name_prefix="bank-import-io")
            return self.own.submit(function, *args)
        self.pool = self.pool or ThreadPoolExecutor(1, thread_name_prefix="bank-import-db")
        return self.pool.submit(function, *args)

    def __exit__(self, *exc) -> None:
        for pool in (self.pool, self.own):
            if pool is not None:
                pool.shutdown(wait=True)
