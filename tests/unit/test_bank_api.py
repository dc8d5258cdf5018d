"""/api/v1/bank as an integrator calls it: statements in, the queue, assignments; scoped keys out."""

from __future__ import annotations

import io

from sqlalchemy import func, select

from kindly.accounts import users
from kindly.accounts.models import AuditLog
from kindly.accounts.scopes import Scope
from kindly.bank.rf import rf_for
from kindly.payments.models import Payment
from kindly.reconciliation.models import BankStatement
from tests.support import bankfiles as bf
from tests.support.app import load_campaign
from tests.unit.test_api import PASSWORD, auth, conforms, key_for
from tests.unit.test_bank_import import IBAN, OTHER_IBAN, PORTFOLIO


def statement() -> bytes:
    return bf.camt053([
        bf.Payment("E", IBAN, "57.30", reference=rf_for("winter", "INV-40017")),
        bf.Payment("Family", OTHER_IBAN, "100.00", remittance="for both"),
    ])  # fmt: skip


def test_import_list_and_assign_through_the_api(client, ctx):
    load_campaign(ctx, "winter", PORTFOLIO)
    secret = key_for(ctx, "manager")
    imported = client.post("/api/v1/bank/statements?filename=dec.xml", headers=auth(secret),
                           data=statement(), content_type="application/xml")  # fmt: skip
    assert imported.status_code == 200, imported.get_json()
    conforms(imported, "/bank/statements", "post")
    body = imported.get_json()
    assert (body["entries"], body["matched"], body["unmatched"], body["by_rule"]) == (
        2,
        1,
        1,
        {"rf": 1},
    )
    again = client.post("/api/v1/bank/statements", headers=auth(secret), content_type="multipart/form-data",
                        data={"file": (io.BytesIO(statement()), "dec.xml")})  # fmt: skip
    assert again.get_json()["already_imported"] == 2 and again.get_json()["duplicate"] is True

    queue = client.get("/api/v1/bank/unmatched", headers=auth(secret))
    conforms(queue, "/bank/unmatched", "get")
    [waiting] = queue.get_json()["entries"]
    assert (waiting["amount"], waiting["name"]) == ("100.00", "Family")

    path = f"/api/v1/bank/entries/{waiting['id']}/assign"
    uneven = client.post(
        path,
        headers=auth(secret),
        json={
            "parts": [
                {"reference": "INV-40018", "amount": "60.00"},
                {"reference": "4711", "amount": "30.00"},
            ]
        },
    )
    assert uneven.status_code == 422 and "add up to 90.00" in uneven.get_json()["error"]
    conforms(uneven, "/bank/entries/{id}/assign", "post")
    split = client.post(
        path,
        headers=auth(secret),
        json={
            "parts": [
                {"reference": "INV-40018", "amount": "60.00"},
                {"reference": "4711", "amount": "40.00"},
            ]
        },
    )
    assert split.status_code == 200, split.get_json()
    conforms(split, "/bank/entries/{id}/assign", "post")
    assert split.get_json() == {"id": waiting["id"], "state": "matched", "rule": "split"}
    twice = client.post(path, headers=auth(secret), json={"reference": "INV-40018"})
    assert twice.status_code == 409
    assert client.post("/api/v1/bank/entries/999/assign", headers=auth(secret),
                       json={"reference": "X"}).status_code == 404  # fmt: skip
    with ctx.db.session() as session:
        assert session.scalar(select(func.sum(Payment.amount_minor))) == 15730
        actions = set(session.scalars(select(AuditLog.action)))
        assert {"bank.import", "bank.split"} <= actions


def test_a_bad_file_is_refused_with_the_place_and_writes_nothing(client, ctx):
    secret = key_for(ctx, "manager")
    bad = client.post("/api/v1/bank/statements", headers=auth(secret),
                      data=bf.camt053([bf.Payment("E", IBAN, "1.001")]),
                      content_type="application/xml")  # fmt: skip
    assert bad.status_code == 422
    conforms(bad, "/bank/statements", "post")
    assert bad.get_json()["where"]
    wrong = client.post("/api/v1/bank/statements", headers=auth(secret), data="{}",
                        content_type="application/json")  # fmt: skip
    assert wrong.status_code == 415
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(BankStatement.id))) == 0


def test_viewers_and_scoped_keys_may_not_touch_the_bank(client, ctx):
    load_campaign(ctx, "winter", PORTFOLIO)
    viewer = key_for(ctx, "viewer")
    with ctx.db.session() as session:
        user = users.create_user(session, "scoped@example.org", PASSWORD, "manager",
                                 Scope(campaigns=frozenset({"winter"})))  # fmt: skip
        _, scoped = users.issue_token(session, user, "crm")
    for secret, status in ((viewer, 403), (scoped, 403)):
        assert client.get("/api/v1/bank/unmatched", headers=auth(secret)).status_code == status
        response = client.post("/api/v1/bank/statements", headers=auth(secret), data=statement(),
                               content_type="application/xml")  # fmt: skip
        assert response.status_code == status
        conforms(response, "/bank/statements", "post")
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(BankStatement.id))) == 0


def test_an_entry_id_beyond_the_column_is_not_found_not_a_crash(client, ctx):
    """Found by schemathesis: /bank/entries/32589158477190044729/assign answered 500."""
    secret = key_for(ctx, "manager")
    for entry_id in (32589158477190044729, 2**31, 0):
        answer = client.post(f"/api/v1/bank/entries/{entry_id}/assign", headers=auth(secret),
                             json={"reference": "INV-40017"})  # fmt: skip
        assert answer.status_code == 404, (entry_id, answer.get_data(as_text=True))
        assert f"there is no bank entry {entry_id}" in answer.get_data(as_text=True)
