"""Interest that accrues on a claim (contractual or statutory, simple, § 289 BGB).

Interface only until the interest rules land: no campaign charges interest yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor


def accrued_minor(session: Session, debtors: Sequence[Debtor], day: dt.date) -> dict[int, int]:
    """Interest accrued and not yet settled on `day`, by debtor id (absent: none)."""
    return {}
