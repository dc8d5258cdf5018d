"""The campaign manager's dashboard under /admin: sign-in, campaigns, users, audit log.

Every page needs a signed-in user; the role decides what they may change
(viewer: read only, manager: campaigns, admin: users too). The page modules put their
routes on `bp` (web.admin.common).
"""

from __future__ import annotations

from web.admin import (
    auth,
    bank,
    bankreport,
    campaigns,
    case,
    creditors,
    debtors,
    disputes,
    inbox,
    ledger,
    people,
    refunds,
    rules,
    settings,
)
from web.admin.common import bp

__all__ = [
    "auth", "bank", "bankreport", "bp", "campaigns", "case", "creditors", "debtors", "disputes",
    "inbox", "ledger", "people", "refunds", "rules", "settings",
]  # fmt: skip
