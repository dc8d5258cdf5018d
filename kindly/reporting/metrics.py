"""The funnel and the money, per campaign."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign, Debtor
from kindly.cases.read import cases_for
from kindly.infra.db import as_utc
from kindly.money import from_minor
from kindly.payments.models import Payment
from kindly.site.models import Artifact
from kindly.tracking.models import Event

FUNNEL = (
    "sent",
    "outbox",  # only written to the outbox folder (no gateway): nobody received it, not sent
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


# ---- the campaign page: the whole funnel, rates, money and splits ---------------------------

STEPS = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "viewed",
    "verified",
    "cta",
    "payment_started",
    "paid",
    "plan_agreed",
)
"""The funnel as the campaign page draws it, top to bottom."""

SPLITS = ("segment", "channel", "variant", "tone")
"""Debtor attributes the campaign page splits the outcome by."""


@dataclass(frozen=True)
class Rate:
    """A ratio with its parts, so the page can show the formula next to the number."""

    key: str
    label: str
    numerator: int
    denominator: int
    formula: str

    @property
    def value(self) -> float | None:
        """The share in [0, 1], or None when the denominator is zero (nothing to divide)."""
        return self.numerator / self.denominator if self.denominator else None


def _step_sets(session: Session, campaign_id: int, humans_only: bool) -> dict[str, set[int]]:
    """For each event type, the debtors who reached it."""
    query = (
        select(Event.type, Event.debtor_id)
        .where(Event.campaign_id == campaign_id)
        .group_by(Event.type, Event.debtor_id)
    )
    if humans_only:
        query = query.where(Event.agent == "human")
    reached: dict[str, set[int]] = defaultdict(set)
    for type_, debtor_id in session.execute(query):
        reached[type_].add(debtor_id)
    return reached


def _pay_page_visitors(session: Session, campaign_id: int) -> set[int]:
    """Debtors (people) who opened the pay page: a `cta` event with cta=pay."""
    rows = session.execute(
        select(Event.debtor_id, Event.data).where(
            Event.campaign_id == campaign_id, Event.type == "cta", Event.agent == "human"
        )
    )
    return {debtor_id for debtor_id, data in rows if (data or {}).get("cta") == "pay"}


def rates(human: dict[str, set[int]], pay_visitors: set[int]) -> list[Rate]:
    """The rates a marketer expects, each computed on distinct debtors (people only)."""

    def n(step: str) -> int:
        return len(human.get(step, set()))

    sent, delivered = n("sent"), n("delivered")
    base = delivered or sent
    base_name = "delivered" if delivered else "sent"
    paid_after_pay_page = len(human.get("paid", set()) & pay_visitors)
    started = n("payment_started")
    paid, plans = human.get("paid", set()), human.get("plan_agreed", set())
    abandoned = len(human.get("payment_started", set()) - paid)
    pay_page = len(pay_visitors)
    return [
        Rate("delivery", "Delivery rate", delivered, sent, "delivered ÷ sent"),
        Rate("bounce_hard", "Hard bounce rate", n("bounced_hard"), sent, "bounced hard ÷ sent"),
        Rate("bounce_soft", "Soft bounce rate", n("bounced_soft"), sent, "bounced soft ÷ sent"),
        Rate("open", "Open rate", n("opened"), base, f"opened ÷ {base_name}"),
        Rate("click", "Click-through rate", n("clicked"), base, f"clicked ÷ {base_name}"),
        Rate("click_to_open", "Click-to-open rate", n("clicked"), n("opened"), "clicked ÷ opened"),
        Rate("view", "Landing-page view rate", n("viewed"), sent, "viewed ÷ sent"),
        Rate("pay_page_conversion", "Pay page conversion", paid_after_pay_page, pay_page,
             "paid after opening the pay page ÷ opened the pay page"),
        Rate("payment_success", "Payment success rate", n("paid"), started,
             "paid ÷ payment started"),
        Rate("payment_abandonment", "Payment abandonment rate", abandoned, started,
             "started but not paid ÷ payment started"),
        Rate("plan_request", "Plan request rate", n("plan_requested"), n("viewed"),
             "asked for a plan ÷ viewed"),
        Rate("conversion", "Conversion (paid or plan)", len(paid | plans), n("viewed"),
             "paid or plan agreed ÷ viewed"),
    ]  # fmt: skip


def _money(session: Session, campaign_id: int) -> dict[str, Any]:
    """Owed, collected and promised per currency; recovery rate; median days to pay."""
    owed: dict[str, int] = defaultdict(int)
    debtors: dict[int, tuple[str, int, dt.datetime]] = {}
    for debtor_id, currency, amount, created in session.execute(
        select(Debtor.id, Debtor.currency, Debtor.amount_due_minor, Debtor.created_at).where(
            Debtor.campaign_id == campaign_id
        )
    ):
        owed[currency] += int(amount)
        debtors[debtor_id] = (currency, int(amount), created)
    collected: dict[str, int] = defaultdict(int)
    first_paid: dict[int, dt.datetime] = {}
    daily: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for debtor_id, currency, amount, when in session.execute(
        select(Payment.debtor_id, Payment.currency, Payment.amount_minor, Payment.updated_at)
        .where(Payment.campaign_id == campaign_id, Payment.status == "succeeded")
        .order_by(Payment.updated_at)
    ):
        collected[currency] += int(amount)
        when = as_utc(when)
        daily[when.date()][currency] += int(amount)
        first_paid.setdefault(debtor_id, when)
    first_sent = dict(
        session.execute(
            select(Event.debtor_id, func.min(Event.occurred_at))
            .where(Event.campaign_id == campaign_id, Event.type == "sent")
            .group_by(Event.debtor_id)
        ).all()
    )
    promised: dict[str, int] = defaultdict(int)  # promises still running, one per debtor
    with_promise = select(Event.debtor_id).where(
        Event.campaign_id == campaign_id, Event.type == "promise"
    )
    running = session.scalars(select(Debtor).where(Debtor.id.in_(with_promise))).all()
    for case in cases_for(session, running).values():
        if case.state == "promised" and case.promise is not None:
            promised[debtors[case.debtor_id][0]] += case.promise.amount_minor
    days = []
    for debtor_id, paid_at in first_paid.items():
        start = first_sent.get(debtor_id) or (debtors.get(debtor_id) or (None, 0, None))[2]
        if start is not None:
            days.append(max((paid_at - as_utc(start)).total_seconds() / 86400, 0.0))
    currencies = sorted(set(owed) | set(collected))
    return {
        "currencies": currencies,
        "owed_minor": dict(owed),
        "collected_minor": dict(collected),
        "promised_minor": dict(promised),
        "recovery": {c: (collected[c] / owed[c] if owed.get(c) else None) for c in currencies},
        "median_days_to_pay": statistics.median(days) if days else None,
        "paid_debtors": len(first_paid),
        "daily_collected_minor": {day: dict(v) for day, v in sorted(daily.items())},
    }


def _splits(
    session: Session, campaign_id: int, human: dict[str, set[int]]
) -> dict[str, list[dict[str, Any]]]:
    """For each split, one row per group: debtors, viewed, acted, paid, conversion, money."""
    groups: dict[str, dict[str, list[int]]] = {name: defaultdict(list) for name in SPLITS}
    currency_of: dict[int, str] = {}
    for debtor_id, segment, channel, variant, attributes, currency in session.execute(
        select(Debtor.id, Debtor.segment, Debtor.channel, Debtor.variant, Debtor.attributes,
               Debtor.currency).where(Debtor.campaign_id == campaign_id)
    ):  # fmt: skip
        groups["segment"][segment].append(debtor_id)
        groups["channel"][channel].append(debtor_id)
        groups["variant"][variant].append(debtor_id)
        tone = (attributes or {}).get("tone")
        if tone:
            groups["tone"][str(tone)].append(debtor_id)
        currency_of[debtor_id] = currency
    collected_by_debtor: dict[int, int] = defaultdict(int)
    for debtor_id, amount in session.execute(
        select(Payment.debtor_id, Payment.amount_minor).where(
            Payment.campaign_id == campaign_id, Payment.status == "succeeded"
        )
    ):
        collected_by_debtor[debtor_id] += int(amount)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, members in groups.items():
        rows = []
        for value, ids in sorted(members.items()):
            who = set(ids)
            money: dict[str, int] = defaultdict(int)
            for debtor_id in who:
                if collected_by_debtor.get(debtor_id):
                    money[currency_of[debtor_id]] += collected_by_debtor[debtor_id]
            paid = len(who & human.get("paid", set()))
            rows.append({
                "value": value, "debtors": len(who),
                "viewed": len(who & human.get("viewed", set())),
                "cta": len(who & human.get("cta", set())),
                "paid": paid, "plan_agreed": len(who & human.get("plan_agreed", set())),
                "conversion": paid / len(who) if who else None,
                "collected_minor": dict(money),
            })  # fmt: skip
        out[name] = rows
    return out


def activity_by_hour(session: Session, campaign_id: int) -> list[list[int]]:
    """People's actions (views, CTAs, payments) by weekday (Mon=0) and hour, in UTC."""
    grid = [[0] * 24 for _ in range(7)]
    for (when,) in session.execute(
        select(Event.occurred_at).where(
            Event.campaign_id == campaign_id,
            Event.agent == "human",
            Event.type.in_(("viewed", "cta", "payment_started", "paid", "plan_requested")),
        )
    ):
        when = as_utc(when)
        grid[when.weekday()][when.hour] += 1
    return grid


def campaign_report(session: Session, campaign: Campaign) -> dict[str, Any]:
    """Everything the campaign page shows, computed from the stored rows (nothing invented)."""
    human = _step_sets(session, campaign.id, humans_only=True)
    raw = _step_sets(session, campaign.id, humans_only=False)
    debtors = int(
        session.scalar(select(func.count(Debtor.id)).where(Debtor.campaign_id == campaign.id)) or 0
    )
    return {
        "debtors": debtors,
        "funnel": [
            {"step": step, "human": len(human.get(step, ())), "raw": len(raw.get(step, ()))}
            for step in STEPS
        ],
        "rates": rates(human, _pay_page_visitors(session, campaign.id)),
        "money": _money(session, campaign.id),
        "splits": _splits(session, campaign.id, human),
        "activity": activity_by_hour(session, campaign.id),
    }
