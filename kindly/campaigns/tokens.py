"""The debtor's link token: made when a debtor is imported, again when a new link is issued."""

from __future__ import annotations

import secrets

TOKEN_BYTES = 24  # 192 random bits, url-safe: 32 characters


def new_token() -> str:
    """An unguessable link token: 192 random bits."""
    return secrets.token_urlsafe(TOKEN_BYTES)
