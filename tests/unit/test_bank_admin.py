"""The cockpit's bank page: upload, the queue and its three decisions, CSRF, roles and scopes."""

from __future__ import annotations

import io

from sqlalchemy import func, select

from kindly.accounts import users
from kindly.accounts.scopes import Scope
from kindly.campaigns.models import Debtor
from kindly.claims import balance as claims_balance
from kindly.payments.models import Payment
from kindly.reconciliation.models import BankEntry, BankStatement
from tests.support import bankfiles as bf
from tests.support.app import load_campaign
from tests.unit.test_admin import PASSWORD, audit_actions, csrf_of, make_user, sign_in
from tests.unit.test_bank_import import IBAN, OTHER_IBAN, PORTFOLIO

STATEMENT = bf.camt053([
    bf.Payment("Erika Mustermann", IBAN, "57.30", remittance="INV-40017"),
    bf.Payment("Family", OTHER_IBAN, "100.00", remittance="for both"),
    bf.Payment("Stranger", "DE75512108001245126199", "12.00", remittance="?"),
    bf.Payment("Landlord", "DE12500105170648489890", "900.00", remittance="Miete"),
])  # fmt: skip


def upload(client, data: bytes = STATEMENT, name: str = "dec.xml", **fields):
    token = csrf_of(client, "/admin/bank")
    return client.post("/admin/bank/upload", content_type="multipart/form-data",
                       data={"csrf_token": token, "statement": (io.BytesIO(data), name), **fields})  # fmt: skip


def waiting(ctx) -> dict[str, int]:
    with ctx.db.session() as session:
        rows = session.scalars(select(BankEntry).where(BankEntry.state == "unmatched"))
        return {e.counterparty_name: e.id for e in rows}


def test_a_manager_uploads_and_decides_every_waiting_entry(client, ctx):
    load_campaign(ctx, "winter", PORTFOLIO)
    make_user(ctx)
    sign_in(client)
    done = upload(client)
    assert done.status_code == 303
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "4 entries, 1 matched, 3 waiting" in page
    ids = waiting(ctx)
    token = csrf_of(client, "/admin/bank")
    assert (
        client.post(
            f"/admin/bank/entries/{ids['Stranger']}/assign", data={"reference": "INV-40018"}
        ).status_code
        == 400
    )  # no CSRF token
    bad = client.post(f"/admin/bank/entries/{ids['Family']}/split",
                      data={"csrf_token": token, "parts": "INV-40018=60\n4711=39.99"})  # fmt: skip
    assert bad.status_code == 422 and "add up to 99.99" in bad.get_data(as_text=True)
    assert client.post(f"/admin/bank/entries/{ids['Family']}/split",
                       data={"csrf_token": token, "parts": "INV-40018=60\nwinter/4711=40"}
                       ).status_code == 303  # fmt: skip
    assert client.post(f"/admin/bank/entries/{ids['Stranger']}/assign",
                       data={"csrf_token": token, "reference": "INV-40020"}).status_code == 303  # fmt: skip
    assert client.post(f"/admin/bank/entries/{ids['Landlord']}/not-ours",
                       data={"csrf_token": token, "note": "office rent"}).status_code == 303  # fmt: skip
    page = client.get("/admin/bank").get_data(as_text=True)
    assert "Waiting for a decision (0)" in page and "office rent" not in page
    with ctx.db.session() as session:
        by_ref = {d.reference: d for d in session.scalars(select(Debtor))}
        assert claims_balance.balance_minor(session, by_ref["INV-40018"]) == 6000
        assert claims_balance.balance_minor(session, by_ref["INV-40020"]) == 8700
        assert session.scalar(select(func.sum(Payment.amount_minor))) == 16930
    assert audit_actions(ctx).count("bank.split") == 2
    assert {"bank.import", "bank.assign", "bank.not_ours"} <= set(audit_actions(ctx))


def test_a_bad_file_shows_why_and_changes_nothing(client, ctx):
    make_user(ctx)
    sign_in(client)
    refused = upload(client, b"<Document><Stmt>", "broken.xml")
    assert refused.status_code == 422
    assert "The file was not imported" in refused.get_data(as_text=True)
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(BankStatement.id))) == 0


def test_viewers_look_and_scoped_managers_see_only_their_campaigns(client, ctx, app):
    load_campaign(ctx, "winter", PORTFOLIO)
    load_campaign(ctx, "spring", PORTFOLIO.replace("INV-", "SPR-"))
    make_user(ctx)
    sign_in(client)
    upload(client)
    with ctx.db.session() as session:
        users.create_user(session, "scoped@example.org", PASSWORD, "manager",
                          Scope(campaigns=frozenset({"spring"})))  # fmt: skip
    make_user(ctx, "viewer@example.org", "viewer")
    viewer = app.test_client()
    sign_in(viewer, "viewer@example.org")
    page = viewer.get("/admin/bank").get_data(as_text=True)
    assert "Waiting for a decision (3)" in page and 'data-form="assign"' not in page
    entry = waiting(ctx)["Stranger"]
    token = csrf_of(viewer, "/admin/bank")
    assert viewer.post(f"/admin/bank/entries/{entry}/assign",
                       data={"csrf_token": token, "reference": "INV-40020"}).status_code == 403  # fmt: skip
    scoped = app.test_client()
    sign_in(scoped, "scoped@example.org")
    page = scoped.get("/admin/bank").get_data(as_text=True)
    assert "Waiting for a decision" not in page and "Stranger" not in page
    assert "INV-40017" not in page  # booked to winter, out of this manager's scope
    token = csrf_of(scoped, "/admin/bank")
    assert scoped.post(f"/admin/bank/entries/{entry}/assign",
                       data={"csrf_token": token, "reference": "SPR-40020"}).status_code == 403  # fmt: skip
    assert waiting(ctx)["Stranger"] == entry
