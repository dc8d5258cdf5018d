"""Parts of a claim given up, each with its reason (a settlement offer taken, a manager).

Interface only until settlement offers land: nothing is written off yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session


def written_off_minor(session: Session, debtor_ids: Sequence[int]) -> dict[int, int]:
    """What was written off each debtor's claim, by debtor id (absent: none)."""
    return {}
