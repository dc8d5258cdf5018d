"""Payments made elsewhere, § 367 allocation and the ledger export (SQLite, real tables)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import func, select

from kindly.accounts.models import AuditLog
from kindly.campaigns.models import Campaign, CampaignStatus, Debtor
from kindly.cases.read import case_of
from kindly.claims import balance as claims_balance
from kindly.ledger import export, manual
from kindly.payments import allocation, ledger, plans
from kindly.payments.models import Payment
from kindly.tracking.models import Event
from tests.support.app import load_campaign

TODAY = dt.date(2026, 12, 2)


@pytest.fixture
def world(ctx):
    """The sample portfolio (A-1: 1100.00 principal, 84.56 interest, 50.00 fees)."""
    load_campaign(ctx, "winter")
    with ctx.db.session() as session:
        yield session, {d.reference: d for d in session.scalars(select(Debtor))}


def rec(session, debtor, amount, on=TODAY, **options):
    options.setdefault("method", "cash")
    return manual.record(session, debtor, amount, on=on, user=None, via="test", today=TODAY,
                         **options)  # fmt: skip


# --------------------------------------------------------------------------- allocation


def test_allocate_settles_costs_then_interest_then_principal():
    parts = {"fees": 5000, "interest": 8456, "principal": 110000}
    order = allocation.PARTS
    assert allocation.allocate(parts, 0, order) == parts
    assert allocation.allocate(parts, 3000, order) == {"fees": 2000, "interest": 8456,
                                                      "principal": 110000}  # fmt: skip
    assert allocation.allocate(parts, 10000, order) == {"fees": 0, "interest": 3456,
                                                       "principal": 110000}  # fmt: skip
    assert allocation.allocate(parts, 20000, order) == {"fees": 0, "interest": 0,
                                                       "principal": 103456}  # fmt: skip
    assert allocation.allocate(parts, 999999, order) == {"fees": 0, "interest": 0, "principal": 0}
    assert allocation.allocate(parts, -500, order) == parts


def test_a_custom_order_and_several_payments_add_up_like_their_total():
    parts = {"fees": 5000, "interest": 8456, "principal": 110000}
    order = ("principal", "interest", "fees")
    assert allocation.allocate(parts, 111000, order) == {"fees": 5000, "interest": 7456,
                                                        "principal": 0}  # fmt: skip
    first = allocation.settled(parts, 0, 4000, allocation.PARTS)
    second = allocation.settled(parts, 4000, 9000, allocation.PARTS)
    assert first == {"fees": 4000, "interest": 0, "principal": 0}
    assert second == {"fees": 1000, "interest": 4000, "principal": 0}
    back = allocation.settled(parts, 9000, 4000, allocation.PARTS)  # a reversal reopens
    assert back == {"fees": -1000, "interest": -4000, "principal": 0}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("fees", "a list of the parts"),
        (["fees", "interest"], "exactly once"),
        (["fees", "interest", "principal", "fees"], "exactly once"),
        (["costs", "interest", "principal"], "'costs' is not a part"),
        ([1, 2, 3], "a list of the parts"),
    ],
)
def test_a_wrong_allocation_order_is_named(value, problem):
    (message,) = allocation.check_order(value)
    assert problem in message


def test_the_campaign_order_applies_and_a_claim_without_parts_has_none(world):
    _, debtors = world
    anna = debtors["A-1"]
    assert allocation.open_parts(anna, 6000) == {"fees": 0, "interest": 7456, "principal": 110000}
    campaign = anna.campaign
    campaign.settings = {**campaign.settings, "payments": {
        "allocation_order": ["principal", "interest", "fees"]}}  # fmt: skip
    assert allocation.open_parts(anna, 6000) == {
        "fees": 5000,
        "interest": 8456,
        "principal": 104000,
    }
    assert allocation.open_parts(debtors["A-3"], 100) is None


# --------------------------------------------------------------------------- recorded payments


def test_a_recorded_payment_books_once_changes_the_case_and_is_audited(world):
    session, debtors = world
    anna = debtors["A-1"]
    payment = rec(session, anna, "100.00", method="cheque", on=dt.date(2026, 11, 30),
                  note="cheque 0815")  # fmt: skip
    assert (payment.provider, payment.method, payment.status, payment.kind) == (
        "manual",
        "cheque",
        "succeeded",
        "payment",
    )
    assert payment.received_on == dt.date(2026, 11, 30) and payment.notes == "cheque 0815"
    assert claims_balance.balance_minor(session, anna) == 123456 - 10000
    assert case_of(session, anna).state == "partly_paid"
    paid = session.scalars(select(Event).where(Event.type == "paid")).all()
    assert [(e.debtor_id, e.data["amount"], e.data["provider"]) for e in paid] == [
        (anna.id, "100.00", "manual")
    ]
    (entry,) = session.scalars(select(AuditLog).where(AuditLog.action == "payment.record"))
    assert entry.detail["amount"] == "100.00" and entry.detail["note"] == "cheque 0815"

    rec(session, anna, "1134.56", method="transfer")
    assert case_of(session, anna).state == "paid"


def test_the_send_plan_holds_a_case_paid_elsewhere(world):
    from kindly.messaging import delivery
    from kindly.rules.store import decide, save_rules
    from kindly.rules.validate import parse_rules

    session, debtors = world
    at = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    campaign = session.scalar(select(Campaign))
    session.add(CampaignStatus(campaign_id=campaign.id, status="live"))  # only live ones send
    rules = parse_rules({"defaults": {"tone": "firm", "channels": ["email", "letter"]}})
    decide(session, campaign, save_rules(session, campaign, rules), at.date())
    rec(session, debtors["A-3"], "42.00")
    planned = {p.reference: p for p in delivery.plan(session, campaign, at)}
    assert (planned["A-3"].status, planned["A-3"].reason) == ("held", "paid")
    assert planned["A-1"].reason != "paid"


@pytest.mark.parametrize(
    ("amount", "options", "problem"),
    [
        ("0", {}, "must be more than zero"),
        ("-5.00", {}, "must be more than zero"),
        ("5.001", {}, "more than 2 decimals"),
        ("5,00", {}, "'.' as the decimal separator"),
        ("abc", {}, "not a number"),
        ("5.00", {"currency": "GBP"}, "in GBP, case A-1 in EUR"),
        ("5.00", {"method": "bitcoin"}, "one of cash, cheque, transfer, other"),
        ("5.00", {"on": TODAY + dt.timedelta(days=1)}, "in the future"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(world, amount, options, problem):
    session, debtors = world
    with pytest.raises(manual.RecordError, match=problem.replace("(", r"\(")):
        rec(session, debtors["A-1"], amount, **options)
    assert session.scalar(select(func.count()).select_from(Payment)) == 0
    assert session.scalar(select(func.count()).select_from(AuditLog)) == 0


def test_reversal_is_a_counter_entry_once_and_only_for_recorded_payments(world):
    session, debtors = world
    anna = debtors["A-1"]
    payment = rec(session, anna, "1234.56")
    assert case_of(session, anna).state == "paid"
    with pytest.raises(manual.RecordError, match="a note"):
        manual.reverse(session, payment, note=" ", user=None, via="test")
    row = manual.reverse(session, payment, note="cheque bounced", user=None, via="test",
                         today=TODAY)  # fmt: skip
    assert (row.kind, row.amount_minor, row.status, row.method) == (
        "reversal",
        -123456,
        "succeeded",
        "cash",
    )
    session.refresh(payment)
    assert (payment.amount_minor, payment.status) == (123456, "succeeded")  # never edited
    assert claims_balance.balance_minor(session, anna) == 123456
    assert case_of(session, anna).state == "open"
    with pytest.raises(manual.RecordError, match="already reversed"):
        manual.reverse(session, payment, note="again", user=None, via="test")
    with pytest.raises(manual.RecordError, match="not recorded by hand"):
        manual.reverse(session, row, note="reverse the reversal", user=None, via="test")
    actions = session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions == ["payment.record", "payment.reverse"]


def test_a_recorded_payment_pays_the_instalments_it_covers(world):
    session, debtors = world
    anna = debtors["A-1"]
    proposal = plans.propose(
        plans.rules_for(anna, claims_balance.balance_minor(session, anna)),
        123456,
        today=TODAY,
        count=3,
    )
    plan = plans.agree(
        session, anna, proposal, balance_minor=claims_balance.balance_minor(session, anna)
    )
    first = plan.instalments[0].amount_minor
    rec(session, anna, f"{first // 100}.{first % 100:02d}")
    assert [i.status for i in plan.instalments] == ["paid", "due", "due"]


# --------------------------------------------------------------------------- ledger export


def exported(session, start=None, end=None) -> list[dict[str, str]]:
    campaign = session.scalar(select(Campaign))
    handle = io.StringIO()
    export.write(handle, export.rows(session, campaign, start, end))
    return list(csv.DictReader(io.StringIO(handle.getvalue())))


def test_the_ledger_export_reconciles_with_the_balance_and_filters_by_period(world):
    session, debtors = world
    anna, giulia = debtors["A-1"], debtors["A-3"]
    rec(session, anna, "30.00", on=dt.date(2026, 11, 1), note='=HYPERLINK("x")')
    rec(session, anna, "100.00", on=dt.date(2026, 11, 20), method="transfer")
    third = rec(session, anna, "200.00", on=dt.date(2026, 12, 1), method="cheque")
    manual.reverse(session, third, note="bounced", user=None, via="test", today=TODAY)
    rec(session, giulia, "42.00", on=dt.date(2026, 11, 20))
    session.add(Payment(campaign_id=anna.campaign_id, debtor_id=anna.id, provider="stripe",
                        provider_ref="cs_failed", amount_minor=999, currency="EUR",
                        status="failed"))  # fmt: skip
    session.flush()

    rows = exported(session)
    assert list(rows[0]) == list(export.HEADER)
    assert [(r["debtor_reference"], r["date"], r["kind"], r["amount"]) for r in rows] == [
        ("A-1", "2026-11-01", "payment", "30.00"),
        ("A-1", "2026-11-20", "payment", "100.00"),
        ("A-1", "2026-12-01", "payment", "200.00"),
        ("A-1", "2026-12-02", "reversal", "-200.00"),
        ("A-3", "2026-11-20", "payment", "42.00"),
    ]  # the failed attempt is no booking
    first, second, third_row, reversal, other = rows
    assert (first["fees"], first["interest"], first["principal"]) == ("30.00", "0.00", "0.00")
    assert (second["fees"], second["interest"], second["principal"]) == ("20.00", "80.00", "0.00")
    assert (third_row["fees"], third_row["interest"], third_row["principal"]) == (
        "0.00",
        "4.56",
        "195.44",
    )
    assert (reversal["interest"], reversal["principal"]) == ("-4.56", "-195.44")
    assert other["fees"] == other["principal"] == ""  # A-3's claim is not broken down
    assert first["note"] == '\'=HYPERLINK("x")'  # formula-safe
    assert first["payment_reference"] == anna.payment_reference
    assert reversal["balance_after"] == str(claims_balance.balance_minor(session, anna) / 100)
    for debtor in (anna, giulia):
        mine = [r for r in rows if r["debtor_reference"] == debtor.reference]
        total = sum(int(r["amount"].replace(".", "")) for r in mine)
        assert total == ledger.paid_minor(session, debtor)
        assert int(mine[-1]["balance_after"].replace(".", "")) == claims_balance.balance_minor(
            session, debtor
        )

    november = exported(session, dt.date(2026, 11, 2), dt.date(2026, 11, 30))
    assert [(r["debtor_reference"], r["amount"], r["balance_after"]) for r in november] == [
        ("A-1", "100.00", "1104.56"),  # the balance counts the payment before the period
        ("A-3", "42.00", "0.00"),
    ]


@pytest.mark.slow  # starts the kindly command as its own process
def test_allocation_order_from_the_command_line(tmp_path):
    from tests.support.app import PORTFOLIO
    from tests.unit.test_cli import kindly

    portfolio = tmp_path / "p.csv"
    portfolio.write_text(PORTFOLIO, encoding="utf-8")
    assert kindly(tmp_path, "import", str(portfolio), "--campaign", "winter",
                  "--create").returncode == 0  # fmt: skip
    shown = kindly(tmp_path, "payments", "allocation", "winter")
    assert shown.stdout.strip() == "fees,interest,principal"
    bad = kindly(tmp_path, "payments", "allocation", "winter", "--order", "fees,principal")
    assert bad.returncode == 1 and "exactly once" in bad.stderr
    good = kindly(tmp_path, "payments", "allocation", "winter", "--order",
                  "principal,interest,fees")  # fmt: skip
    assert good.returncode == 0 and good.stdout.strip() == "principal,interest,fees"
