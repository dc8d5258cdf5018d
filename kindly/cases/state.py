"""The one rule that says what state a case is in: pure, from facts read beforehand.

Every part of Kindly that needs to know whether to press, thank, wait or show a plan asks
`derive` (through kindly.cases.read); none reads events of its own for that. The order of the
rules below is the order of precedence: a paid claim is paid whatever else happened; a dispute
holds collection even with a plan; a promise holds reminders until its day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

STATES = (
    "open", "partly_paid", "promised", "promise_broken", "plan_requested", "plan_agreed",
    "plan_active", "plan_broken", "disputed", "breathing_space", "on_hold", "paid",
    "opted_out", "closed",
)  # fmt: skip
"""Every state a case can be in (see `derive` for what each means)."""

PLAN_REQUEST_HOLDS = dt.timedelta(days=14)
"""How long a plan asked for on the page (not agreed there) holds reminders while a person
answers it; after that collection resumes."""

DIGITAL = frozenset({"email", "sms"})


@dataclass(frozen=True)
class PlanFacts:
    """The debtor's latest plan."""

    plan_id: int
    status: str  # agreed | active | broken | completed | canceled
    count: int
    paid_count: int
    next_minor: int | None  # the next instalment still to pay, if any
    next_due: dt.date | None


@dataclass(frozen=True)
class PromiseFacts:
    """The debtor's latest promise to pay, and how it went if its day has passed."""

    on: dt.date
    amount_minor: int
    made_at: dt.datetime
    paid_since_minor: int  # paid from the promise on


@dataclass(frozen=True)
class HoldFacts:
    """An open hold on collection."""

    hold_id: int
    reason: str  # dispute | breathing_space | manual
    since: dt.datetime
    until: dt.date | None


@dataclass(frozen=True)
class Facts:
    """What the state is derived from, for one debtor (read in bulk by kindly.cases.read)."""

    debtor_id: int
    amount_due_minor: int
    paid_minor: int
    due_date: dt.date
    flags: frozenset[str] = frozenset()  # imported columns: vulnerable, dispute
    holds: tuple[HoldFacts, ...] = ()
    plan: PlanFacts | None = None
    promise: PromiseFacts | None = None
    plan_requested_at: dt.datetime | None = None  # latest plan asked for on the page
    opted_out: frozenset[str] = frozenset()  # channels the debtor opted out of
    erased: bool = False
    preferred: str | None = None  # the channel the debtor chose on the page (email|sms|letter)


@dataclass(frozen=True)
class Case:
    """A case's state on a day, and whether (and why) collection is held."""

    debtor_id: int
    state: str
    balance_minor: int
    paid_minor: int
    hold: str | None = None  # why no reminder may go out, or None
    hold_until: dt.date | None = None  # when that hold ends by itself, if it does
    overdue_days: int = 0  # days since the due date while something is owed
    plan: PlanFacts | None = None
    promise: PromiseFacts | None = None
    opted_out: frozenset[str] = field(default_factory=frozenset)
    preferred: str | None = None  # the channel the debtor asked to be reached on

    @property
    def settled(self) -> bool:
        """Nothing is owed any more: thank, never ask."""
        return self.state == "paid"

    @property
    def asks_for_payment(self) -> bool:
        """Whether the page, video and messages may ask for the whole balance now (not when
        paid, disputed, on hold, or when a plan or a promise already settles how)."""
        return self.state in ("open", "partly_paid", "promise_broken", "plan_broken", "opted_out")


def _promise_state(promise: PromiseFacts, today: dt.date) -> str | None:
    """'promised' until its day (inclusive), 'promise_broken' once it passed unpaid, None
    when it was kept (the rest of the rules decide then)."""
    if today <= promise.on:
        return "promised"
    return None if promise.paid_since_minor >= promise.amount_minor else "promise_broken"


def derive(facts: Facts, today: dt.date, now: dt.datetime | None = None) -> Case:
    """The case's state on `today` (`now`: the moment, for holds measured in time)."""
    now = now or dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)
    balance = max(facts.amount_due_minor - facts.paid_minor, 0)
    overdue = (today - facts.due_date).days if balance > 0 and today > facts.due_date else 0

    def case(state: str, hold: str | None = None, until: dt.date | None = None) -> Case:
        if hold is None and "vulnerable" in facts.flags and state not in ("paid", "closed"):
            hold = "vulnerable"  # a person decides how to approach them, not a machine
        return Case(facts.debtor_id, state, balance, facts.paid_minor, hold, until, overdue,
                    facts.plan, facts.promise, facts.opted_out, facts.preferred)  # fmt: skip

    if facts.erased:
        return case("closed", "closed")
    if balance == 0:
        return case("paid", "paid")
    open_holds = [h for h in facts.holds if h.until is None or h.until >= today]
    by_reason = {h.reason: h for h in sorted(open_holds, key=lambda h: h.since)}
    if "dispute" in by_reason or "dispute" in facts.flags:
        return case("disputed", "dispute_open")
    if "breathing_space" in by_reason:
        return case("breathing_space", "breathing_space", by_reason["breathing_space"].until)
    if "manual" in by_reason:
        return case("on_hold", "on_hold", by_reason["manual"].until)
    plan = facts.plan
    if plan is not None and plan.status in ("agreed", "active"):
        state = "plan_active" if plan.paid_count > 0 else "plan_agreed"
        return case(state, "plan_open")
    promise = facts.promise
    promised = _promise_state(promise, today) if promise is not None else None
    if promised == "promised":
        return case("promised", "promise_pending", promise.on)
    requested = facts.plan_requested_at
    asking = requested is not None and now - requested < PLAN_REQUEST_HOLDS
    if asking and (plan is None or plan.status != "broken"):  # a broken plan ends the talk
        return case("plan_requested", "plan_requested", (requested + PLAN_REQUEST_HOLDS).date())
    if promised == "promise_broken":
        return case("promise_broken")
    if plan is not None and plan.status == "broken":
        return case("plan_broken")
    if facts.opted_out >= DIGITAL:
        return case("opted_out")
    return case("partly_paid" if facts.paid_minor > 0 else "open")
