"""Bad input to the importer: whatever the file holds, the answer is a clean import or a list
of (row, column, reason) errors; never an exception, and nothing written when it is refused."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio import PortfolioRejected, import_portfolio, read_portfolio

COLUMNS = [
    "reference", "first_name", "last_name", "salutation", "email", "phone", "locale",
    "currency", "amount_due", "principal", "interest", "fees", "due_date", "creditor",
    "contract", "street", "postal_code", "city", "country", "birth_date",
]  # fmt: skip
GOOD = {
    "reference": "R-1", "first_name": "Anna", "last_name": "Müller", "salutation": "Frau",
    "email": "anna@example.org", "phone": "+4915112345678", "locale": "de-DE",
    "currency": "EUR", "amount_due": "12.50", "principal": "10.00", "interest": "2.00",
    "fees": "0.50", "due_date": "2027-01-15", "creditor": "Stadtwerke", "contract": "V 1",
    "street": "Hauptstraße 5", "postal_code": "10115", "city": "Berlin", "country": "DE",
    "birth_date": "1980-02-29",
}  # fmt: skip
NASTY = [
    "", " ", "0", "-1", "1e999999", "NaN", "Infinity", "12,50", "1" * 5000, "9" * 40,
    "0.001", "2027-02-30", "99999-01-01", "EUR", "XXX", "JPY", "de-DE", "zz-ZZ", "\x00",
    "=cmd|' /C calc'!A0", "<script>alert(1)</script>", "\u202e", "a\r\nb", '"', "😀" * 30,
    "+49", "@", "x" * 200_000,
]  # fmt: skip

cells = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=30),
    st.sampled_from(list(GOOD.values())),
)


@st.composite
def portfolios(draw) -> tuple[bytes, str]:
    """A CSV or JSON file: columns dropped, doubled or invented, cells good or nasty,
    in UTF-8 or not, sometimes cut short."""
    header = draw(
        st.lists(st.sampled_from([*COLUMNS, "extra", "Reference", ""]), max_size=24)
        | st.permutations(COLUMNS)
    )
    rows = []
    for index in range(draw(st.integers(0, 6))):
        row = {name: GOOD.get(name, "") for name in header}
        if "reference" in row:
            row["reference"] = draw(st.sampled_from([f"R-{index}", "R-0", ""]))
        for name in draw(st.lists(st.sampled_from(header), max_size=4)) if header else []:
            row[name] = draw(cells)
        rows.append(row)
    kind = draw(st.sampled_from(["csv", "csv;", "json", "json-raw"]))
    if kind == "json":
        text = json.dumps(rows, ensure_ascii=False)
    elif kind == "json-raw":
        text = draw(
            st.sampled_from(["[", "{}", "[1]", "[[[]]]", "[" * 5000, "[{\"a\": 1e999}]",
                             "[{\"amount_due\": " + "9" * 5000 + "}]", "null", "[{}]"])
        )  # fmt: skip
    else:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";" if kind == "csv;" else ",")
        writer.writerow(header)
        for row in rows:
            values = [row.get(name, "") for name in header]
            if draw(st.booleans()) and values:
                values = values[: draw(st.integers(0, len(values)))]  # a short row
            writer.writerow(values)
        text = out.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]  # truncated upload
    name = "p.json" if kind.startswith("json") and draw(st.booleans()) else "p.csv"
    return data, name


@pytest.fixture
def campaign_id(ctx) -> int:
    with ctx.db.session() as session:
        campaign = Campaign(slug="fuzz", name="Fuzz", default_locale="de-DE")
        session.add(campaign)
        session.flush()
        return campaign.id


def count(ctx) -> int:
    with ctx.db.session() as session:
        return session.scalar(select(func.count(Debtor.id)))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(portfolio=portfolios(), skip_invalid=st.booleans())
def test_any_file_is_imported_cleanly_or_refused_with_reasons(
    ctx, campaign_id, portfolio, skip_invalid
):
    data, name = portfolio
    text = data.decode("utf-8-sig", errors="replace")
    # a row number is 0 (the file as a whole), a line of the file or, in JSON, an item
    places = max(len(text.splitlines()), text.count(",")) + 1
    before = count(ctx)
    try:
        rows = read_portfolio(data, name)
        with ctx.db.session() as session:
            campaign = session.get(Campaign, campaign_id)
            result, rejected = import_portfolio(session, campaign, rows, skip_invalid=skip_invalid)
    except PortfolioRejected as refused:
        assert refused.errors, "refused without a reason"
        for error in refused.errors:
            assert isinstance(error.row, int) and 0 <= error.row <= places, error
            assert isinstance(error.column, str) and error.column
            assert isinstance(error.reason, str) and error.reason.strip()
            assert "Traceback" not in str(error)
        assert count(ctx) == before  # all or nothing: nothing was written
        return
    assert result.rejected == len(rejected)
    assert {row.number for row, _ in rejected} <= {row.number for row in rows}
    if rows and not rejected:
        assert result.created + result.updated > 0  # every good case is written somewhere
    assert count(ctx) == before + result.created
    for _row, errors in rejected:
        assert errors and all(e.reason for e in errors)


@pytest.mark.parametrize(
    ("data", "row", "reason"),
    [
        (b"reference,last_name,currency,amount_due,due_date\nR,"
         + b"x" * 200_000 + b",EUR,1,2027-01-01\n", 2, "not valid CSV: field larger"),
        (b"x" * 200_000 + b"\n", 1, "not valid CSV: field larger"),
        (b'[{"amount_due": ' + b"9" * 5000 + b"}]", 0, "not valid JSON: a number is too long"),
        (b"[" * 5000, 0, "not valid JSON: nested too deeply"),
    ],
)  # fmt: skip
def test_files_the_parsers_choke_on_are_refused_with_a_reason(data, row, reason):
    """Found by the property test: each of these raised csv.Error, ValueError or
    RecursionError out of read_portfolio (a 500 on the upload routes)."""
    with pytest.raises(PortfolioRejected) as refused:
        read_portfolio(data, "p.csv")
    [error] = refused.value.errors
    assert (error.row, error.column) == (row, "-")
    assert error.reason.startswith(reason)
