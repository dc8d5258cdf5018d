"""What a viewer sees of a debtor's contact data and of event data: the one place that masks.

Managers and admins see everything; a viewer sees enough to recognise a contact, not enough
to use it, and none of what a debtor wrote or a mail server answered. The dashboard's debtor
page and timeline and the API's event and timeline answers all call `event_data`.
"""

from __future__ import annotations

import re
from typing import Any

HIDDEN = "(masked for your role)"
"""Shown instead of a debtor's own words or a mail server's answer."""

WORDS = frozenset({"message", "diagnostic", "reply", "error", "text", "body", "note"})
"""Keys whose values are free text: a debtor's message, a server's diagnostic or reply."""

CONTACT = frozenset({"phone", "email", "to_address", "recipient"})
"""Keys whose values are a phone number or an email address: masked like the debtor page's."""

PERSON = frozenset({"name", "first_name", "last_name", "birth_date", "iban", "address",
                    "street", "postal_code", "city"})  # fmt: skip
"""Keys whose values identify the person or where they live; hidden outright."""

EMAIL = re.compile(r"[^\s<>\"'(),;:@]+@[^\s<>\"'(),;:@]+")
PHONE = re.compile(r"(?<![\w+])(?:\+|00)\d[\d ()/-]{6,}\d")
"""An international number (+49 151 …, 0049…); amounts and dates do not start so."""


def mask(value: str | None) -> str | None:
    """Enough to recognise a contact, not enough to use it: a•••@example.org, +49•••78."""
    if not value:
        return None
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}•••@{domain}"
    return f"{value[:3]}•••{value[-2:]}" if len(value) > 6 else "•••"


def event_data(data: dict[str, Any] | None, personal: bool) -> dict[str, Any]:
    """An event's data as this role may see it (`personal`: manager or admin)."""
    data = dict(data or {})
    if personal:
        return data
    return {key: _masked(key, value) for key, value in data.items()}


def _masked(key: str, value: Any) -> Any:
    if value is None or value == "":
        return value
    name = key.lower()
    if name in WORDS or name in PERSON:
        return HIDDEN
    if name in CONTACT:
        return mask(str(value))
    if isinstance(value, str):
        # a key no list names may still carry an address or a number (a bounce's status line)
        text = EMAIL.sub(lambda m: mask(m.group(0)) or "", value)
        return PHONE.sub(lambda m: mask(re.sub(r"[^\d+]", "", m.group(0))) or "", text)
    if isinstance(value, dict):
        return {k: _masked(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(key, v) for v in value]
    return value
