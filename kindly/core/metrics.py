"""The funnel and the money, per campaign."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.core.models import Artifact, Campaign, Debtor, Event, Payment
from kindly.core.money import from_minor

FUNNEL = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "viewed",
    "cta",
    "payment_started",
    "paid",
    "plan_requested",
    "plan_agreed",
    "promise",
)


def _reached(session: Session, campaign: Campaign, *, humans_only: bool) -> dict[str, int]:
    """How many distinct debtors reached each step."""
    query = (
        select(Event.type, func.count(func.distinct(Event.debtor_id)))
        .where(Event.campaign_id == campaign.id)
        .group_by(Event.type)
    )
    if humans_only:
        query = query.where(Event.agent == "human")
    counts = dict(session.execute(query).all())
    return {step: int(counts.get(step, 0)) for step in FUNNEL}


def campaign_stats(session: Session, campaign: Campaign) -> dict[str, Any]:
    """Debtors, the funnel (people only, and raw), artifacts and money collected."""
    debtors = session.scalar(select(func.count(Debtor.id)).where(Debtor.campaign_id == campaign.id))
    collected_rows = session.execute(
        select(Payment.currency, func.sum(Payment.amount_minor))
        .where(Payment.campaign_id == campaign.id, Payment.status == "succeeded")
        .group_by(Payment.currency)
    )
    owed_rows = session.execute(
        select(Debtor.currency, func.sum(Debtor.amount_due_minor))
        .where(Debtor.campaign_id == campaign.id)
        .group_by(Debtor.currency)
    )
    artifacts = dict(
        session.execute(
            select(Artifact.kind, func.count(Artifact.id))
            .join(Debtor, Debtor.id == Artifact.debtor_id)
            .where(Debtor.campaign_id == campaign.id)
            .group_by(Artifact.kind)
        ).all()
    )
    collected = {cur: str(from_minor(int(total), cur)) for cur, total in collected_rows}
    funnel: dict[str, Any] = _reached(session, campaign, humans_only=True)
    funnel["collected"] = collected
    return {
        "campaign": campaign.slug,
        "debtors": int(debtors or 0),
        "funnel": funnel,
        "funnel_raw": _reached(session, campaign, humans_only=False),
        "owed": {cur: str(from_minor(int(total), cur)) for cur, total in owed_rows},
        "collected": collected,
        "artifacts": {kind: int(n) for kind, n in sorted(artifacts.items())},
    }
