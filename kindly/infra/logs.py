"""The process's log: JSON lines in production, readable lines in development, tokens redacted.

Every web request and every job writes one line of its own (`request` and `job`, see
web.requestlog and workers.worker) with the fields in FIELDS; any other line written while a
request or job runs carries its id and campaign too, so a shipper can group them. Which fields
exist is fixed here: a line never holds a path (it may hold a token), a name, an email, a
phone number or an IBAN — only ids, the route's rule, numbers and the campaign's slug.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from kindly.infra.redact import RedactFilter, install

FIELDS = (
    "request_id", "job_id", "queue", "job", "route", "method", "status", "duration_ms",
    "campaign", "trace_id",
)  # fmt: skip
"""The structured fields a line may carry, in the order they are written."""

FORMATS = ("json", "text")
NOISY = ("botocore", "boto3", "urllib3", "s3transfer", "fontTools", "alembic")
"""Libraries whose INFO lines say nothing an operator needs."""

_current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "kindly_log_scope", default=None
)
"""The fields of the request or job this thread (or task) is working on."""


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a record: its own (`extra=`), else the current scope's."""
    scope = _current.get() or {}
    found = {}
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is None:
            value = scope.get(name)
        if value is not None:
            found[name] = value
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, the FIELDS present,
    and the exception's text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message key=value …`, for a person reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if not fields:
            return line
        first, newline, rest = line.partition("\n")
        pairs = " ".join(f"{name}={value}" for name, value in fields.items())
        return f"{first} {pairs}{newline}{rest}"


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for KINDLY_LOG_FORMAT's value."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be json or text, got {log_format!r}")
    return JsonFormatter() if log_format == "json" else TextFormatter()


class _Handler(logging.StreamHandler):
    """The handler `configure` installs (told apart from a test harness's own)."""


def configure(log_format: str, *, verbose: bool = False, stream: TextIO | None = None) -> None:
    """Send the root logger's records to stderr (or `stream`) in this format, redacted.

    Like logging.basicConfig, it leaves a root logger that someone else already equipped
    (a test harness capturing the log) as it is; its own handler it replaces.
    """
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    # WeasyPrint warns about CSS it skips (e.g. unicode-bidi: isolate) on every letter.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if isinstance(handler, _Handler)]
    if len(ours) != len(root.handlers):
        install(*root.handlers)  # theirs, but still no token in what they write
        return
    for old in ours:
        root.removeHandler(old)
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RedactFilter())  # no token in any process's log
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


@contextmanager
def scope(**fields: Any) -> Iterator[dict[str, Any]]:
    """The fields of one request or job, on every line written inside the block; the dict
    handed out may be filled in as the work learns more (status, campaign)."""
    entry = {name: value for name, value in fields.items() if value is not None}
    reset = _current.set(entry)
    try:
        yield entry
    finally:
        _current.reset(reset)


def note_campaign(slug: str | None) -> None:
    """Record the campaign the current request or job works on (nothing outside one)."""
    entry = _current.get()
    if entry is not None and slug:
        entry["campaign"] = slug


def current() -> dict[str, Any] | None:
    """The current request's or job's fields, or None outside one."""
    return _current.get()
