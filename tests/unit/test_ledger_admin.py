"""The books in the cockpit: a payment made elsewhere recorded and reversed on the debtor's
page (CSRF, roles, scopes, bad input), the ledger download and a statement's report page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from sqlalchemy import func, select

from kindly.accounts.models import AuditLog
from kindly.accounts.scopes import Scope
from kindly.campaigns.models import Campaign
from kindly.payments.models import Payment
from tests.support.app import load_campaign
from tests.unit.test_admin import audit_actions, csrf_of, make_user, sign_in
from tests.unit.test_bank_admin import upload
from tests.unit.test_bank_import import PORTFOLIO as BANK_PORTFOLIO

PAGE = "/admin/campaigns/winter/debtors/A-1"


def signed(client, ctx, role: str = "manager", email: str = "manager@example.org"):
    make_user(ctx, email, role)
    assert sign_in(client, email).status_code == 303


def payments(ctx) -> int:
    with ctx.db.session() as session:
        return session.scalar(select(func.count()).select_from(Payment))


def cells(html: str, table: str) -> list[list[str]]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [
        [
            re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def test_a_manager_records_and_reverses_a_payment_on_the_debtors_page(client, ctx):
    load_campaign(ctx)
    signed(client, ctx)
    token = csrf_of(client, PAGE)
    form = {"amount": "60.00", "method": "cash", "date": "2026-11-30", "note": "receipt 12"}
    assert client.post(f"{PAGE}/payments", data=form).status_code == 400  # no CSRF token
    future = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    for change, problem in [
        ({"amount": "0"}, "must be more than zero"),
        ({"amount": "6.001"}, "more than 2 decimals"),
        ({"date": future}, "in the future"),
        ({"date": "30.11.2026"}, "must be a date"),
        ({"method": "barter"}, "one of cash, cheque"),
    ]:
        refused = client.post(f"{PAGE}/payments", data={"csrf_token": token, **form, **change})
        assert refused.status_code == 422 and problem in refused.get_data(as_text=True), change
    assert payments(ctx) == 0 and "payment.record" not in audit_actions(ctx)

    done = client.post(f"{PAGE}/payments", data={"csrf_token": token, **form})
    assert done.status_code == 303 and done.headers["Location"].endswith("?done=payment#books")
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "The payment was recorded." in page
    assert cells(page, "open-parts")[1:] == [
        ["fees", "€50.00", "€0.00"],
        ["interest", "€84.56", "€74.56"],
        ["principal", "€1,100.00", "€1,100.00"],
    ]
    (row,) = cells(page, "recorded")[1:]
    payment_id = row[0]
    assert row[1:6] == ["2026-11-30", "payment", "cash", "€60.00", "receipt 12"]
    assert re.search(r'id="balance">€1,174.56<', page)

    reverse = f"{PAGE}/payments/{payment_id}/reverse"
    assert client.post(reverse, data={"csrf_token": token, "note": ""}).status_code == 422
    assert client.post(reverse, data={"csrf_token": token, "note": "wrong case"}).status_code == 303
    page = client.get(PAGE).get_data(as_text=True)
    assert [r[2] for r in cells(page, "recorded")[1:]] == ["payment", "reversal"]
    assert f'action="{reverse}"' not in page  # reversed once, never twice
    assert re.search(r'id="balance">€1,234.56<', page)
    again = client.post(reverse, data={"csrf_token": token, "note": "again"})
    assert again.status_code == 422 and "already reversed" in again.get_data(as_text=True)
    assert audit_actions(ctx)[-2:] == ["payment.record", "payment.reverse"]


def test_viewers_and_other_creditors_staff_cannot_book(client, ctx):
    load_campaign(ctx)
    signed(client, ctx, "viewer", "viewer@example.org")
    page = client.get(PAGE).get_data(as_text=True)
    assert 'id="record-form"' not in page and 'id="open-parts"' in page
    token = csrf_of(client, PAGE)
    form = {"csrf_token": token, "amount": "10.00", "method": "cash", "date": "2026-11-30"}
    assert client.post(f"{PAGE}/payments", data=form).status_code == 403
    assert client.get("/admin/campaigns/winter/ledger.csv").status_code == 403
    client.post("/admin/logout", data={"csrf_token": token})
    with ctx.db.session() as session:
        from kindly.accounts import users

        users.create_user(session, "alpha@example.org", "correct horse battery staple",
                          "manager", Scope(creditors=frozenset({"Alpha GmbH"})))  # fmt: skip
    assert sign_in(client, "alpha@example.org").status_code == 303
    token = csrf_of(client, "/admin/")
    form["csrf_token"] = token
    assert client.post(f"{PAGE}/payments", data=form).status_code == 404
    assert client.get("/admin/campaigns/winter/ledger.csv").status_code == 404
    assert client.get("/admin/bank/statements/1").status_code == 403
    assert payments(ctx) == 0


def test_the_ledger_download_by_period(client, ctx):
    load_campaign(ctx)
    signed(client, ctx)
    token = csrf_of(client, PAGE)
    for day, amount in (("2026-10-30", "10.00"), ("2026-11-30", "60.00")):
        form = {"csrf_token": token, "amount": amount, "method": "cheque", "date": day}
        assert client.post(f"{PAGE}/payments", data=form).status_code == 303
    assert 'action="/admin/campaigns/winter/ledger.csv"' in client.get(
        "/admin/campaigns/winter").get_data(as_text=True)  # fmt: skip
    got = client.get("/admin/campaigns/winter/ledger.csv?from=2026-11-01&to=")
    assert got.status_code == 200 and got.mimetype == "text/csv"
    assert 'filename="winter-ledger-2026-11-01.csv"' in got.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(got.get_data(as_text=True))))
    assert [(r["date"], r["amount"], r["fees"], r["interest"], r["balance_after"]) for r in rows] == [
        ("2026-11-30", "60.00", "40.00", "20.00", "1164.56")]  # fmt: skip
    bad = client.get("/admin/campaigns/winter/ledger.csv?from=2026-12-01&to=2026-11-01")
    assert bad.status_code == 400
    with ctx.db.session() as session:
        (entry,) = session.scalars(select(AuditLog).where(AuditLog.action == "export.ledger"))
        assert entry.detail == {"rows": 1, "start": "2026-11-01", "end": None}


def test_a_statements_report_page(client, ctx):
    load_campaign(ctx, "winter", BANK_PORTFOLIO)
    signed(client, ctx)
    assert upload(client).status_code == 303
    listing = client.get("/admin/bank").get_data(as_text=True)
    assert 'href="/admin/bank/statements/1"' in listing
    page = client.get("/admin/bank/statements/1").get_data(as_text=True)
    assert cells(page, "outcomes")[1:] == [
        ["Matched to cases", "1", "57.30 EUR"],
        ["Waiting for a decision", "3", "1012.00 EUR"],
    ]
    assert cells(page, "rules")[1:] == [["case reference in the text", "1", "57.30 EUR"]]
    assert "57.30 EUR in 1 payment" in page
    assert client.get("/admin/bank/statements/99").status_code == 404
    with ctx.db.session() as session:
        assert session.scalar(select(Campaign.slug)) == "winter"


def test_the_allocation_order_is_set_and_checked_on_the_settings_page(client, ctx):
    from tests.unit.test_admin_settings import URL, post, stored

    load_campaign(ctx)
    signed(client, ctx)
    assert 'name="allocation_order" value=""' in client.get(URL).get_data(as_text=True)
    bad = post(client, allocation_order="fees, principal")
    assert bad.status_code == 422
    assert "allocation order: name each of fees, interest, principal exactly once" in bad.get_data(
        as_text=True)  # fmt: skip
    assert "payments" not in (stored(ctx).settings or {})
    assert post(client, allocation_order="principal, interest, fees").status_code == 303
    assert stored(ctx).settings["payments"] == {"allocation_order": ["principal", "interest",
                                                                     "fees"]}  # fmt: skip
    page = client.get(URL).get_data(as_text=True)
    assert 'value="principal, interest, fees"' in page
    assert post(client, allocation_order="").status_code == 303
    assert "payments" not in stored(ctx).settings  # empty: back to § 367 BGB
