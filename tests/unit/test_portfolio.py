"""Portfolio import: every bad row is refused with row, column and reason; nothing is lost."""

from __future__ import annotations

import csv

import pytest
from sqlalchemy import func, select

from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio import (
    PortfolioRejected,
    import_portfolio,
    read_portfolio,
    validate_rows,
    write_rejects,
)
from tests.support.app import PORTFOLIO, load_campaign

HEADER = "reference,last_name,currency,amount_due,due_date,email"


def errors_for(body: str) -> list[tuple[int, str, str]]:
    rows = read_portfolio(f"{HEADER}\n{body}\n".encode(), "p.csv")
    _, errors = validate_rows(rows)
    return [(e.row, e.column, e.reason) for e in errors]


@pytest.mark.parametrize(
    ("line", "column", "reason_part"),
    [
        ("R1,Doe,EUR,,2026-12-01,", "amount_due", "is required"),
        ("R1,Doe,EUR,0,2026-12-01,", "amount_due", "greater than 0"),
        ("R1,Doe,EUR,-5,2026-12-01,", "amount_due", "greater than 0"),
        ("R1,Doe,EUR,abc,2026-12-01,", "amount_due", "not a number"),
        ('R1,Doe,EUR,"1.234,56",2026-12-01,', "amount_due", "uses ','"),
        ("R1,Doe,EUR,12.345,2026-12-01,", "amount_due", "more than 2 decimals"),
        ("R1,Doe,JPY,12.5,2026-12-01,", "amount_due", "more than 0 decimals"),
        ("R1,Doe,EUR,10,2026-02-30,", "due_date", "not a real date"),
        ("R1,Doe,EUR,10,01.12.2026,", "due_date", "not an ISO 8601 date"),
        ("R1,Doe,XYZ,10,2026-12-01,", "currency", "unknown currency"),
        ("R1,Doe,EUR,10,2026-12-01,anna@@example", "email", "not an email address"),
        ("R1,Doe,EUR,10,2026-12-01,anna example.org", "email", "not an email address"),
        (",Doe,EUR,10,2026-12-01,", "reference", "is required"),
        ("R1,,EUR,10,2026-12-01,", "last_name", "is required"),
    ],
)
def test_bad_cell_is_named_by_row_column_and_reason(line, column, reason_part):
    errors = errors_for(line)
    assert len(errors) == 1, errors
    row, col, reason = errors[0]
    assert (row, col) == (2, column)
    assert reason_part in reason


def test_duplicate_reference_points_at_the_first_row():
    errors = errors_for(
        "R1,Doe,EUR,10,2026-12-01,\nR2,Roe,EUR,10,2026-12-01,\nR1,Poe,EUR,10,2026-12-01,"
    )
    assert errors == [(4, "reference", "duplicate reference 'R1', first in row 2")]


def test_breakdown_must_add_up():
    rows = read_portfolio(
        b"reference,last_name,currency,amount_due,principal,interest,fees,due_date\n"
        b"R1,Doe,EUR,100.00,90.00,5.00,4.00,2026-12-01\n",
        "p.csv",
    )
    _, errors = validate_rows(rows)
    assert [(e.column, "99.00" in e.reason) for e in errors] == [("amount_due", True)]


def test_missing_required_column_is_reported_for_the_header():
    with pytest.raises(PortfolioRejected) as caught:
        read_portfolio(b"reference,last_name,currency,due_date\nR1,Doe,EUR,2026-12-01\n", "p.csv")
    assert [(e.row, e.column) for e in caught.value.errors] == [(1, "amount_due")]


def test_not_utf8_is_refused_clearly():
    with pytest.raises(PortfolioRejected) as caught:
        read_portfolio("reference,last_name\nR1,Müller\n".encode("latin-1"), "p.csv")
    assert "not UTF-8" in caught.value.errors[0].reason


def test_semicolon_csv_from_spreadsheet_exports_is_read():
    rows = read_portfolio(
        f"{HEADER.replace(',', ';')}\nR1;Doe;EUR;10.50;2026-12-01;\n".encode(), "p.csv"
    )
    clean, errors = validate_rows(rows)
    assert not errors
    assert clean[0].fields["amount_due_minor"] == 1050


def test_json_portfolio_and_extra_columns_become_attributes():
    data = b'[{"reference": "J1", "last_name": "Doe", "currency": "jpy", "amount_due": "1200", "due_date": "2026-12-01", "risk": "low"}]'
    clean, errors = validate_rows(read_portfolio(data, "p.json"))
    assert not errors
    assert clean[0].fields["currency"] == "JPY"
    assert clean[0].fields["amount_due_minor"] == 1200
    assert clean[0].attributes == {"risk": "low"}


def test_one_bad_row_writes_nothing(ctx):
    load_campaign(ctx)
    bad = PORTFOLIO.replace("A-3,,Giulia", "A-4,,Giulia").replace("42.00", "42,00")
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        before = session.scalar(select(func.count(Debtor.id)))
        with pytest.raises(PortfolioRejected):
            import_portfolio(session, campaign, read_portfolio(bad.encode(), "p.csv"))
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(Debtor.id))) == before == 3


def test_reimport_updates_and_keeps_the_token(ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
    changed = PORTFOLIO.replace("1234.56,1100.00,84.56,50.00", "1300.00,1100.00,150.00,50.00")
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        result, _ = import_portfolio(session, campaign, read_portfolio(changed.encode(), "p.csv"))
    assert (result.created, result.updated) == (0, 3)
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        assert debtor.amount_due_minor == 130000
        assert debtor.token == token
        assert session.scalar(select(func.count(Debtor.id))) == 3


def test_skip_invalid_imports_good_rows_and_writes_rejects(ctx, tmp_path):
    text = PORTFOLIO + "A-9,,X,Bad,,,,EUR,0,,,,2026-13-01,,,,,,\n"
    with ctx.db.session() as session:
        campaign = Campaign(slug="c", name="C")
        session.add(campaign)
        session.flush()
        rows = read_portfolio(text.encode(), "p.csv")
        result, rejected = import_portfolio(session, campaign, rows, skip_invalid=True)
    assert (result.created, result.rejected) == (3, 1)
    out = tmp_path / "rejects.csv"
    write_rejects(out, rejected)
    with out.open(encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert written[0]["row"] == "5"
    assert written[0]["reference"] == "A-9"
    assert "amount_due: must be greater than 0" in written[0]["reason"]
    assert "due_date" in written[0]["reason"]


def test_tokens_are_unguessable_and_distinct(ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        tokens = list(session.scalars(select(Debtor.token)))
    assert len(set(tokens)) == 3
    assert all(len(token) >= 32 for token in tokens)  # 24 random bytes = 192 bits
