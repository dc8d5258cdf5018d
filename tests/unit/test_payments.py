"""Plans, part payments and promises on the embedded defaults (sandbox, SQLite)."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.payments import plans, policy
from kindly.payments import service as payments
from kindly.payments.models import Instalment, Plan, Promise
from kindly.reporting.metrics import campaign_stats
from tests.support.app import load_campaign

TODAY = dt.date(2026, 1, 31)


def token(ctx, reference: str) -> str:
    with ctx.db.session() as session:
        return session.scalar(select(Debtor.token).where(Debtor.reference == reference))


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def stats(ctx) -> dict:
    with ctx.db.session() as session:
        return campaign_stats(session, session.scalar(select(Campaign)))


def test_schedule_months_clamp_and_last_instalment_absorbs_rounding():
    rules = policy.PlanRules(1000, policy.Decimal("0"), 2, 24, ("monthly",), 30, (3,), 3)
    proposal = plans.propose(rules, 100000, today=TODAY, count=3)
    assert proposal.valid
    assert [d.isoformat() for d, _ in proposal.schedule] == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
    ]
    assert [a for _, a in proposal.schedule] == [33333, 33333, 33334]
    by_amount = plans.propose(rules, 100000, today=TODAY, monthly_minor=30000)
    assert [a for _, a in by_amount.schedule] == [30000, 30000, 30000, 10000]


def test_a_plan_outside_the_rules_says_why_and_offers_the_nearest():
    rules = policy.PlanRules(2500, policy.Decimal("0"), 2, 6, ("monthly",), 30, (3,), 3)
    proposal = plans.propose(rules, 42000, today=TODAY, count=20)
    assert not proposal.valid
    assert {code for code, _ in proposal.reasons} == {"too_many", "too_small"}
    assert proposal.nearest is not None and proposal.nearest.count == 6
    assert [a for _, a in proposal.nearest.schedule] == [7000] * 6


def test_rules_by_balance_band_and_currency():
    campaign = Campaign(slug="x", name="x", settings={"payments": {"plans": {"bands": [
        {"up_to": "100.00", "max_instalments": 3},
        {"min_instalment": {"EUR": "25.00", "JPY": "3000"}, "max_instalments": 24}]}}})  # fmt: skip
    assert policy.plan_rules(campaign, "EUR", 9000).max_instalments == 3
    big = policy.plan_rules(campaign, "EUR", 500000)
    assert (big.max_instalments, big.min_instalment_minor) == (24, 2500)
    assert policy.plan_rules(campaign, "JPY", 500000).min_instalment_minor == 3000


def walk_plan(client, tok: str, *, instalments: str = "", amount: str = ""):
    step1 = client.get(f"/s/{tok}/plan").get_data(as_text=True)
    shown = client.post(f"/s/{tok}/plan", data={"csrf_token": csrf(step1), "show": "1",
                                                 "instalments": instalments, "amount": amount})  # fmt: skip
    assert shown.status_code == 303
    return client.get(shown.headers["Location"])


def test_debtor_agrees_a_plan_in_three_steps_and_downloads_its_confirmation(client, ctx, tmp_path):
    load_campaign(ctx)
    tok = token(ctx, "A-1")
    review = walk_plan(client, tok, instalments="6").get_data(as_text=True)
    assert "205,76\xa0€" in review and review.count("data-instalment=") == 6
    agreed = client.post(f"/s/{tok}/plan", data={"csrf_token": csrf(review), "agree": "1",
                                                  "instalments": "6", "frequency": "monthly"})  # fmt: skip
    page = client.get(agreed.headers["Location"]).get_data(as_text=True)
    assert "Ihre Ratenzahlung ist vereinbart" in page
    assert "Erste Rate von 205,76\xa0€ jetzt zahlen" in page
    pdf = client.get(f"/s/{tok}/plan/confirmation.pdf")
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    (tmp_path / "plan.pdf").write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "plan.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "Bestätigung Ihrer Ratenzahlung" in text and "1.234,56" in text and "205,76" in text
    assert stats(ctx)["funnel"]["plan_agreed"] == 1
    # agreeing again (a double submit) keeps the one plan
    client.post(
        f"/s/{tok}/plan", data={"csrf_token": csrf(review), "agree": "1", "instalments": "6"}
    )
    with ctx.db.session() as session:
        assert len(session.scalars(select(Plan)).all()) == 1


def test_a_monthly_amount_too_small_explains_and_offers_the_nearest_plan(client, ctx):
    load_campaign(ctx)
    tok = token(ctx, "A-3")  # 42,00 € in Italian; the default smallest instalment is 10 €
    page = walk_plan(client, tok, amount="5").get_data(as_text=True)
    assert "Questo piano non è possibile" in page
    assert "ogni rata deve essere di almeno 10,00\xa0€" in page
    assert page.count("data-instalment=") == 4  # the nearest: 4 × 10,50 €
    assert "10,50\xa0€" in page
    bad = client.post(
        f"/s/{tok}/plan", data={"csrf_token": csrf(page), "agree": "1", "instalments": "8"}
    )
    assert bad.status_code == 400
    with ctx.db.session() as session:
        assert session.scalars(select(Plan)).all() == []


def pay_instalment_in_sandbox(client, tok: str, outcome: str = "succeeded") -> None:
    agreed = client.get(f"/s/{tok}/plan/agreed").get_data(as_text=True)
    instalment = re.search(r'name="instalment" value="(\d+)"', agreed).group(1)
    go = client.post(f"/s/{tok}/pay", data={"csrf_token": csrf(agreed), "instalment": instalment})
    checkout = go.headers["Location"].split("127.0.0.1:5000", 1)[-1]
    html = client.get(checkout).get_data(as_text=True)
    assert "TEST CHECKOUT" in html and 'data-sandbox="succeed"' in html
    client.post(checkout, data={"csrf_token": csrf(html), "outcome": outcome})


def a_plan_of_three_with_the_first_paid(client, ctx) -> str:
    """A-1 agrees three instalments and pays the first in the sandbox; returns the token."""
    load_campaign(ctx)
    tok = token(ctx, "A-1")
    review = walk_plan(client, tok, instalments="3").get_data(as_text=True)
    client.post(
        f"/s/{tok}/plan", data={"csrf_token": csrf(review), "agree": "1", "instalments": "3"}
    )
    pay_instalment_in_sandbox(client, tok)
    return tok


def test_sandbox_runs_the_same_schedule_with_a_retry(client, ctx):
    a_plan_of_three_with_the_first_paid(client, ctx)
    provider = payments.SandboxProvider(ctx.settings.base_url, declines=[True, False, False])
    today = dt.date.today()
    for day in range(0, 75):
        with ctx.db.session() as session:
            plans.collect_due(session, provider, today + dt.timedelta(days=day))
    with ctx.db.session() as session:
        plan = session.scalar(select(Plan))
        assert plan.status == "completed" and plan.method_ref.startswith("sbx_pm_")
        assert [i.attempts for i in plan.instalments] == [0, 2, 1]
    assert stats(ctx)["collected"] == {"EUR": "1234.56"}


def test_the_daily_job_charges_an_instalment_on_its_due_date(client, ctx):
    from workers import daily

    a_plan_of_three_with_the_first_paid(client, ctx)
    assert daily.collect_payments()["charged"] == 0  # nothing due today yet
    with ctx.db.session() as session:
        second = session.scalar(select(Instalment).where(Instalment.seq == 2))
        second.due_date = dt.datetime.now(dt.UTC).date()
    summary = daily.collect_payments()
    assert (summary["charged"], summary["succeeded"]) == (1, 1)
    assert daily.collect_payments()["charged"] == 0  # a second run the same day charges nothing
    assert stats(ctx)["collected"] == {"EUR": "823.04"}


def test_a_disputed_case_is_not_charged_until_the_dispute_is_answered(client, ctx):
    from kindly.cases import holds
    from workers import daily

    a_plan_of_three_with_the_first_paid(client, ctx)
    with ctx.db.session() as session:
        second = session.scalar(select(Instalment).where(Instalment.seq == 2))
        second.due_date = dt.datetime.now(dt.UTC).date()
        anna = session.get(Debtor, second.plan.debtor_id)
        hold = holds.place(session, anna, "dispute", source="page", note="wrong meter")
        hold_id = anna.id, hold.id
    summary = daily.collect_payments()
    assert (summary["charged"], summary["plans_disputed"]) == (0, 1)
    with ctx.db.session() as session:
        assert session.scalar(select(Plan)).status == "active"  # not broken by the hold
        holds.release(session, session.get(Debtor, hold_id[0]), hold_id[1], by="m@example.org")
    summary = daily.collect_payments()
    assert (summary["charged"], summary["succeeded"], summary["plans_disputed"]) == (1, 1, 0)


def test_a_failed_instalment_can_be_paid_through_the_link(client, ctx):
    tok = a_plan_of_three_with_the_first_paid(client, ctx)
    with ctx.db.session() as session:
        second = session.scalar(select(Instalment).where(Instalment.seq == 2))
        plans.collect_due(
            session, payments.SandboxProvider("http://x", declines=[True]), second.due_date
        )
    page = client.get(f"/s/{tok}/plan/agreed").get_data(as_text=True)
    assert "Rate 2 über 411,52\xa0€ jetzt zahlen" in page
    pay_instalment_in_sandbox(client, tok)
    with ctx.db.session() as session:
        second = session.scalar(select(Instalment).where(Instalment.seq == 2))
        assert second.status == "paid"
        assert session.scalar(select(Plan.misses)) == 0
    assert stats(ctx)["collected"] == {"EUR": "823.04"}


def promise(client, tok: str, day: dt.date):
    form = client.get(f"/s/{tok}/promise").get_data(as_text=True)
    done = client.post(
        f"/s/{tok}/promise", data={"csrf_token": csrf(form), "date": day.isoformat()}
    )
    assert done.status_code == 303


def collect(ctx, day: dt.date) -> dict:
    from kindly.cli.payments import command

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("kindly.cli.payments.open_context", lambda: ctx)
        result = CliRunner().invoke(command, ["collect", "--today", day.isoformat()])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_promises_are_judged_kept_or_broken_once_their_day_passes(client, ctx):
    load_campaign(ctx)
    day = dt.date.today() + dt.timedelta(days=7)
    promise(client, token(ctx, "A-2"), day)  # never pays
    promise(client, token(ctx, "A-3"), day)  # pays in full before the day
    pay_in_full(client, token(ctx, "A-3"))
    assert stats(ctx)["funnel"]["promise"] == 2
    assert collect(ctx, day)["promises"] == {"kept": 0, "broken": 0}  # not passed yet
    later = day + dt.timedelta(days=1)
    assert collect(ctx, later)["promises"] == {"kept": 1, "broken": 1}
    assert collect(ctx, later)["promises"] == {"kept": 0, "broken": 0}  # judged once
    with ctx.db.session() as session:
        rows = session.execute(
            select(Debtor.reference, Promise.status, Promise.paid_minor)
            .join(Promise, Promise.debtor_id == Debtor.id)
            .order_by(Debtor.reference)
        ).all()
    assert [tuple(r) for r in rows] == [("A-2", "broken", 0), ("A-3", "kept", 4200)]


def pay_in_full(client, tok: str) -> None:
    form = client.get(f"/s/{tok}/pay").get_data(as_text=True)
    go = client.post(f"/s/{tok}/pay", data={"csrf_token": csrf(form)})
    checkout = go.headers["Location"].split("127.0.0.1:5000", 1)[-1]
    html = client.get(checkout).get_data(as_text=True)
    client.post(checkout, data={"csrf_token": csrf(html), "outcome": "succeeded"})
