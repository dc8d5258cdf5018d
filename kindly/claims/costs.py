"""Costs booked at cadence steps, by type and legal basis (RDG § 13a).

Interface only until the cost rules land: no campaign books costs yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session


def booked_minor(session: Session, debtor_ids: Sequence[int]) -> dict[int, int]:
    """The costs booked on each debtor's case, by debtor id (absent: none)."""
    return {}
