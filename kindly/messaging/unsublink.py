"""Unsubscribe links with a credential of their own: it opts one debtor out of one channel
and opens nothing else, so a mail scanner fetching it never carries the key to the case."""

from __future__ import annotations

import base64
import hmac
import re

from kindly.infra.constant_time import same

CREDENTIAL = re.compile(r"^([1-9][0-9]{0,17})~([A-Za-z0-9_-]{22})$")
"""`<debtor id>~<128-bit MAC>`: `~` never occurs in a page token, so the two cannot mix."""


def _mac(secret_key: str, debtor_id: int, channel: str) -> str:
    # a key of its own, derived from the secret, so this MAC serves no other purpose
    key = hmac.new(secret_key.encode(), b"kindly-unsubscribe-link", "sha256").digest()
    digest = hmac.new(key, f"{debtor_id}:{channel}".encode(), "sha256").digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def credential(secret_key: str, debtor_id: int, channel: str) -> str:
    """The path segment of the debtor's unsubscribe link for a channel."""
    return f"{debtor_id}~{_mac(secret_key, debtor_id, channel)}"


def debtor_id(secret_key: str, sent: str, channel: str) -> int | None:
    """The debtor a credential names for this channel; None when it is not one of ours."""
    match = CREDENTIAL.match(sent)
    if match is None:
        return None
    number = int(match.group(1))
    return number if same(match.group(2), _mac(secret_key, number, channel)) else None
