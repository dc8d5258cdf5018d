"""Time within the rules: an instalment moved, a new payment day, the missed-instalment rule,
breathing space (tests/integration/test_time_postgres.py runs the same on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import re
import subprocess

import pytest
from sqlalchemy import func, select

from kindly.campaigns.models import Campaign, Debtor
from kindly.cases import daily
from kindly.cases.models import CaseHold
from kindly.cases.read import case_of
from kindly.claims.balance import balance_minor
from kindly.inbox.models import InboxItem
from kindly.leeway import Refused, breathing, moves
from kindly.payments import changes, plans, policy, reschedule
from kindly.payments import service as payments
from kindly.payments.changes import PlanChange
from kindly.payments.models import Instalment, Payment, Plan
from kindly.rules.document import RulesError
from kindly.rules.store import decide, save_rules
from kindly.rules.time import BUILTIN_TIME, TimeRules, resolve, time_rules_for
from kindly.rules.validate import parse_rules
from kindly.tracking.models import Event
from tests.support.app import load_campaign
from tests.unit.test_payments import csrf, token, walk_plan

TODAY = dt.date(2026, 3, 10)
RULES = TimeRules(move_days=14, moves_per_plan=1, payment_days=(1, 28), day_changes_per_plan=1,
                  breathing_days=30, breathing_every_months=12, missed_to_end=True)  # fmt: skip


# ---- the rules document ----------------------------------------------------------------


def test_time_rules_validate_with_every_problem_and_its_path():
    with pytest.raises(RulesError) as caught:
        parse_rules({
            "defaults": {"time": {"move_instalment": {"max_days": 0, "per_plan": "2"},
                                  "payment_day": {"from": 20, "to": 5},
                                  "breathing_space": {"max_days": 30, "every": 12},
                                  "missed_to_end": "yes", "pause": 3}},
            "segments": [{"name": "young", "when": {"age": {"lt": 26}},
                          "time": {"breathing_space": {"max_days": 400}}}],
        })  # fmt: skip
    assert caught.value.errors == [
        "defaults.time.move_instalment.max_days: expected a whole number from 1 to 90, got 0",
        'defaults.time.move_instalment.per_plan: expected a whole number from 1 to 24, got "2"',
        "defaults.time.payment_day: from 20 must not be after to 5",
        "defaults.time.breathing_space.every: unknown key (expected max_days, every_months)",
        'defaults.time.missed_to_end: expected true or false, got "yes"',
        "defaults.time.pause: unknown key (expected one of breathing_space, missed_to_end, "
        "move_instalment, payment_day)",
        "segments[0] (young).time.breathing_space.max_days: expected a whole number from 1 to "
        "180, got 400",
    ]


def test_time_rules_overlay_key_by_key_and_false_switches_a_freedom_off():
    assert resolve() == resolve({}) and not resolve().missed_to_end
    assert resolve().move_days == BUILTIN_TIME["move_instalment"]["max_days"] == 14
    rules = resolve({"move_instalment": {"max_days": 7}, "missed_to_end": True},
                    {"payment_day": False, "breathing_space": {"every_months": 6}})  # fmt: skip
    assert (rules.move_days, rules.moves_per_plan, rules.missed_to_end) == (7, 1, True)
    assert not rules.can_change_day and rules.payment_days is None
    assert (rules.breathing_days, rules.breathing_every_months) == (30, 6)


def test_a_segment_gets_its_own_time_from_the_saved_rules(ctx):
    load_campaign(ctx)
    document = {
        "defaults": {"time": {"move_instalment": {"max_days": 10, "per_plan": 2}}},
        "segments": [{"name": "gb", "when": {"country": "GB"},
                      "time": {"move_instalment": {"max_days": 21}, "missed_to_end": True}}],
    }  # fmt: skip
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        decide(session, campaign, save_rules(session, campaign, parse_rules(document)), TODAY)
        by_ref = {d.reference: d for d in session.scalars(select(Debtor))}
        anna, siobhan = (time_rules_for(session, by_ref[r]) for r in ("A-1", "A-2"))
    assert (anna.move_days, anna.moves_per_plan, anna.missed_to_end) == (10, 2, False)
    assert (siobhan.move_days, siobhan.moves_per_plan, siobhan.missed_to_end) == (21, 2, True)


# ---- scenarios, shared with the PostgreSQL tests -------------------------------------


def agree_plan(ctx, reference="A-1", count=3, *, first=TODAY, missed_to_end=True, freq="monthly"):
    """A plan of `count` instalments from `first`; returns its id."""
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == reference))
        balance = balance_minor(session, debtor, first)
        rules = plans.rules_for(debtor, balance)
        proposal = plans.propose(rules, balance, today=first, count=count, frequency=freq)
        assert proposal.valid, proposal.reasons
        return plans.agree(
            session, debtor, proposal, balance_minor=balance, missed_to_end=missed_to_end
        ).id


def schedule(ctx) -> list[tuple[int, str, str]]:
    with ctx.db.session() as session:
        rows = session.execute(select(Instalment.seq, Instalment.due_date, Instalment.status)
                               .order_by(Instalment.seq))  # fmt: skip
        return [(seq, day.isoformat(), status) for seq, day, status in rows]


def debtor_of(session, reference="A-1") -> Debtor:
    return session.scalar(select(Debtor).where(Debtor.reference == reference))


def instalment_id(ctx, seq: int) -> int:
    with ctx.db.session() as session:
        return session.scalar(select(Instalment.id).where(Instalment.seq == seq))


def refused(ctx, work) -> Refused:
    """Run `work(session)`, expect a refusal; the database is as before."""
    before = schedule(ctx)
    with ctx.db.session() as session, pytest.raises(Refused) as caught:
        work(session)
    assert schedule(ctx) == before
    return caught.value


def scenario_moves_inside_and_outside_the_rules(ctx) -> None:
    agree_plan(ctx)  # 411,52 € on 10 March, 10 April, 10 May
    second = instalment_id(ctx, 2)
    too_far = refused(ctx, lambda s: moves.move_instalment(
        s, debtor_of(s), second, dt.date(2026, 4, 25), RULES, TODAY))  # fmt: skip
    assert (too_far.code, too_far.values) == ("too_far", {"date": dt.date(2026, 4, 24), "days": 14})
    earlier = refused(ctx, lambda s: moves.move_instalment(
        s, debtor_of(s), second, dt.date(2026, 4, 10), RULES, TODAY))  # fmt: skip
    assert earlier.code == "too_early" and earlier.values["date"] == dt.date(2026, 4, 11)
    tight = TimeRules(move_days=40, moves_per_plan=1)
    past_next = refused(ctx, lambda s: moves.move_instalment(
        s, debtor_of(s), second, dt.date(2026, 5, 12), tight, TODAY))  # fmt: skip
    assert past_next.code == "past_next" and past_next.values["date"] == dt.date(2026, 5, 9)
    off = refused(ctx, lambda s: moves.move_instalment(
        s, debtor_of(s), second, dt.date(2026, 4, 20), TimeRules(), TODAY))  # fmt: skip
    assert off.code == "move_off"
    with ctx.db.session() as session:
        other = debtor_of(session, "A-3")
        not_theirs = refused(ctx, lambda s: moves.move_instalment(
            s, s.get(Debtor, other.id), second, dt.date(2026, 4, 20), RULES, TODAY))  # fmt: skip
    assert not_theirs.code == "no_plan"
    with ctx.db.session() as session:
        moves.move_instalment(session, debtor_of(session), second, dt.date(2026, 4, 24), RULES,
                              TODAY)  # fmt: skip
    assert schedule(ctx) == [(1, "2026-03-10", "due"), (2, "2026-04-24", "due"),
                             (3, "2026-05-10", "due")]  # fmt: skip
    used = refused(ctx, lambda s: moves.move_instalment(
        s, debtor_of(s), instalment_id(ctx, 3), dt.date(2026, 5, 12), RULES, TODAY))  # fmt: skip
    assert (used.code, used.values) == ("moves_used", {"count": 1})
    with ctx.db.session() as session:
        change = session.scalar(select(PlanChange))
        assert (change.kind, change.source, change.schedule) == (
            "move",
            "page",
            [(2, dt.date(2026, 4, 10), dt.date(2026, 4, 24))],
        )
        event = session.scalar(select(Event).where(Event.type == "plan_changed"))
        assert event.data["dates"] == "#2 2026-04-10 → 2026-04-24" and event.agent == "human"


def scenario_payment_day_and_its_new_schedule(ctx) -> None:
    agree_plan(ctx, count=4, first=dt.date(2026, 3, 20))
    with ctx.db.session() as session:
        preview = moves.day_schedule(session, plans.open_plan(session, debtor_of(session)), 5,
                                     TODAY)  # fmt: skip
        # the 5th of March has passed: the first instalment goes to the 5th of April
        assert [d.isoformat() for _, d in preview] == ["2026-04-05", "2026-05-05", "2026-06-05",
                                                       "2026-07-05"]  # fmt: skip
    bad = refused(ctx, lambda s: moves.change_payment_day(s, debtor_of(s), 30, RULES, TODAY))
    assert (bad.code, bad.values) == ("day_range", {"first": 1, "last": 28})
    with ctx.db.session() as session:
        moves.change_payment_day(session, debtor_of(session), 28, RULES, TODAY)
    assert [d for _, d, _ in schedule(ctx)] == ["2026-03-28", "2026-04-28", "2026-05-28",
                                                "2026-06-28"]  # fmt: skip
    again = refused(ctx, lambda s: moves.change_payment_day(s, debtor_of(s), 15, RULES, TODAY))
    assert again.code == "days_used"
    with ctx.db.session() as session:
        change = session.scalar(select(PlanChange))
        assert change.kind == "payment_day" and change.data["day"] == 28
        assert len(change.schedule) == 4


def scenario_fortnightly_has_no_payment_day(ctx) -> None:
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        campaign.settings = {"payments": {"plans": {"bands": [
            {"frequencies": ["monthly", "fortnightly"]}]}}}  # fmt: skip
    agree_plan(ctx, count=4, freq="fortnightly")
    refusal = refused(ctx, lambda s: moves.change_payment_day(s, debtor_of(s), 15, RULES, TODAY))
    assert refusal.code == "not_monthly"


def _declining(ctx, day: dt.date, declines: list[bool]) -> dict:
    """The daily run of `day` with a provider that declines as told."""
    provider = payments.SandboxProvider(ctx.settings.base_url, declines=declines)
    with ctx.db.session() as session:
        run = plans.collect_due(session, provider, day)
        return {"charged": run.charged, "failed": run.failed, "broken": run.broken}


def scenario_missed_instalment_moves_once_then_breaks(ctx) -> None:
    plan_id = agree_plan(ctx, count=3)
    with ctx.db.session() as session:  # the first instalment was paid with a saved card
        plan = session.get(Plan, plan_id)
        plan.customer_ref, plan.method_ref, plan.method_type = "cus_1", "pm_1", "card"
        plan.instalments[0].status, plan.status = "paid", "active"
    april = dt.date(2026, 4, 10)
    assert _declining(ctx, april, [True]) == {"charged": 1, "failed": 1, "broken": 0}
    # the miss went to the end, one month after the last; the others moved up one number
    assert schedule(ctx) == [(1, "2026-03-10", "paid"), (2, "2026-05-10", "due"),
                             (3, "2026-06-10", "due")]  # fmt: skip
    # the daily job again, the same day and the day after: nothing is charged or moved again
    assert _declining(ctx, april, [True]) == {"charged": 0, "failed": 0, "broken": 0}
    assert _declining(ctx, april + dt.timedelta(days=1), [True])["charged"] == 0
    with ctx.db.session() as session:
        assert changes.count(session, plan_id, "missed_to_end") == 1
        assert session.get(Plan, plan_id).misses == 1
        moved = session.scalar(select(Event).where(Event.type == "plan_changed"))
        assert moved.agent == "automated" and moved.data["change"] == "missed_to_end"
    # the second miss in a row breaks the plan, as before the rule
    assert _declining(ctx, dt.date(2026, 5, 10), [True]) == {"charged": 1, "failed": 1,
                                                             "broken": 1}  # fmt: skip
    assert schedule(ctx) == [(1, "2026-03-10", "paid"), (2, "2026-05-10", "canceled"),
                             (3, "2026-06-10", "canceled")]  # fmt: skip
    with ctx.db.session() as session:
        assert session.get(Plan, plan_id).status == "broken"
        assert case_of(session, debtor_of(session), dt.date(2026, 5, 11)).state == "plan_broken"


def scenario_a_later_miss_after_a_payment_is_retried_not_moved_again(ctx) -> None:
    plan_id = agree_plan(ctx, count=4)
    with ctx.db.session() as session:
        plan = session.get(Plan, plan_id)
        plan.customer_ref, plan.method_ref, plan.method_type = "cus_1", "pm_1", "card"
        plan.instalments[0].status, plan.status = "paid", "active"
    _declining(ctx, dt.date(2026, 4, 10), [True])  # moved to the end (10 July)
    _declining(ctx, dt.date(2026, 5, 10), [False])  # paid: no longer "in a row"
    _declining(ctx, dt.date(2026, 6, 10), [True])  # missed: the move is used, so a retry
    assert schedule(ctx) == [(1, "2026-03-10", "paid"), (2, "2026-05-10", "paid"),
                             (3, "2026-06-10", "failed"), (4, "2026-07-10", "due")]  # fmt: skip
    with ctx.db.session() as session:
        assert changes.count(session, plan_id, "missed_to_end") == 1
        assert session.get(Plan, plan_id).status == "active"


def scenario_breathing_space_once_per_period_and_hardship(ctx) -> None:
    today = dt.date.today()  # holds are placed now: the period counts from the real day
    with ctx.db.session() as session:
        hold = breathing.ask(session, debtor_of(session), 21, "illness", RULES, today)
        assert hold.until == today + dt.timedelta(days=21) and hold.source == "page"
        case = case_of(session, debtor_of(session), today)
        assert (case.state, case.hold, case.hold_until) == (
            "breathing_space",
            "breathing_space",
            today + dt.timedelta(days=21),
        )
    now = refused(ctx, lambda s: breathing.ask(s, debtor_of(s), 5, "", RULES, today))
    assert now.code == "breathing_now"
    later = today + dt.timedelta(days=40)  # the first one ended, but the period has not passed
    used = refused(ctx, lambda s: breathing.ask(s, debtor_of(s), 5, "", RULES, later))
    assert used.code == "breathing_used" and used.values["months"] == 12
    assert used.values["date"] == today.replace(year=today.year + 1)
    with ctx.db.session() as session:  # as if it was 13 months ago: the debtor may ask again
        first = session.scalar(select(CaseHold))
        first.placed_at = first.placed_at - dt.timedelta(days=400)
        first.until = today - dt.timedelta(days=379)
    with ctx.db.session() as session:
        again = breathing.ask(session, debtor_of(session), 5, "", RULES, today)
        assert again.id != first.id and again.until == today + dt.timedelta(days=5)
    too_long = refused(ctx, lambda s: breathing.ask(s, debtor_of(s, "A-2"), 31, "", RULES, today))
    assert (too_long.code, too_long.values) == ("breathing_days", {"days": 30})
    odd = refused(ctx, lambda s: breathing.ask(s, debtor_of(s, "A-2"), 5, "lottery", RULES, today))
    assert odd.code == "reason"
    off = refused(ctx, lambda s: breathing.ask(s, debtor_of(s, "A-2"), 5, "", TimeRules(), today))
    assert off.code == "breathing_off"
    with ctx.db.session() as session:
        breathing.ask(session, debtor_of(session, "A-2"), 14, "hardship", RULES, today)
    with ctx.db.session() as session:
        siobhan = debtor_of(session, "A-2")
        held = session.scalars(
            select(CaseHold.reason).where(
                CaseHold.debtor_id == siobhan.id, CaseHold.released_at.is_(None)
            )
        )
        assert sorted(held) == ["breathing_space", "manual"]
        item = session.scalar(select(InboxItem).where(InboxItem.debtor_id == siobhan.id))
        assert item.topic == "hardship" and item.status == "open" and "14 days" in item.message
        # after the breathing space the manual hold keeps automation stopped for a person
        after = case_of(session, siobhan, today + dt.timedelta(days=15))
        assert (after.state, after.hold) == ("on_hold", "on_hold")
        counted = session.scalar(select(func.count(CaseHold.id)).where(CaseHold.source == "page"))
        assert counted == 4  # Anna twice, a year apart; Siobhán's breathing space and hold


def scenario_hardship_stops_plan_charges(ctx) -> None:
    today = dt.date.today()
    plan_id = agree_plan(ctx, count=3, first=today)
    with ctx.db.session() as session:
        plan = session.get(Plan, plan_id)
        plan.customer_ref, plan.method_ref, plan.method_type = "cus_1", "pm_1", "card"
        plan.instalments[0].status, plan.status = "paid", "active"
        second = plan.instalments[1].due_date
        breathing.ask(session, debtor_of(session), 10, "hardship", RULES, today)
    with ctx.db.session() as session:
        summary = daily.collect(session, ctx.settings, second)
    assert (summary["charged"], summary["plans_held"], summary["plans_disputed"]) == (0, 1, 0)
    assert schedule(ctx)[1] == (2, second.isoformat(), "due")  # not charged, not missed


def scenario_the_daily_job_run_twice_moves_a_miss_once(ctx) -> None:
    """The daily job itself (kindly.cases.daily.collect), run twice on the same day: an
    instalment due today with no saved method to charge is a miss, moved to the end once."""
    today = dt.datetime.now(dt.UTC).date()
    plan_id = agree_plan(ctx, count=3, first=today)
    for _ in range(2):
        with ctx.db.session() as session:
            summary = daily.collect(session, ctx.settings, today)
    assert (summary["charged"], summary["failed"], summary["plans_broken"]) == (0, 0, 0)
    rows = schedule(ctx)
    assert [status for _, _, status in rows] == ["due", "due", "due"]
    assert rows[-1][1] == reschedule.period_after(dt.date.fromisoformat(rows[1][1]),
                                                  "monthly").isoformat()  # fmt: skip
    with ctx.db.session() as session:
        assert changes.count(session, plan_id, "missed_to_end") == 1
        assert session.get(Plan, plan_id).misses == 1
        assert session.scalar(select(func.count(Event.id)).where(
            Event.type == "plan_changed")) == 1  # fmt: skip


@pytest.mark.parametrize(
    "scenario",
    [
        scenario_moves_inside_and_outside_the_rules,
        scenario_payment_day_and_its_new_schedule,
        scenario_fortnightly_has_no_payment_day,
        scenario_missed_instalment_moves_once_then_breaks,
        scenario_a_later_miss_after_a_payment_is_retried_not_moved_again,
        scenario_breathing_space_once_per_period_and_hardship,
        scenario_hardship_stops_plan_charges,
        scenario_the_daily_job_run_twice_moves_a_miss_once,
    ],
)
def test_scenario_on_sqlite(ctx, scenario):
    load_campaign(ctx)
    scenario(ctx)


def test_without_the_rule_a_first_miss_is_retried_as_before(ctx):
    load_campaign(ctx)
    plan_id = agree_plan(ctx, missed_to_end=False)
    with ctx.db.session() as session:
        plan = session.get(Plan, plan_id)
        plan.customer_ref, plan.method_ref, plan.method_type = "cus_1", "pm_1", "card"
        plan.instalments[0].status, plan.status = "paid", "active"
    _declining(ctx, dt.date(2026, 4, 10), [True])
    assert schedule(ctx)[1] == (2, "2026-04-10", "failed")
    with ctx.db.session() as session:
        assert changes.count(session, plan_id, "missed_to_end") == 0


def test_the_policy_rules_still_apply_to_the_plan():
    # the time rules add to the plan rules; they do not replace them
    rules = policy.PlanRules(1000, policy.Decimal("0"), 2, 24, ("monthly",), 30, (3,), 3)
    assert plans.propose(rules, 100000, today=TODAY, count=3).valid


# ---- the debtor's pages -----------------------------------------------------------------


def agreed_on_the_page(client, ctx, reference="A-1", count="3") -> str:
    tok = token(ctx, reference)
    review = walk_plan(client, tok, instalments=count).get_data(as_text=True)
    client.post(f"/s/{tok}/plan", data={"csrf_token": csrf(review), "agree": "1",
                                         "instalments": count, "frequency": "monthly"})  # fmt: skip
    return tok


def pdf_text(tmp_path, data: bytes) -> str:
    (tmp_path / "plan.pdf").write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(tmp_path / "plan.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


def test_an_instalment_moved_on_the_page_gives_a_new_schedule_and_confirmation(
    client, ctx, tmp_path
):
    load_campaign(ctx)
    tok = agreed_on_the_page(client, ctx)
    form = client.get(f"/s/{tok}/plan/move").get_data(as_text=True)
    assert "um bis zu 14 Tage nach hinten verschieben" in form
    second = re.search(
        r'data-instalment="2" data-first="([\d-]+)" data-last="([\d-]+)">\s*'
        r'.*?name="instalment" value="(\d+)"',
        form,
        re.S,
    )
    assert second is not None
    with ctx.db.session() as session:
        due = session.get(Instalment, int(second.group(3))).due_date
    assert second.group(2) == (due + dt.timedelta(days=14)).isoformat()
    wanted = due + dt.timedelta(days=10)
    done = client.post(f"/s/{tok}/plan/move", data={"csrf_token": csrf(form),
                       "instalment": second.group(3), "date": wanted.isoformat()})  # fmt: skip
    assert done.status_code == 303 and "done=moved" in done.headers["Location"]
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "data-time-done" in page and "neue Bestätigung" in page
    assert f"Rate 2 vom {_de(due)} auf den {_de(wanted)} verschoben" in page
    with ctx.db.session() as session:
        assert session.get(Instalment, int(second.group(3))).due_date == wanted
    text = pdf_text(tmp_path, client.get(f"/s/{tok}/plan/confirmation.pdf").data)
    assert "Änderungen des Plans" in text and _de(wanted) in text


def _de(day: dt.date) -> str:
    from babel.dates import format_date

    return format_date(day, format="long", locale="de_DE")


def test_a_move_outside_the_rules_is_refused_in_the_debtors_language(client, ctx):
    load_campaign(ctx)
    tok = agreed_on_the_page(client, ctx)
    form = client.get(f"/s/{tok}/plan/move").get_data(as_text=True)
    second = instalment_id(ctx, 2)
    before = schedule(ctx)
    with ctx.db.session() as session:
        due = session.get(Instalment, second).due_date
    bad = client.post(f"/s/{tok}/plan/move", data={"csrf_token": csrf(form),
                      "instalment": str(second),
                      "date": (due + dt.timedelta(days=20)).isoformat()})  # fmt: skip
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    latest = _de(due + dt.timedelta(days=14))
    assert f"um höchstens 14 Tage verschieben: Bitte wählen Sie einen Tag bis zum {latest}" in html
    garbage = client.post(f"/s/{tok}/plan/move", data={"csrf_token": csrf(form),
                          "instalment": str(second), "date": "soon"})  # fmt: skip
    assert garbage.status_code == 422 and "Bitte wählen Sie eine Rate und einen Termin" in (
        garbage.get_data(as_text=True)
    )
    assert schedule(ctx) == before
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(PlanChange.id))) == 0


def test_the_payment_day_page_shows_the_new_schedule_then_changes_it(client, ctx):
    load_campaign(ctx)
    tok = agreed_on_the_page(client, ctx, reference="A-2", count="3")  # English, GBP
    preview = client.get(f"/s/{tok}/plan/day?day=27").get_data(as_text=True)
    assert "Your schedule on day 27 of each month" in preview
    assert preview.count('data-date="') == 3
    done = client.post(f"/s/{tok}/plan/day", data={"csrf_token": csrf(preview), "day": "27"})
    assert done.status_code == 303
    assert all(d.endswith("-27") for _, d, _ in schedule(ctx))
    out = client.post(f"/s/{tok}/plan/day", data={"csrf_token": csrf(preview), "day": "31"})
    assert out.status_code == 422
    assert "Please choose a day of the month from day 1 to day 28." in out.get_data(as_text=True)


def test_breathing_space_from_the_page_and_hardship_to_a_person(client, ctx):
    load_campaign(ctx)
    tok = token(ctx, "A-2")
    assert 'data-cta="breathing"' in client.get(f"/s/{tok}").get_data(as_text=True)
    form = client.get(f"/s/{tok}/breathing").get_data(as_text=True)
    assert "for up to 30 days" in form and 'value="hardship"' in form
    bad = client.post(f"/s/{tok}/breathing", data={"csrf_token": csrf(form), "days": "45"})
    assert bad.status_code == 422 and "Please choose from 1 to 30 days." in bad.get_data(
        as_text=True
    )
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(CaseHold.id))) == 0
    done = client.post(f"/s/{tok}/breathing", data={"csrf_token": csrf(form), "days": "20",
                                                     "reason": "hardship"})  # fmt: skip
    assert done.status_code == 303
    shown = client.get(done.headers["Location"]).get_data(as_text=True)
    end = dt.date.today() + dt.timedelta(days=20)
    assert f'data-breathing-until="{end.isoformat()}"' in shown and "A person at" in shown
    page = client.get(f"/s/{tok}").get_data(as_text=True)
    assert 'data-case="breathing_space"' in page and 'data-cta="breathing"' not in page
    with ctx.db.session() as session:
        assert session.scalar(select(InboxItem.topic)) == "hardship"
        types = session.scalars(select(Event.type).where(Event.type.in_(("hold", "contact"))))
        assert sorted(types) == ["contact", "hold", "hold"]  # on the case's timeline


def test_a_failure_reported_twice_moves_the_instalment_once(ctx):
    """The daily run's charge came back `processing`; the provider's failure then arrives, and
    arrives again (a webhook retried): one miss, one move to the end."""
    load_campaign(ctx)
    plan_id = agree_plan(ctx, count=3)
    with ctx.db.session() as session:
        plan = session.get(Plan, plan_id)
        second = plan.instalments[1]
        payment = Payment(
            campaign_id=plan.campaign_id, debtor_id=plan.debtor_id, provider="sandbox",
            provider_ref="pi_late_failure", amount_minor=second.amount_minor, currency="EUR",
            status="started", kind="payment", instalment_id=second.id, notes=plans.OFF_SESSION,
        )  # fmt: skip
        session.add(payment)
        session.flush()
        payment_id = payment.id
    for _ in range(3):
        with ctx.db.session() as session:
            payment = session.get(Payment, payment_id)
            payments.settle_payment(session, payment, "failed", then=plans.instalment_settled)
    assert [row[2] for row in schedule(ctx)] == ["due", "due", "due"]
    with ctx.db.session() as session:
        assert changes.count(session, plan_id, "missed_to_end") == 1
        assert session.get(Plan, plan_id).misses == 1
        moved = session.scalar(select(Instalment).where(Instalment.seq == 3))
        assert moved.id == second.id and moved.due_date == dt.date(2026, 6, 10)


def test_the_debtors_page_shows_the_moved_date_at_once(client, ctx):
    load_campaign(ctx)
    tok = agreed_on_the_page(client, ctx)
    first = instalment_id(ctx, 1)
    with ctx.db.session() as session:
        due = session.get(Instalment, first).due_date
    assert _de(due) in client.get(f"/s/{tok}").get_data(as_text=True)
    form = client.get(f"/s/{tok}/plan/move").get_data(as_text=True)
    wanted = due + dt.timedelta(days=3)
    client.post(f"/s/{tok}/plan/move", data={"csrf_token": csrf(form), "instalment": str(first),
                                              "date": wanted.isoformat()})  # fmt: skip
    page = client.get(f"/s/{tok}").get_data(as_text=True)
    assert f"fällig am {_de(wanted)}" in page or _de(wanted) in page
    with ctx.db.session() as session:
        timeline = session.scalars(select(Event.type).where(Event.type == "plan_changed")).all()
        assert timeline == ["plan_changed"]


def test_a_plan_agreed_under_the_rule_keeps_it_and_says_so(client, ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        rules = parse_rules({"defaults": {"time": {"missed_to_end": True}}})
        decide(session, campaign, save_rules(session, campaign, rules), TODAY)
    tok = token(ctx, "A-1")
    review = walk_plan(client, tok, instalments="3").get_data(as_text=True)
    assert "rückt sie einmalig ans Ende des Plans" in review  # stated before agreeing
    agreed_on_the_page(client, ctx)
    with ctx.db.session() as session:
        assert session.scalar(select(Plan.missed_to_end)) is True
        campaign = session.scalar(select(Campaign))  # the rule switched off later: kept
        decide(session, campaign, save_rules(session, campaign, parse_rules({})), TODAY)
    assert "rückt sie einmalig ans Ende" in client.get(f"/s/{tok}").get_data(as_text=True)
    assert "rückt sie einmalig ans Ende" in client.get(f"/s/{tok}/plan/agreed").get_data(
        as_text=True
    )


def test_the_cockpit_shows_the_changes_and_the_hardship_task(app, ctx):
    from tests.unit.test_admin import make_user, sign_in

    load_campaign(ctx)
    agree_plan(ctx, count=3)
    today = dt.date.today()
    with ctx.db.session() as session:
        moves.move_instalment(session, debtor_of(session), instalment_id(ctx, 2),
                              dt.date(2026, 4, 20), RULES, TODAY)  # fmt: skip
        breathing.ask(session, debtor_of(session), 7, "hardship", RULES, today)
    desk = app.test_client()
    make_user(ctx)
    assert sign_in(desk).status_code == 303
    case = desk.get("/admin/campaigns/winter/debtors/A-1").get_data(as_text=True)
    assert "plan_changed" in case and "#2 2026-04-10 → 2026-04-20" in case
    assert "breathing_space" in case and "hardship" in case
    inbox = desk.get("/admin/inbox").get_data(as_text=True)
    assert ">hardship</a>" in inbox
