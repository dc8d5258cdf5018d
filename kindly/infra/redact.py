"""Debtor tokens, payment ids, database key values, email addresses, phone numbers and IBANs
kept out of every log line."""

from __future__ import annotations

import logging
import re

TOKEN_IN_PATH = re.compile(r"/(s|o|c|u)/[^/?#.\s\"'<>]+")
"""A debtor route's credential: the page token (/s/, /o/, /c/) or an unsubscribe link (/u/)."""
SANDBOX_REF = re.compile(r"sbx_[A-Za-z0-9_-]+")
KEY_VALUE = re.compile(r"Key \(([^)]*)\)=\(.*?\)( already exists| is not present|\))")
"""PostgreSQL's DETAIL of a unique or foreign-key violation names the offending value."""


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
"""An address, wherever it comes from: a mail server's reply quoting the recipient, say."""
PHONE = re.compile(r"(?<![\w+])(?:\+\d{8,15}|\d{11,15})(?!\w)")
"""An E.164 number (an SMS gateway's error may echo it); without its plus, from 11 digits on
(shorter runs of digits are ids and counts)."""
IBAN = re.compile(r"\b(?!RF)[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
"""An IBAN, compact or in groups of four (an ISO 11649 RF reference is not one)."""


def redact(text: str) -> str:
    """The text with debtor tokens, sandbox payment ids, violated key values, email
    addresses, phone numbers and IBANs replaced."""
    text = TOKEN_IN_PATH.sub(r"/\1/…", text)
    text = KEY_VALUE.sub(r"Key (\1)=(…)\2", SANDBOX_REF.sub("sbx_…", text))
    if "@" in text:
        text = EMAIL.sub("…@…", text)
    return IBAN.sub("[IBAN]", PHONE.sub("[phone]", text))


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
