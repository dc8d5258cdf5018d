"""The inbox in the API: a campaign's items and answering one, only within the key's scope."""

from __future__ import annotations

from sqlalchemy import func, select

from kindly.accounts import users
from kindly.accounts.scopes import Scope
from kindly.inbox.models import InboxReply
from tests.support.app import load_campaign
from tests.unit.test_admin import PASSWORD
from tests.unit.test_api import conforms
from tests.unit.test_inbox import CHRISTMAS_EVE, arrived_at, dispute_from_the_page
from web.api import common


def key_for(ctx, email: str, scope: Scope | None = None) -> dict[str, str]:
    with ctx.db.session() as session:
        user = users.create_user(session, email, PASSWORD, "manager", scope)
        _, secret = users.issue_token(session, user, "crm")
    return {"Authorization": f"Bearer {secret}"}


def test_the_api_lists_and_answers_items_only_within_the_keys_scope(client, ctx):
    common.forget_rate_limits()
    load_campaign(ctx)
    load_campaign(ctx, "other", "reference,last_name,currency,amount_due,due_date\n"
                  "O-1,Other,EUR,10.00,2026-12-01\n")  # fmt: skip
    event_id = dispute_from_the_page(client, ctx)
    arrived_at(ctx, event_id, CHRISTMAS_EVE)
    mine = key_for(ctx, "crm@example.org")
    listed = client.get("/api/v1/campaigns/winter/inbox", headers=mine)
    conforms(listed, "/campaigns/{slug}/inbox", "get")
    [item] = listed.get_json()["items"]
    assert (item["reference"], item["topic"], item["due_at"]) == (
        "A-1", "dispute", "2026-12-29T17:00:00+00:00",
    )  # fmt: skip
    answered = client.post(f"/api/v1/campaigns/winter/inbox/{item['id']}/reply", headers=mine,
                           json={"channel": "page", "body": "Wir prüfen das."})  # fmt: skip
    assert answered.status_code == 201, answered.get_json()
    conforms(answered, "/campaigns/{slug}/inbox/{id}/reply", "post")
    assert answered.get_json()["item_status"] == "answered"
    bad = client.post(f"/api/v1/campaigns/winter/inbox/{item['id']}/reply", headers=mine,
                      json={"channel": "fax", "body": "x"})  # fmt: skip
    assert bad.status_code == 400
    conforms(bad, "/campaigns/{slug}/inbox/{id}/reply", "post")
    theirs = key_for(ctx, "them@example.org", Scope(campaigns=frozenset({"other"})))
    assert client.get("/api/v1/campaigns/winter/inbox", headers=theirs).status_code == 404
    assert client.get("/api/v1/campaigns/other/inbox", headers=theirs).get_json() == {"items": []}
    stranger = client.post(f"/api/v1/campaigns/other/inbox/{item['id']}/reply", headers=theirs,
                           json={"channel": "page", "body": "Hallo"})  # fmt: skip
    assert stranger.status_code == 404
    conforms(stranger, "/campaigns/{slug}/inbox/{id}/reply", "post")
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(InboxReply.id))) == 1
