"""Past behaviour: how the same case went in earlier campaigns, for a whole batch at once."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from kindly.campaigns.models import Campaign, Debtor
from kindly.payments.models import Payment
from kindly.tracking.models import Event

NO_HISTORY: Mapping[str, Any] = MappingProxyType({
    "past_campaigns": 0, "past_paid": False, "past_plan": False, "past_disputed": False,
})  # fmt: skip
"""The past facts of a debtor whose case was never seen before (read-only: it is shared)."""


def past_behaviour(
    session: Session, campaign_id: int, debtor_ids: list[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Per debtor of the campaign (all, or those in `debtor_ids`), in one query: how many
    earlier campaigns had the same case (same reference, or the same email address), and
    whether the debtor paid, agreed a plan or disputed there. Debtors without one are left out.
    """
    this, earlier = aliased(Debtor), aliased(Debtor)
    now, before = aliased(Campaign), aliased(Campaign)
    same_email = and_(this.email.is_not(None), this.email != "", earlier.email == this.email)
    paid = or_(
        select(Payment.id)
        .where(Payment.debtor_id == earlier.id, Payment.status == "succeeded")
        .exists(),
        select(Event.id).where(Event.debtor_id == earlier.id, Event.type == "paid").exists(),
    )
    plan = select(Event.id).where(Event.debtor_id == earlier.id, Event.type == "plan_agreed")
    disputed = select(Event.id).where(
        Event.debtor_id == earlier.id,
        Event.type == "contact",
        Event.data["topic"].as_string() == "dispute",
    )
    query = (
        select(this.id, earlier.id, paid, plan.exists(), disputed.exists())
        .join(now, now.id == this.campaign_id)
        .join(earlier, or_(earlier.reference == this.reference, same_email))
        .join(before, before.id == earlier.campaign_id)
        .where(this.campaign_id == campaign_id, earlier.campaign_id != campaign_id)
        .where(before.created_at < now.created_at)
    )
    if debtor_ids is not None:
        query = query.where(this.id.in_(debtor_ids))
    found: dict[int, dict[str, Any]] = {}
    cases: dict[int, set[int]] = {}
    for debtor_id, earlier_id, was_paid, had_plan, was_disputed in session.execute(query):
        past = found.setdefault(debtor_id, dict(NO_HISTORY))
        cases.setdefault(debtor_id, set()).add(earlier_id)
        past["past_campaigns"] = len(cases[debtor_id])
        past["past_paid"] = past["past_paid"] or bool(was_paid)
        past["past_plan"] = past["past_plan"] or bool(had_plan)
        past["past_disputed"] = past["past_disputed"] or bool(was_disputed)
    return found


def past_of(history: dict[int, dict[str, Any]], debtor: Debtor) -> Mapping[str, Any]:
    """One debtor's past facts out of a batch's `past_behaviour`."""
    return history.get(debtor.id, NO_HISTORY)
