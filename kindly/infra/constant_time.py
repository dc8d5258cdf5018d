"""Comparing a secret someone sent with the one expected, in constant time."""

from __future__ import annotations

import hmac


def same(sent: str, expected: str) -> bool:
    """Whether the strings are equal, compared as UTF-8 bytes: `hmac.compare_digest` raises
    TypeError for a str with non-ASCII characters, which a sender controls."""
    return hmac.compare_digest(
        sent.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
