"""The log scan: every line the suite logs, checked at the end for the personal values its own
fixtures hold (debtors' names, emails, phone numbers, tokens; payers' IBANs and names).

How it is put together (tests/conftest.py):
- the session makes a folder (the xdist controller, and hands it to its workers);
- each process adds a `ScanHandler` to the root logger, which writes every record as
  production would (kindly.infra.logs.JsonFormatter behind the RedactFilter) to its own
  `<worker>.log` in the folder, and lowers the root logger to INFO, production's level;
- `hold_inserted_values` watches every INSERT and UPDATE any engine runs and writes the
  personal columns' values to `<worker>.values`: whatever a test imports, generates or
  writes through the API is registered, however it got there; `hold` adds more;
- at its end each process appends the `*.log` files its tests wrote under their tmp_path
  (servers and workers the tests started, with their stderr);
- the controller (or the only process) reads all of it and fails the run with each line that
  holds a value, naming the value's kind (`findings`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from kindly.infra.logs import JsonFormatter
from kindly.infra.redact import RedactFilter

FOLDER_VARIABLE = "KINDLY_TEST_LOGSCAN_DIR"
"""Where the session's logs and held values are (inherited by processes the tests start)."""

WATCHED = {
    "debtor": {"first_name": "name", "last_name": "name", "email": "email", "phone": "phone",
               "token": "token"},
    "payment": {"payer_iban": "iban"},
    "refund": {"payer_iban": "iban", "payer_name": "name"},
    "bank_entry": {"counterparty_iban": "iban", "counterparty_name": "name"},
}  # fmt: skip
"""Table -> column -> kind of personal value held in it."""

NOT_KINDLY = ("mail.log", "mail.smtp")
"""Loggers of the suite's stand-ins for the outside world (aiosmtpd as the mail gateway logs
each recipient, as any mail server does): what they write is not Kindly's log."""

MIN_LENGTH = {"name": 4, "email": 6, "phone": 8, "token": 16, "iban": 15}
"""Shorter values are left out: `Li` or `Ana` would match words that are no one's name."""
WORD = re.compile(r"\w+")


def _variants(kind: str, value: str) -> Iterator[str]:
    """The spellings of a value a log line could hold."""
    value = value.strip()
    if len(value) < MIN_LENGTH[kind]:
        return
    yield value
    if kind == "phone" and value.startswith("+"):
        yield value[1:]
    if kind == "iban":
        compact = value.replace(" ", "")
        yield compact
        yield " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


class Registry:
    """The values held in one process, appended to its `.values` file as they come."""

    def __init__(self, path: Path):
        self.path = path
        self.seen: set[str] = set()

    def hold(self, kind: str, *values: str | None) -> None:
        """Register personal values no log line may contain."""
        fresh = []
        for value in values:
            if not isinstance(value, str):
                continue
            for variant in _variants(kind, value):
                if variant not in self.seen and "\n" not in variant and "\t" not in variant:
                    self.seen.add(variant)
                    fresh.append(f"{kind}\t{variant}\n")
        if fresh:
            with self.path.open("a", encoding="utf-8") as out:
                out.writelines(fresh)


class ScanHandler(logging.Handler):
    """Writes each record as production would (JSON, redacted) to the process's log file."""

    def __init__(self, path: Path):
        super().__init__(logging.DEBUG)
        self.path = path
        self.setFormatter(JsonFormatter())
        self.addFilter(RedactFilter())

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(NOT_KINDLY):
            return
        try:
            line = self.format(record).replace("\n", "\\n")
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        except Exception:
            self.handleError(record)


def hold_inserted_values(registry: Registry) -> None:
    """Register the personal columns of every row any engine inserts or updates."""
    from sqlalchemy import Engine, event
    from sqlalchemy.sql.dml import Insert, Update

    def before_execute(_conn, clause, multiparams, params, _options):
        if not isinstance(clause, Insert | Update):
            return
        columns = WATCHED.get(getattr(clause.table, "name", ""))
        if columns is None:
            return
        rows: list = []
        for item in (*multiparams, params):
            rows.extend(item if isinstance(item, list | tuple) else [item])
        compiled = getattr(clause, "_values", None) or {}
        rows.append({getattr(key, "key", key): getattr(value, "value", None)
                     for key, value in dict(compiled).items()})  # fmt: skip
        for row in rows:
            if isinstance(row, dict):
                for column, kind in columns.items():
                    registry.hold(kind, row.get(column))

    event.listen(Engine, "before_execute", before_execute)


def append_files(target: Path, folders: Iterable[Path], pattern: str = "*.log") -> None:
    """Append the log files the tests wrote (a server's or worker's stderr) to `target`."""
    with target.open("a", encoding="utf-8") as out:
        for folder in folders:
            for path in sorted(folder.rglob(pattern)) if folder.is_dir() else ():
                try:
                    text = path.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                for line in text.splitlines():
                    out.write(f"[{path.name}] {line}\n")


def held_values(folder: Path) -> dict[str, str]:
    """Every process's held values: value -> kind."""
    found: dict[str, str] = {}
    for path in folder.glob("*.values"):
        for line in path.read_text(encoding="utf-8").splitlines():
            kind, _, value = line.partition("\t")
            if value:
                found[value] = kind
    return found


def findings(folder: Path, limit: int = 20) -> list[str]:
    """The log lines that hold a registered value, each with the value's kind (at most
    `limit`); empty when the logs are clean.

    A line is checked only for values whose every word it contains (a set lookup), so tens
    of thousands of values against millions of lines stay quick.
    """
    values = held_values(folder)
    by_word: dict[str, list[str]] = {}
    for value in values:
        words = WORD.findall(value)
        if words:
            by_word.setdefault(max(words, key=len), []).append(value)
    found = []
    for path in sorted(folder.glob("*.log")):
        with path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                words = set(WORD.findall(line))
                for word in words & by_word.keys():
                    for value in by_word[word]:
                        if _contains(line, value):
                            found.append(f"{path.name}:{number}: {values[value]} "
                                         f"{value!r} in: {line.strip()[:400]}")  # fmt: skip
                            if len(found) >= limit:
                                return found
    return found


def _contains(line: str, value: str) -> bool:
    """Whether the value occurs in the line as a whole (not inside a longer word)."""
    pattern = r"(?<!\w)" + re.escape(value) + r"(?!\w)"
    return re.search(pattern, line) is not None


def process_log(name: str):
    """A file in the session's folder for a process's stderr (opened for appending; the
    caller closes it once the process has it), scanned with the rest."""
    folder = Path(os.environ[FOLDER_VARIABLE])
    return (folder / f"{worker_name()}-{name}-{os.getpid()}.log").open("a", encoding="utf-8")


def keep_output(name: str, text: str) -> None:
    """Add a process's captured output to what the scan reads."""
    with process_log(name) as out:
        out.write(text)


def worker_name() -> str:
    """This process's name in the folder: the xdist worker id, else `main`."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def hold_copied_debtors(registry: Registry) -> None:
    """Register the debtors a PostgreSQL import COPYs in (COPY passes no execute event)."""
    from kindly.campaigns.portfolio import write

    copy = write._copy_postgresql

    def copy_held(connection, new: list[tuple], changed: list[tuple]) -> None:
        for names, rows in ((write.NEW, new), (write.CHANGED, changed)):
            for values in rows:
                row = dict(zip(names, values, strict=True))
                for column, kind in WATCHED["debtor"].items():
                    registry.hold(kind, row.get(column))
        copy(connection, new, changed)

    write._copy_postgresql = copy_held
