"""The debtor's link token: made when a debtor is imported, again when a new link is issued."""

from __future__ import annotations

import secrets

from kindly.infra.csvsafe import FORMULA_START

TOKEN_BYTES = 24  # 192 random bits, url-safe: 32 characters


def new_token() -> str:
    """An unguessable link token: 192 random bits that never start like a spreadsheet formula.

    Exports write the token in a column of its own, and a cell starting with '-' would be
    escaped there (kindly.infra.csvsafe); one draw in 64 starts with '-', so draw again.
    """
    while True:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        if token[0] not in FORMULA_START:
            return token
