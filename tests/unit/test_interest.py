"""Interest that accrues (issue 19): the worked examples of docs/payments.md ("Interest"), the
rules' and the rate table's bad input, `kindly interest --json` and `kindly rates update`."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from kindly.accounts.models import AuditLog
from kindly.campaigns.models import Campaign, Debtor
from kindly.claims import accrual, interest, rates
from kindly.claims.amount import amount_on
from kindly.claims.balance import balance_on
from kindly.claims.interest import Piece, Terms, compute
from kindly.claims.models import BaseRate
from kindly.cli import cli
from kindly.payments.models import Payment, Plan
from kindly.rules.document import RulesError
from kindly.rules.store import save_rules
from kindly.rules.validate import parse_rules
from tests.support.app import load_campaign

D = dt.date
CONSUMER = Terms("statutory", party="consumer")
BUSINESS = Terms("statutory", party="business")


def one(principal: int, due: dt.date) -> list[Piece]:
    return [Piece("claim", "R-1", principal, due)]


def periods(breakdown: interest.Breakdown) -> list[tuple]:
    return [
        (p.first, p.last, p.days, p.principal_minor, p.rate, p.interest_minor)
        for piece in breakdown.pieces
        for p in piece.periods
    ]


# --- the worked examples (docs/payments.md, "Interest") -------------------------------------


def test_example_1_a_consumer_claim_across_a_base_rate_change():
    got = compute(one(100_000, D(2024, 5, 15)), CONSUMER, D(2024, 8, 15))
    assert periods(got) == [
        (D(2024, 5, 16), D(2024, 6, 30), 46, 100_000, Decimal("8.62"), 1086),
        (D(2024, 7, 1), D(2024, 8, 15), 46, 100_000, Decimal("8.37"), 1055),
    ]
    assert got.interest_minor == 2141  # 21.41 €


def test_example_2_a_business_claim():
    got = compute(one(500_000, D(2025, 3, 31)), BUSINESS, D(2025, 6, 30))
    assert periods(got) == [(D(2025, 4, 1), D(2025, 6, 30), 91, 500_000, Decimal("11.27"), 14049)]


def test_example_3_a_contractual_rate_counts_a_leap_day_over_365():
    got = compute(
        one(240_000, D(2024, 1, 31)), Terms("contractual", Decimal("7.5")), D(2024, 4, 30)
    )
    assert periods(got) == [(D(2024, 2, 1), D(2024, 4, 30), 90, 240_000, Decimal("7.5"), 4438)]


def test_example_4_a_partial_payment_settles_interest_first_and_stops_it_on_what_it_paid():
    got = compute(
        one(100_000, D(2024, 1, 15)), CONSUMER, D(2024, 5, 14), payments=[(D(2024, 3, 15), 50_000)]
    )
    assert periods(got) == [
        (D(2024, 1, 16), D(2024, 3, 15), 60, 100_000, Decimal("8.62"), 1417),
        (D(2024, 3, 16), D(2024, 5, 14), 60, 51_417, Decimal("8.62"), 729),
    ]
    [paid] = got.settlements
    assert (paid.interest_minor, paid.principal_minor) == (1417, 48_583)
    assert got.interest_minor == 2146 and got.pieces[0].open_minor == 51_417
    # the amount then: 1,000.00 + 21.46 − 500.00 = 521.46 = what stays open of both parts
    assert 100_000 + got.interest_minor - 50_000 == 51_417 + 729


def test_example_5_no_interest_before_or_on_the_due_date():
    for day in (D(2024, 1, 10), D(2024, 1, 15)):
        assert compute(one(100_000, D(2024, 1, 15)), CONSUMER, day).interest_minor == 0
    assert compute(one(100_000, D(2024, 1, 15)), CONSUMER, D(2024, 1, 16)).interest_minor == 24


# --- the rules of the count -------------------------------------------------------------------


def test_paying_the_amount_of_a_day_on_that_day_settles_everything():
    day = D(2024, 8, 15)
    owed = 100_000 + compute(one(100_000, D(2024, 5, 15)), CONSUMER, day).interest_minor
    later = compute(one(100_000, D(2024, 5, 15)), CONSUMER, D(2025, 1, 1), payments=[(day, owed)])
    assert later.interest_minor == owed - 100_000 and later.pieces[0].open_minor == 0


def test_a_day_past_the_table_uses_its_last_rate_and_says_so():
    got = compute(one(100_000, D(2025, 10, 15)), CONSUMER, D(2026, 2, 1))
    assert [(p.first, p.last, p.rate, p.beyond_table) for p in got.pieces[0].periods] == [
        (D(2025, 10, 16), D(2025, 12, 31), Decimal("6.27"), False),
        (D(2026, 1, 1), D(2026, 2, 1), Decimal("6.27"), True),
    ]
    assert got.beyond_table and got.table_ends == D(2025, 12, 31)


def test_a_returned_transfer_takes_its_money_back_and_interest_runs_on():
    plain = compute(one(100_000, D(2024, 1, 15)), CONSUMER, D(2024, 5, 14))
    returned = compute(
        one(100_000, D(2024, 1, 15)), CONSUMER, D(2024, 5, 14),
        payments=[(D(2024, 3, 15), 50_000), (D(2024, 3, 20), -50_000)],
    )  # fmt: skip
    assert returned.interest_minor == plain.interest_minor and returned.settlements == []


def test_costs_then_interest_then_principal_and_items_oldest_first():
    pieces = [Piece("b", "B", 20_000, D(2024, 3, 1)), Piece("a", "A", 10_000, D(2024, 2, 1))]
    got = compute(
        pieces, Terms("contractual", Decimal("10")), D(2024, 4, 1),
        payments=[(D(2024, 3, 1), 15_000)], fees_minor=1_000, prior_interest_minor=500,
    )  # fmt: skip
    [paid] = got.settlements
    # 29 days of A at 10 % = 79.45 → 79 cents; then 1,000 fees, 500 + 79 interest, 13,421 A
    assert (paid.fees_minor, paid.interest_minor, paid.principal_minor) == (1_000, 579, 13_421)
    assert {p.piece.key: p.open_minor for p in got.pieces} == {"a": 0, "b": 16_579}


def test_an_agreed_plan_defers_interest_and_a_broken_one_lets_it_run_again():
    due, day = D(2024, 1, 15), D(2024, 5, 14)
    agreed = compute(one(100_000, due), CONSUMER, day, pauses=[(D(2024, 2, 14), None)])
    assert [p[:3] for p in periods(agreed)] == [(D(2024, 1, 16), D(2024, 2, 14), 30)]
    broke = compute(one(100_000, due), CONSUMER, day, pauses=[(D(2024, 2, 14), D(2024, 4, 14))])
    assert [p[:3] for p in periods(broke)] == [
        (D(2024, 1, 16), D(2024, 2, 14), 30), (D(2024, 4, 15), D(2024, 5, 14), 30)]  # fmt: skip


def test_no_interest_basis_charges_nothing():
    assert compute(one(100_000, D(2020, 1, 1)), interest.NONE, D(2024, 1, 1)).interest_minor == 0


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"basis": "contractual", "rate": 31}, "interest.rate: 31 % is outside 0–30 % a year"),
        ({"basis": "contractual", "rate": "-1"}, "interest.rate: -1 % is outside 0–30 % a year"),
        ({"basis": "contractual", "rate": "zehn"}, "interest.rate: expected a percentage"),
        ({"basis": "contractual"}, "interest.rate: a contractual basis needs a rate"),
        ({"basis": "statutory", "rate": 5}, "interest.rate: only a contractual basis takes a"),
        ({"basis": "compound"}, "interest.basis: 'compound' is not one of none, contractual"),
        ({"basis": "statutory", "debtor": "firm"}, "interest.debtor: 'firm' is not one of"),
    ],
)
def test_the_rules_refuse_bad_interest_with_a_specific_message(spec, message):
    with pytest.raises(RulesError) as refused:
        parse_rules({"interest": spec, "frequency_cap": {"messages": 0}})
    assert any(error.startswith(message) for error in refused.value.errors), refused.value.errors
    assert len(refused.value.errors) >= 2  # every problem at once, the cap's too


def test_the_rules_accept_the_three_bases():
    for spec in ({"basis": "none"}, {"basis": "contractual", "rate": "30"},
                 {"basis": "statutory", "debtor": "business", "debtor_field": "kind"}):  # fmt: skip
        assert parse_rules({"interest": spec}).document["interest"] == spec


BAD_TABLE = """valid_from,rate
2024-01-01,3.62
2024-03-01,3.50
2024-07-01,drei
2025-07-01,1.27
2026-01-01,45
"""


def test_a_bad_rate_file_names_every_problem_with_its_line():
    with pytest.raises(rates.RatesError) as refused:
        rates.parse(BAD_TABLE)
    assert refused.value.errors == [
        "line 3: 2024-03-01 is not 1 January or 1 July (the base rate changes only then, "
        "§ 247 BGB)",
        "line 4: 'drei' is not a rate like 1.27 (percent)",
        "line 6: 45 % is outside -10 to 20 %",
        "line 5: 2025-07-01 follows 2024-01-01 (line 2): the half-years between them are missing",
    ]
    with pytest.raises(rates.RatesError, match="expected the header valid_from,rate"):
        rates.parse("day;rate\n2024-01-01;3.62\n")
    with pytest.raises(rates.RatesError, match="no rows"):
        rates.parse("# only a comment\n")


def test_the_shipped_table_is_the_published_one_up_to_2025():
    table = rates.shipped()
    assert table.ends == D(2025, 12, 31)
    published = {D(2023, 1, 1): "1.62", D(2023, 7, 1): "3.12", D(2024, 1, 1): "3.62",
                 D(2024, 7, 1): "3.37", D(2025, 1, 1): "2.27", D(2025, 7, 1): "1.27",
                 D(2016, 7, 1): "-0.88"}  # fmt: skip
    for day, rate in published.items():
        assert table.rate_on(day) == Decimal(rate)


# --- through the database and the command line ------------------------------------------------

PORTFOLIO = """reference,first_name,last_name,locale,currency,amount_due,due_date,kind
Z-1,Jonas,Zinsfeld,de-DE,EUR,1000.00,2024-05-15,consumer
Z-2,Greta,Verzugshof,de-DE,EUR,5000.00,2025-03-31,business
Z-3,Lotte,Teilzahler,de-DE,EUR,1000.00,2024-01-15,
"""


@pytest.fixture
def runner(ctx, monkeypatch) -> CliRunner:
    """The `kindly` command on the test's data folder."""
    monkeypatch.setenv("KINDLY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("KINDLY_SECRET_KEY", ctx.settings.secret_key)
    return CliRunner()


@pytest.fixture
def statutory(ctx):
    """Campaign `zins` charging § 288 interest (consumer unless its `kind` column says)."""
    load_campaign(ctx, "zins", PORTFOLIO)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == "zins"))
        spec = {"basis": "statutory", "debtor": "consumer", "debtor_field": "kind"}
        save_rules(session, campaign, parse_rules({"interest": spec}))
        z3 = session.scalar(select(Debtor).where(Debtor.reference == "Z-3"))
        session.add(Payment(campaign_id=z3.campaign_id, debtor_id=z3.id, provider="bank",
                            provider_ref="entry-1", amount_minor=50_000, currency="EUR",
                            status="succeeded", kind="payment", method="bank_transfer",
                            received_on=D(2024, 3, 15)))  # fmt: skip
    return ctx


def test_the_bulk_read_gives_every_debtor_the_worked_examples(statutory):
    with statutory.db.session() as session:
        debtors = {d.reference: d for d in session.scalars(select(Debtor))}
        z1 = accrual.accrued_minor(session, list(debtors.values()), D(2024, 8, 15))
        assert z1[debtors["Z-1"].id] == 2141
        assert accrual.accrued_minor(session, [debtors["Z-2"]], D(2025, 6, 30)) == {
            debtors["Z-2"].id: 14049
        }
        z3 = debtors["Z-3"]
        assert amount_on(session, z3, D(2024, 5, 14)).total_minor == 102_146
        assert balance_on(session, z3, D(2024, 5, 14)).balance_minor == 52_146


def test_kindly_interest_json_prints_the_breakdown(statutory, runner):
    done = runner.invoke(cli, ["interest", "zins", "Z-3", "--on", "2024-05-14", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == {
        "campaign": "zins", "reference": "Z-3", "on": "2024-05-14", "currency": "EUR",
        "basis": "statutory", "debtor": "consumer", "rate": "base rate + 5 points",
        "day_count": "act/365", "base_rate_table_until": "2025-12-31",
        "pieces": [{
            "item": "claim", "label": "Z-3", "due_date": "2024-01-15",
            "principal": "1000.00", "principal_open": "514.17",
            "periods": [
                {"from": "2024-01-16", "to": "2024-03-15", "days": 60, "principal": "1000.00",
                 "rate": "8.62", "interest": "14.17", "beyond_table": False},
                {"from": "2024-03-16", "to": "2024-05-14", "days": 60, "principal": "514.17",
                 "rate": "8.62", "interest": "7.29", "beyond_table": False},
            ],
            "interest": "21.46",
        }],
        "payments": [{"on": "2024-03-15", "amount": "500.00", "fees": "0.00",
                      "interest": "14.17", "principal": "485.83"}],
        "totals": {"principal": "1000.00", "principal_open": "514.17", "interest": "21.46",
                   "paid": "500.00", "amount": "1021.46", "balance": "521.46"},
        "beyond_table": False,
    }  # fmt: skip
    business = runner.invoke(cli, ["interest", "zins", "Z-2", "--on", "2025-06-30", "--json"])
    data = json.loads(business.output)
    assert (data["debtor"], data["rate"], data["totals"]["interest"]) == (
        "business",
        "base rate + 9 points",
        "140.49",
    )
    unknown = runner.invoke(cli, ["interest", "zins", "Z-9"])
    assert unknown.exit_code == 1 and "no debtor 'Z-9'" in unknown.output


def test_kindly_rates_update_loads_all_or_nothing(statutory, runner, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_TABLE, encoding="utf-8")
    refused = runner.invoke(cli, ["rates", "update", str(bad)])
    assert refused.exit_code == 1 and "line 4: 'drei' is not a rate" in refused.output
    with statutory.db.session() as session:
        assert session.scalar(select(func.count()).select_from(BaseRate)) == 0
    good = tmp_path / "rates.csv"
    good.write_text(rates.as_csv(rates.shipped()) + "2026-01-01,1.27\n2026-07-01,0.77\n")
    loaded = runner.invoke(cli, ["rates", "update", str(good)])
    assert loaded.exit_code == 0, loaded.output
    assert (
        "loaded 50 base rate(s), up to 2026-12-31 (last: 0.77 % from 2026-07-01)" in loaded.output
    )
    with statutory.db.session() as session:
        table = rates.table(session)
        assert (table.source, table.rate_on(D(2026, 8, 1))) == ("loaded", Decimal("0.77"))
        entry = session.scalar(select(AuditLog).order_by(AuditLog.id.desc()))
        # one campaign charges statutory interest: its pages and letters are marked stale
        assert (entry.action, entry.detail["rows"], entry.detail["campaigns"]) == (
            "rates.update",
            50,
            1,
        )
    again = runner.invoke(cli, ["rates", "update", str(bad)])  # a bad file keeps the loaded one
    assert again.exit_code == 1
    with statutory.db.session() as session:
        assert session.scalar(select(func.count()).select_from(BaseRate)) == 50


def test_a_plan_agreed_stops_interest_in_the_bulk_read(statutory):
    with statutory.db.session() as session:
        z1 = session.scalar(select(Debtor).where(Debtor.reference == "Z-1"))
        session.add(Plan(campaign_id=z1.campaign_id, debtor_id=z1.id, currency="EUR",
                         total_minor=101_086, frequency="monthly", count=3, status="agreed",
                         agreed_at=dt.datetime(2024, 6, 30, 9, tzinfo=dt.UTC)))  # fmt: skip
        session.flush()
        assert accrual.accrued_minor(session, [z1], D(2024, 8, 15)) == {z1.id: 1086}


def test_kindly_rules_refuses_a_rate_above_30_and_keeps_the_rules_in_force(
    statutory, runner, tmp_path
):
    bad = tmp_path / "rules.json"
    bad.write_text(json.dumps({"interest": {"basis": "contractual", "rate": "36"}}))
    refused = runner.invoke(cli, ["rules", "zins", "--set", str(bad)])
    assert refused.exit_code != 0  # `kindly` prints the RulesError as one line and exits 1
    assert "interest.rate: 36 % is outside 0–30 % a year" in str(refused.exception)
    with statutory.db.session() as session:
        debtors = session.scalars(select(Debtor).where(Debtor.reference == "Z-1")).all()
        # still the statutory rules of the fixture: example 1's interest
        assert accrual.accrued_minor(session, debtors, D(2024, 8, 15)) == {debtors[0].id: 2141}


def test_paying_the_imported_claim_leaves_the_interest_open_so_retention_waits(statutory):
    from kindly import privacy
    from tests.support.app import launched

    launched(statutory, "zins")  # a live campaign: only a case paid in full is closed
    with statutory.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == "zins"))
        campaign.settings = {**(campaign.settings or {}), privacy.RETENTION_KEY: 30}
        z1 = session.scalar(select(Debtor).where(Debtor.reference == "Z-1"))
        session.add(Payment(campaign_id=z1.campaign_id, debtor_id=z1.id, provider="bank",
                            provider_ref="entry-2", amount_minor=100_000, currency="EUR",
                            status="succeeded", received_on=D(2024, 8, 15),
                            updated_at=dt.datetime(2024, 8, 15, tzinfo=dt.UTC)))  # fmt: skip
        session.flush()
        # 1,000.00 € paid on 15 August 2024 settled 21.41 € interest first: 21.41 € is open
        assert balance_on(session, z1, D(2024, 8, 15)).balance_minor == 2141
        assert z1 not in privacy.closed_cases_due(session, campaign)
