"""Debtor tokens, payment ids and database key values kept out of every log line."""

from __future__ import annotations

import logging
import re

TOKEN_IN_PATH = re.compile(r"/(s|o|c|u)/[^/?#.\s\"'<>]+")
"""A debtor route's credential: the page token (/s/, /o/, /c/) or an unsubscribe link (/u/)."""
SANDBOX_REF = re.compile(r"sbx_[A-Za-z0-9_-]+")
KEY_VALUE = re.compile(r"Key \(([^)]*)\)=\(.*?\)( already exists| is not present|\))")
"""PostgreSQL's DETAIL of a unique or foreign-key violation names the offending value."""


def redact(text: str) -> str:
    """The text with debtor tokens, sandbox payment ids and violated key values replaced."""
    text = TOKEN_IN_PATH.sub(r"/\1/…", text)
    return KEY_VALUE.sub(r"Key (\1)=(…)\2", SANDBOX_REF.sub("sbx_…", text))


class RedactFilter(logging.Filter):
    """Rewrites each record's message and traceback through `redact`; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(*targets: logging.Logger | logging.Handler) -> None:
    """Add the filter to loggers or handlers that do not have it yet."""
    for target in targets:
        if not any(isinstance(f, RedactFilter) for f in target.filters):
            target.addFilter(RedactFilter())
