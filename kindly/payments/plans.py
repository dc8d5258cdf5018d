"""Instalment plans: schedules inside the campaign's rules, agreement, and collection.

The first instalment is paid through a checkout that saves the payment method; each later
one is charged off-session by `collect_due` on its due date (a worker or `kindly payments
collect` calls it daily). A failed charge is retried after the campaign's `retry_after_days`
and the debtor may pay it through their link; two failed charges in a row break the plan,
which cancels the instalments left and returns the case to the normal flow (the balance is
still the claim less what was paid).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Collection as Collection_
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.infra.db import utcnow
from kindly.money import from_minor
from kindly.payments import policy, reschedule
from kindly.payments import service as payments
from kindly.payments.models import Instalment, Payment, Plan
from kindly.tracking import events

OFF_SESSION = "off-session instalment charge"
OPEN = ("agreed", "active")
TODAY_KEY = "kindly_today"  # session.info: the day a collection run acts as of


@dataclass(frozen=True)
class Proposal:
    """A plan as asked for, whether the rules allow it, and why not."""

    count: int
    frequency: str
    first_due: dt.date
    schedule: tuple[tuple[dt.date, int], ...]
    reasons: tuple[tuple[str, str], ...] = ()  # (code, value for the message)
    nearest: Proposal | None = field(default=None, compare=False)

    @property
    def valid(self) -> bool:
        """True when the plan is inside the campaign's rules."""
        return not self.reasons

    @property
    def total_minor(self) -> int:
        """What the schedule adds up to (the balance)."""
        return sum(amount for _, amount in self.schedule)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, or the month's last day when it is shorter."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def due_dates(first: dt.date, count: int, frequency: str) -> list[dt.date]:
    """The due dates of `count` instalments from `first`."""
    if frequency == "fortnightly":
        return [first + dt.timedelta(days=14 * i) for i in range(count)]
    return [add_months(first, i) for i in range(count)]


def split(total_minor: int, count: int) -> list[int]:
    """`count` equal instalments in minor units; the last absorbs the rounding."""
    base = total_minor // count
    return [base] * (count - 1) + [total_minor - base * (count - 1)]


def _schedule(total: int, count: int, frequency: str, first: dt.date, regular: int | None):
    amounts = (
        split(total, count)
        if regular is None
        else [regular] * (count - 1) + [total - regular * (count - 1)]
    )
    return tuple(zip(due_dates(first, count, frequency), amounts, strict=True))


def propose(
    rules: policy.PlanRules,
    balance_minor: int,
    *,
    today: dt.date,
    count: int | None = None,
    monthly_minor: int | None = None,
    frequency: str = "monthly",
    first_due: dt.date | None = None,
) -> Proposal:
    """The schedule for a number of instalments or an amount per instalment, checked."""
    first = first_due or today
    smallest = rules.smallest_instalment(balance_minor)
    most = min(rules.max_instalments, balance_minor // smallest)
    regular = None
    if monthly_minor is not None:
        regular = max(min(monthly_minor, balance_minor), 1)
        count = -(-balance_minor // regular)
        if count < 2:
            regular, count = None, max(rules.min_instalments, 2)
    count = max(int(count or rules.min_instalments), 1)
    reasons: list[tuple[str, str]] = []
    if most < rules.min_instalments:
        reasons.append(("none", ""))
    if count > rules.max_instalments:
        reasons.append(("too_many", str(rules.max_instalments)))
    if count < rules.min_instalments:
        reasons.append(("too_few", str(rules.min_instalments)))
    if (regular if regular is not None else balance_minor // count) < smallest:
        reasons.append(("too_small", str(smallest)))
    if frequency not in rules.frequencies:
        reasons.append(("frequency", frequency))
    latest = today + dt.timedelta(days=rules.first_due_within_days)
    if first > latest or first < today:
        reasons.append(("first_due", latest.isoformat()))
    count = min(count, 120)  # the schedule shown for a wild request stays bounded
    schedule = _schedule(balance_minor, count, frequency, first, regular)
    proposal = Proposal(count, frequency, first, schedule, tuple(reasons))
    if proposal.valid or any(code == "none" for code, _ in reasons):
        return proposal
    near_count = max(rules.min_instalments, min(count, most))
    near_freq = frequency if frequency in rules.frequencies else rules.frequencies[0]
    near_first = min(max(first, today), latest)
    nearest = Proposal(
        near_count,
        near_freq,
        near_first,
        _schedule(balance_minor, near_count, near_freq, near_first, None),
    )
    return Proposal(count, frequency, first, schedule, tuple(reasons), nearest)


def offered_counts(rules: policy.PlanRules, balance_minor: int) -> list[int]:
    """Every number of instalments the rules allow for this balance."""
    smallest = rules.smallest_instalment(balance_minor)
    most = min(rules.max_instalments, balance_minor // smallest)
    return list(range(rules.min_instalments, most + 1))


def rules_for(debtor: Debtor, balance_minor: int) -> policy.PlanRules:
    """The plan rules that apply to the debtor's live balance (kindly.claims.balance)."""
    return policy.plan_rules(debtor.campaign, debtor.currency, balance_minor)


def open_plan(session: Session, debtor: Debtor) -> Plan | None:
    """The debtor's agreed or active plan, if any (the microsite shows its next instalment)."""
    return session.scalar(
        select(Plan)
        .where(Plan.debtor_id == debtor.id, Plan.status.in_(OPEN))
        .order_by(Plan.id.desc())
    )


def next_instalment(session: Session, debtor: Debtor) -> Instalment | None:
    """The next instalment still to be paid on the debtor's open plan."""
    plan = open_plan(session, debtor)
    if plan is None:
        return None
    return next((i for i in plan.instalments if i.status in ("due", "failed")), None)


def agree(
    session: Session,
    debtor: Debtor,
    proposal: Proposal,
    *,
    balance_minor: int,
    channel: str | None = None,
    missed_to_end: bool = False,
) -> Plan:
    """Store an agreed plan and record `plan_agreed`; an open plan is returned as it is.
    `balance_minor` is what is open today (kindly.claims.balance): the plan must add up to it.
    `missed_to_end`: the campaign's rules let the plan's first missed instalment move to
    its end (kindly.rules.time), a term the plan keeps whatever the rules say later."""
    existing = open_plan(session, debtor)
    if existing is not None:
        return existing
    if not proposal.valid:
        raise payments.PaymentError("the plan is outside the campaign's rules")
    if proposal.total_minor != balance_minor:
        raise payments.PaymentError("the balance changed; look at the schedule again")
    plan = Plan(
        campaign_id=debtor.campaign_id,
        debtor_id=debtor.id,
        currency=debtor.currency,
        total_minor=proposal.total_minor,
        frequency=proposal.frequency,
        count=proposal.count,
        status="agreed",
        misses=0,
        missed_to_end=missed_to_end,
    )
    session.add(plan)
    session.flush()
    for seq, (due, amount) in enumerate(proposal.schedule, start=1):
        session.add(Instalment(plan_id=plan.id, seq=seq, due_date=due, amount_minor=amount,
                               status="due", attempts=0))  # fmt: skip
    session.flush()
    events.record(
        session,
        debtor,
        "plan_agreed",
        channel=channel,
        data={
            "plan": str(plan.id),
            "instalments": str(plan.count),
            "frequency": plan.frequency,
            "total": str(from_minor(plan.total_minor, plan.currency)),
            "currency": plan.currency,
        },
        key=f"plan_agreed:{plan.id}",
    )
    session.refresh(plan)
    return plan


def remember_customer(session: Session, payment: Payment, customer_ref: str) -> None:
    """Keep the provider's customer of a plan's first checkout, for off-session charges."""
    instalment = session.get(Instalment, payment.instalment_id)
    if instalment is not None and not instalment.plan.customer_ref:
        instalment.plan.customer_ref = customer_ref


def instalment_settled(session: Session, payment: Payment) -> None:
    """Called by `payments.settle_payment` when an instalment's payment reaches an outcome."""
    instalment = session.get(Instalment, payment.instalment_id)
    if instalment is None:
        return
    plan = instalment.plan
    if payment.status == "succeeded":
        if instalment.status != "paid":
            instalment.status, instalment.retry_on = "paid", None
            plan.misses = 0
        if plan.status == "agreed":
            plan.status = "active"
        if all(i.status == "paid" for i in plan.instalments) and plan.status in OPEN:
            plan.status, plan.ended_at = "completed", utcnow()
    elif payment.status == "failed" and payment.notes == OFF_SESSION:
        _missed(session, plan, instalment)
    session.flush()


def _missed(session: Session, plan: Plan, instalment: Instalment) -> None:
    """A charge failed: the plan's first miss moves to its end when its terms say so (once),
    else retry per the rules; the second miss in a row breaks the plan."""
    if instalment.status in ("paid", "canceled") or plan.status not in OPEN:
        return
    today = session.info.get(TODAY_KEY) or dt.date.today()
    plan.misses += 1
    instalment.status = "failed"
    if plan.misses < 2 and plan.missed_to_end and reschedule.move_to_end(session, plan, instalment):
        return
    if plan.misses >= 2:
        plan.status, plan.ended_at = "broken", utcnow()
        for each in plan.instalments:
            if each.status in ("due", "failed"):
                each.status, each.retry_on = "canceled", None
        return
    debtor = session.get(Debtor, plan.debtor_id)
    rules = policy.plan_rules(debtor.campaign, plan.currency, plan.total_minor)
    waits = rules.retry_after_days
    wait = waits[min(instalment.attempts, len(waits)) - 1] if waits else 1
    instalment.retry_on = today + dt.timedelta(days=max(wait, 1))


@dataclass
class Collection:
    """What one collection run did."""

    charged: int = 0
    succeeded: int = 0
    failed: int = 0
    processing: int = 0
    broken: int = 0
    completed: int = 0
    skipped: int = 0  # plans of disputed cases, not charged while the dispute is open
    notices: list[tuple[int, int]] = field(default_factory=list)  # (debtor id, instalment id)


def _due_now(instalment: Instalment, today: dt.date) -> bool:
    if instalment.status == "due":
        return instalment.due_date <= today
    return (
        instalment.status == "failed"
        and instalment.retry_on is not None
        and instalment.retry_on <= today
    )


def _in_flight(session: Session, instalment: Instalment) -> bool:
    return (
        session.scalar(
            select(Payment.id).where(
                Payment.instalment_id == instalment.id,
                Payment.status == "started",
                Payment.notes == OFF_SESSION,
            )
        )
        is not None
    )


def collect_due(
    session: Session,
    provider: payments.PaymentProvider,
    today: dt.date,
    skip: Collection_[int] = (),
) -> Collection:
    """Charge every instalment due (or due for a retry) by `today`; safe to run again.
    Debtors in `skip` (a disputed case) are not charged, nor counted as missing a payment."""
    session.info[TODAY_KEY] = today
    result = Collection()
    query = (
        select(Plan)
        .where(Plan.status.in_(OPEN))
        .order_by(Plan.id)
        .with_for_update(skip_locked=True)
    )
    for plan in session.scalars(query).all():
        if plan.debtor_id in skip:
            result.skipped += 1
            continue
        debtor = session.get(Debtor, plan.debtor_id)
        rules = policy.plan_rules(debtor.campaign, plan.currency, plan.total_minor)
        for instalment in plan.instalments:
            if plan.status not in OPEN:
                break
            if _due_now(instalment, today) and not _in_flight(session, instalment):
                _charge(session, provider, plan, debtor, instalment, result)
            elif (
                instalment.status == "due"
                and instalment.notified_on is None
                and plan.method_type == "sepa_debit"
                and instalment.due_date - dt.timedelta(days=rules.notify_days_before) <= today
            ):
                instalment.notified_on = today  # pre-notification of the SEPA debit
                result.notices.append((debtor.id, instalment.id))
        if plan.status == "broken":
            result.broken += 1
        elif plan.status == "completed":
            result.completed += 1
    session.flush()
    session.info.pop(TODAY_KEY, None)
    return result


def collect_with(
    session: Session, settings, today: dt.date, skip: Collection_[int] = ()
) -> Collection:
    """collect_due with the configured provider; KINDLY_PAYMENTS=none charges nothing."""
    if not settings.payments_online:
        return Collection()  # instalments come by transfer: no charge, so none can be missed
    return collect_due(session, payments.provider_for(settings), today, skip)


def _charge(session, provider, plan: Plan, debtor: Debtor, instalment: Instalment, result) -> None:
    instalment.attempts += 1
    if not plan.method_ref:
        first = session.scalar(
            select(Payment.intent_ref).where(
                Payment.instalment_id.in_([i.id for i in plan.instalments]),
                Payment.status == "succeeded",
                Payment.intent_ref.is_not(None),
            )
        )
        if first and plan.customer_ref:
            plan.method_ref, plan.method_type = provider.saved_method(first)
    if not plan.method_ref or not plan.customer_ref:
        result.failed += 1
        _missed(session, plan, instalment)  # nothing saved to charge: the debtor pays by link
        return
    payment = Payment(
        campaign_id=plan.campaign_id,
        debtor_id=plan.debtor_id,
        provider=provider.name,
        provider_ref=f"charging_{instalment.id}_{instalment.attempts}",
        amount_minor=instalment.amount_minor,
        currency=plan.currency,
        status="started",
        kind="payment",
        instalment_id=instalment.id,
        notes=OFF_SESSION,
    )
    session.add(payment)
    session.flush()
    charge = provider.charge_saved(
        payments.ChargeRequest(
            payment_id=payment.id,
            debtor_id=plan.debtor_id,
            campaign_id=plan.campaign_id,
            amount_minor=instalment.amount_minor,
            currency=plan.currency,
            customer_ref=plan.customer_ref,
            method_ref=plan.method_ref,
            description=f"{debtor.reference} {instalment.seq}/{plan.count}",
            # the same key when a crashed run repeats this attempt: Stripe charges once
            idempotency_key=f"kindly-instalment-{instalment.id}-{instalment.attempts}",
        )
    )
    payment.provider_ref = payment.intent_ref = charge.provider_ref
    session.flush()
    result.charged += 1
    if charge.status == "processing":
        instalment.status = "due" if instalment.status == "due" else instalment.status
        result.processing += 1
        return
    payments.settle_payment(
        session,
        payment,
        "succeeded" if charge.status == "succeeded" else "failed",
        then=instalment_settled,
    )
    if charge.status == "succeeded":
        result.succeeded += 1
    else:
        result.failed += 1
