"""A campaign's payment plans and promises by status, for the campaign page."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign
from kindly.payments.models import Plan, Promise


def plan_summary(session: Session, campaign: Campaign) -> dict[str, list[tuple[Any, ...]]]:
    """(status, currency, count, total in minor units) for the plans and for the promises."""
    plans = session.execute(
        select(Plan.status, Plan.currency, func.count(Plan.id), func.sum(Plan.total_minor))
        .where(Plan.campaign_id == campaign.id)
        .group_by(Plan.status, Plan.currency)
    ).all()
    promises = session.execute(
        select(Promise.status, Promise.currency, func.count(Promise.id),
               func.sum(Promise.amount_minor))
        .where(Promise.campaign_id == campaign.id)
        .group_by(Promise.status, Promise.currency)
    ).all()  # fmt: skip
    return {
        "plans": [(s, c, int(n), int(t or 0)) for s, c, n, t in plans],
        "promises": [(s, c, int(n), int(t or 0)) for s, c, n, t in promises],
    }
