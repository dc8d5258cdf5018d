"""Refunds in the cockpit (CSRF, roles, scopes, audit) and from the command line."""

from __future__ import annotations

import json

import pytest
from lxml import etree
from sqlalchemy import select

from kindly.accounts import users
from kindly.accounts.scopes import Scope
from kindly.bank.rf import rf_for
from kindly.campaigns.models import Debtor
from kindly.creditors.service import set_creditor
from kindly.reconciliation.importer import import_statement
from kindly.refunds import sepa, service
from kindly.refunds.models import Refund
from tests.support import bankfiles as bf
from tests.support.app import load_campaign
from tests.unit.test_admin import PASSWORD, audit_actions, csrf_of, make_user, sign_in
from tests.unit.test_cli import kindly
from tests.unit.test_refunds import ERIKA_IBAN, NS, PORTFOLIO, STADTWERKE


def overpaid(ctx, slug: str) -> int:
    """Campaign `slug`'s INV-1 paid 22.70 too much by transfer; returns the debtor's id."""
    with ctx.db.session() as session:
        debtor = session.scalar(
            select(Debtor).where(Debtor.reference == "INV-1", Debtor.campaign.has(slug=slug))
        )
        statement = bf.camt053([bf.Payment("Erika Mustermann", ERIKA_IBAN, "80.00",
                                           reference=debtor.payment_reference,
                                           bank_ref=f"B-{slug}")])  # fmt: skip
        import_statement(session, ctx.storage, statement, f"{slug}.xml")
        return debtor.id


def refund_of(ctx, debtor_id: int) -> Refund:
    with ctx.db.session() as session:
        return session.scalar(select(Refund).where(Refund.debtor_id == debtor_id))


def test_a_manager_sees_the_refund_due_and_approves_it_with_csrf(client, ctx):
    load_campaign(ctx, "winter", PORTFOLIO)
    debtor_id = overpaid(ctx, "winter")
    make_user(ctx)
    sign_in(client)
    page = client.get("/admin/refunds").get_data(as_text=True)
    assert "Waiting (1)" in page and "€22.70 back to Erika Mustermann" in page
    assert "DE02 1203 0000 0000 2020 51" in page  # the payer's IBAN, in groups of four
    refund = refund_of(ctx, debtor_id)
    assert client.post(f"/admin/refunds/{refund.id}/approve").status_code == 400  # no CSRF
    assert refund_of(ctx, debtor_id).status == "due"
    token = csrf_of(client, "/admin/refunds")
    done = client.post(f"/admin/refunds/{refund.id}/approve", data={"csrf_token": token})
    assert done.status_code == 303
    approved = refund_of(ctx, debtor_id)
    assert (approved.status, approved.approved_by) == ("approved", "manager@example.org")
    again = client.post(f"/admin/refunds/{refund.id}/approve", data={"csrf_token": token})
    assert again.status_code == 422 and "is approved, not due" in again.get_data(as_text=True)
    assert audit_actions(ctx).count("refund.approve") == 1
    page = client.get("/admin/refunds").get_data(as_text=True)
    assert 'data-status="approved"' in page and 'data-form="approve"' not in page


def test_viewers_look_and_scoped_managers_reach_only_their_campaigns_refunds(client, ctx, app):
    load_campaign(ctx, "winter", PORTFOLIO)
    load_campaign(ctx, "spring", PORTFOLIO)
    winter, spring = overpaid(ctx, "winter"), overpaid(ctx, "spring")
    with ctx.db.session() as session:
        users.create_user(session, "scoped@example.org", PASSWORD, "manager",
                          Scope(campaigns=frozenset({"spring"})))  # fmt: skip
    make_user(ctx, "viewer@example.org", "viewer")
    viewer = app.test_client()
    sign_in(viewer, "viewer@example.org")
    page = viewer.get("/admin/refunds").get_data(as_text=True)
    assert "Waiting (2)" in page and 'data-form="approve"' not in page
    token = csrf_of(viewer, "/admin/refunds")
    refund = refund_of(ctx, winter)
    assert viewer.post(f"/admin/refunds/{refund.id}/approve",
                       data={"csrf_token": token}).status_code == 403  # fmt: skip

    scoped = app.test_client()
    sign_in(scoped, "scoped@example.org")
    page = scoped.get("/admin/refunds").get_data(as_text=True)
    assert "Waiting (1)" in page and "(spring)" in page and "(winter)" not in page
    token = csrf_of(scoped, "/admin/refunds")
    # another campaign's refund answers like one that does not exist, and stays due
    assert scoped.post(f"/admin/refunds/{refund.id}/approve",
                       data={"csrf_token": token}).status_code == 404  # fmt: skip
    assert refund_of(ctx, winter).status == "due"
    own = refund_of(ctx, spring)
    assert scoped.post(f"/admin/refunds/{own.id}/approve",
                       data={"csrf_token": token}).status_code == 303  # fmt: skip
    assert refund_of(ctx, spring).status == "approved"
    assert scoped.post("/admin/refunds/99999999999/approve",
                       data={"csrf_token": token}).status_code == 404  # fmt: skip


@pytest.mark.slow  # starts the kindly command as its own process
def test_list_approve_and_export_from_the_command_line(tmp_path):
    portfolio = tmp_path / "p.csv"
    portfolio.write_text(PORTFOLIO, encoding="utf-8")
    assert (
        kindly(tmp_path, "import", str(portfolio), "--campaign", "winter", "--create").returncode
        == 0
    )
    set_profile = kindly(tmp_path, "creditor", "set", "Stadtwerke Beispielstadt GmbH",
                         *[f"--{k.replace('_', '-')}={v}" for k, v in STADTWERKE.items()])  # fmt: skip
    assert set_profile.returncode == 0, set_profile.stderr
    statement = tmp_path / "dec.xml"
    statement.write_bytes(bf.camt053([bf.Payment("Erika Mustermann", ERIKA_IBAN, "80.00",
                                                 reference=rf_for("winter", "INV-1"))]))  # fmt: skip
    assert kindly(tmp_path, "bank", "import", str(statement)).returncode == 0

    listed = kindly(tmp_path, "refunds", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["reference"], row["amount"], row["status"], row["payer_iban"]) == (
        "INV-1", "22.70", "due", ERIKA_IBAN)  # fmt: skip
    assert json.loads(kindly(tmp_path, "refunds", "list", "--json").stdout) == [row]  # once

    out = tmp_path / "refunds.xml"
    nothing = kindly(tmp_path, "refunds", "export", "--out", str(out))
    assert nothing.returncode == 0 and "Nothing to export" in nothing.stdout and not out.exists()
    missing = kindly(tmp_path, "refunds", "approve", "999")
    assert missing.returncode == 1 and "error: there is no refund 999" in missing.stderr
    assert kindly(tmp_path, "refunds", "approve", str(row["id"])).returncode == 0
    done = kindly(tmp_path, "refunds", "export", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "1 refunds, 22.70 EUR from DE89370400440532013000" in done.stdout
    document = etree.fromstring(out.read_bytes())
    assert document.findtext(".//p:CdtTrfTxInf/p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == ERIKA_IBAN
    out.unlink()
    again = kindly(tmp_path, "refunds", "export", "--out", str(out))
    assert "Nothing to export" in again.stdout and not out.exists()
    (after,) = json.loads(kindly(tmp_path, "refunds", "list", "--json").stdout)
    assert (after["status"], after["end_to_end_id"]) == ("exported", f"KINDLY-RFD-{row['id']}")
    assert kindly(tmp_path, "refunds", "done", str(row["id"])).returncode == 0


def test_a_written_file_is_downloaded_again_by_a_manager_of_every_campaign(client, ctx, app):
    load_campaign(ctx, "winter", PORTFOLIO)
    debtor_id = overpaid(ctx, "winter")
    with ctx.db.session() as session:
        set_creditor(session, "Stadtwerke Beispielstadt GmbH", STADTWERKE)
        service.sync(session)
        refund = session.scalar(select(Refund).where(Refund.debtor_id == debtor_id))
        service.approve(session, refund, user=None, via="cli")
        (written,) = sepa.export(session, user=None, via="cli").files
        export_id, document = written.export.id, written.document
    make_user(ctx)
    sign_in(client)
    page = client.get("/admin/refunds").get_data(as_text=True)
    assert f'href="/admin/refunds/exports/{export_id}.xml"' in page
    got = client.get(f"/admin/refunds/exports/{export_id}.xml")
    assert got.status_code == 200 and got.data == document
    assert got.headers["Content-Disposition"].startswith('attachment; filename="pain001-')
    assert audit_actions(ctx).count("refund.download") == 1
    with ctx.db.session() as session:
        users.create_user(session, "scoped@example.org", PASSWORD, "manager",
                          Scope(campaigns=frozenset({"winter"})))  # fmt: skip
    scoped = app.test_client()
    sign_in(scoped, "scoped@example.org")
    assert scoped.get(f"/admin/refunds/exports/{export_id}.xml").status_code == 404
    assert client.get("/admin/refunds/exports/999.xml").status_code == 404
