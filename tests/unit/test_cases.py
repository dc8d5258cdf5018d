"""A case's one truth: the state rule, the facts read from the database, and the send plan
obeying it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.cases import holds
from kindly.cases.read import case_of, cases_for
from kindly.cases.state import Facts, HoldFacts, PlanFacts, PromiseFacts, derive
from kindly.payments.models import Payment
from kindly.tracking import events
from tests.support.app import launched, load_campaign

TODAY = dt.date(2026, 12, 2)
NOW = dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC)


def facts(**changes) -> Facts:
    base = dict(debtor_id=1, amount_due_minor=10000, paid_minor=0, due_date=dt.date(2026, 11, 1))
    return Facts(**{**base, **changes})


def promise(on: dt.date, paid: int = 0) -> PromiseFacts:
    return PromiseFacts(on, 10000, NOW - dt.timedelta(days=3), paid)


def test_an_unpaid_claim_is_open_and_says_since_when_it_is_overdue():
    case = derive(facts(), TODAY, NOW)
    assert (case.state, case.hold, case.overdue_days) == ("open", None, 31)
    assert case.asks_for_payment


def test_paid_wins_over_everything_and_stops_asking():
    hold = HoldFacts(1, "dispute", NOW, None)
    case = derive(facts(paid_minor=10000, holds=(hold,), flags=frozenset({"vulnerable"})), TODAY)
    assert (case.state, case.hold, case.overdue_days) == ("paid", "paid", 0)
    assert case.settled and not case.asks_for_payment


def test_a_dispute_holds_collection_even_with_a_running_plan():
    plan = PlanFacts(1, "active", 3, 1, 3334, dt.date(2027, 1, 1))
    case = derive(facts(holds=(HoldFacts(1, "dispute", NOW, None),), plan=plan), TODAY, NOW)
    assert (case.state, case.hold) == ("disputed", "dispute_open")
    assert not case.asks_for_payment


def test_a_promise_holds_until_its_day_and_is_then_followed_up():
    on = dt.date(2026, 12, 20)
    held = derive(facts(promise=promise(on)), TODAY, NOW)
    assert (held.state, held.hold, held.hold_until) == ("promised", "promise_pending", on)
    on_the_day = derive(facts(promise=promise(on)), on)
    assert on_the_day.hold == "promise_pending"
    broken = derive(facts(promise=promise(on)), on + dt.timedelta(days=1))
    assert (broken.state, broken.hold) == ("promise_broken", None)
    kept = derive(facts(promise=promise(on, paid=10000), paid_minor=5000), on + dt.timedelta(1))
    assert kept.state == "partly_paid"


def test_a_plan_shows_as_agreed_then_active_and_a_broken_one_resumes_collection():
    agreed = PlanFacts(1, "agreed", 3, 0, 3334, dt.date(2026, 12, 15))
    assert derive(facts(plan=agreed), TODAY).state == "plan_agreed"
    active = PlanFacts(1, "active", 3, 1, 3333, dt.date(2027, 1, 15))
    assert derive(facts(plan=active), TODAY).hold == "plan_open"
    broken = derive(facts(plan=PlanFacts(1, "broken", 3, 1, None, None)), TODAY)
    assert (broken.state, broken.hold) == ("plan_broken", None)


def test_a_plan_asked_for_holds_for_two_weeks_only():
    asked = derive(facts(plan_requested_at=NOW - dt.timedelta(days=13)), TODAY, NOW)
    assert asked.hold == "plan_requested"
    later = derive(facts(plan_requested_at=NOW - dt.timedelta(days=15)), TODAY, NOW)
    assert later.hold is None


def test_breathing_space_ends_on_its_day():
    hold = HoldFacts(1, "breathing_space", NOW, dt.date(2026, 12, 10))
    assert derive(facts(holds=(hold,)), TODAY).state == "breathing_space"
    assert derive(facts(holds=(hold,)), dt.date(2026, 12, 11)).state == "open"


def test_opted_out_of_every_digital_channel_is_a_state_but_not_a_hold():
    case = derive(facts(opted_out=frozenset({"email", "sms"})), TODAY)
    assert (case.state, case.hold) == ("opted_out", None)  # the letter may still go


# ---- read from the database ----------------------------------------------------------------


@pytest.fixture
def debtors(ctx):
    load_campaign(ctx)
    launched(ctx)  # only a live campaign's plan gets as far as each case
    with ctx.db.session() as session:
        yield session, {d.reference: d for d in session.scalars(select(Debtor))}


def test_a_schedule_looked_at_holds_nothing_but_a_plan_asked_for_does(debtors):
    session, by_ref = debtors
    anna = by_ref["A-1"]
    events.record(session, anna, "plan_viewed", data={"instalments": "3"})
    assert case_of(session, anna).hold is None
    events.record(session, anna, "plan_requested", data={"instalments": "3"})
    assert case_of(session, anna).hold == "plan_requested"


def test_a_promise_stored_as_text_counts_its_amount(debtors):
    session, by_ref = debtors
    anna = by_ref["A-1"]
    on = dt.date.today() + dt.timedelta(days=10)
    events.record(session, anna, "promise", data={"date": on.isoformat(), "amount_minor": "23897"})
    case = case_of(session, anna)
    assert (case.state, case.promise.amount_minor, case.promise.on) == ("promised", 23897, on)


def test_a_dispute_hold_holds_until_released_and_then_collection_resumes(debtors):
    session, by_ref = debtors
    anna = by_ref["A-1"]
    hold = holds.place(session, anna, "dispute", source="page", note="not my meter")
    again = holds.place(session, anna, "dispute", source="page")
    assert again.id == hold.id  # a second dispute does not stack up
    assert case_of(session, anna).state == "disputed"
    holds.release(session, anna, hold.id, by="manager@example.org", note="answered")
    assert case_of(session, anna).state == "open"
    with pytest.raises(holds.HoldError, match="released already"):
        holds.release(session, anna, hold.id, by="manager@example.org")
    with pytest.raises(holds.HoldError, match="unknown hold reason"):
        holds.place(session, anna, "holiday", source="cockpit")


def test_opting_back_in_undoes_an_opt_out_in_the_case(debtors):
    session, by_ref = debtors
    anna = by_ref["A-1"]
    events.record(session, anna, "opted_out", data={"channel": "*"})
    assert case_of(session, anna).state == "opted_out"
    events.record(session, anna, "opted_in", channel="email", data={"channel": "email"})
    case = case_of(session, anna)
    assert (case.state, case.opted_out) == ("open", frozenset({"sms", "letter"}))


def test_many_cases_read_in_a_fixed_number_of_statements(debtors, ctx):
    from sqlalchemy import event

    session, by_ref = debtors
    for debtor in by_ref.values():
        session.add(Payment(campaign_id=debtor.campaign_id, debtor_id=debtor.id,
                            provider="sandbox", provider_ref=f"p-{debtor.id}",
                            amount_minor=1000, currency=debtor.currency, status="succeeded"))  # fmt: skip
    session.flush()
    statements = []
    engine = session.get_bind()
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        cases = cases_for(session, list(by_ref.values()))
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert {case.state for case in cases.values()} == {"partly_paid"}
    # payments, holds, plans, events, and the claim of the day (rules for interest, write-offs,
    # costs): not one per debtor
    assert len(statements) <= 8


def test_the_send_plan_obeys_the_case(debtors):
    from kindly.campaigns.models import Campaign
    from kindly.messaging import delivery
    from kindly.rules.store import decide, save_rules
    from kindly.rules.validate import parse_rules

    session, by_ref = debtors
    at = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 in Berlin, a Tuesday
    campaign = session.scalar(select(Campaign))
    rules = parse_rules({"defaults": {"tone": "firm", "channels": ["email", "letter"]}})
    decide(session, campaign, save_rules(session, campaign, rules), at.date())
    holds.place(session, by_ref["A-1"], "dispute", source="page")
    on = at.date() + dt.timedelta(days=18)
    events.record(session, by_ref["A-2"], "promise", data={"date": on.isoformat(),
                                                           "amount_minor": 8990})  # fmt: skip
    events.record(session, by_ref["A-3"], "plan_viewed", data={"instalments": "3"})
    planned = {p.reference: p for p in delivery.plan(session, campaign, at)}
    assert (planned["A-1"].status, planned["A-1"].reason) == ("held", "dispute_open")
    assert (planned["A-2"].status, planned["A-2"].reason) == ("held", "promise_pending")
    assert planned["A-3"].status == "send"  # looking at a schedule holds nothing
    after = dt.datetime.combine(on + dt.timedelta(days=1), dt.time(10), tzinfo=dt.UTC)
    followed_up = {p.reference: p for p in delivery.plan(session, campaign, after)}
    assert followed_up["A-2"].reason != "promise_pending"


def test_the_cockpit_counts_each_running_promise_once_whatever_its_spelling(debtors):
    from kindly.campaigns.models import Campaign
    from kindly.reporting.metrics import campaign_report

    session, by_ref = debtors
    on = (dt.date.today() + dt.timedelta(days=18)).isoformat()
    # stored as text by the page before issue 17; then promised again (the later one counts)
    events.record(session, by_ref["A-1"], "promise", data={"date": on, "amount_minor": "50000"})
    events.record(session, by_ref["A-1"], "promise", data={"date": on, "amount_minor": "23897"})
    past = (dt.date.today() - dt.timedelta(days=2)).isoformat()  # broken: no longer promised
    events.record(session, by_ref["A-3"], "promise", data={"date": past, "amount_minor": 4200})
    money = campaign_report(session, session.scalar(select(Campaign)))["money"]
    assert money["promised_minor"] == {"EUR": 23897}


def test_the_channel_chosen_on_the_page_is_tried_first(debtors):
    from kindly.campaigns.models import Campaign
    from kindly.messaging import delivery
    from kindly.rules.store import decide, save_rules
    from kindly.rules.validate import parse_rules

    session, by_ref = debtors
    at = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 in Berlin, a Tuesday
    campaign = session.scalar(select(Campaign))
    rules = parse_rules({"defaults": {"tone": "friendly", "channels": ["email", "sms"]}})
    decide(session, campaign, save_rules(session, campaign, rules), at.date())
    anna = by_ref["A-1"]  # has both an email address and a mobile number
    assert {p.reference: p for p in delivery.plan(session, campaign, at)}["A-1"].channel == "email"
    events.record(session, anna, "preference", data={"preferred_channel": "sms"})
    planned = {p.reference: p for p in delivery.plan(session, campaign, at)}
    assert (planned["A-1"].status, planned["A-1"].channel) == ("send", "sms")
    assert case_of(session, anna).preferred == "sms"
    # a channel the rules do not allow for the segment is not used however it was chosen
    events.record(session, anna, "preference", data={"preferred_channel": "letter"})
    assert {p.reference: p for p in delivery.plan(session, campaign, at)}["A-1"].channel == "email"
