"""Unsubscribe links and delivery reports arriving at the front."""

from __future__ import annotations

import dataclasses
from email.message import EmailMessage

from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.messaging import optout
from tests.support.app import load_campaign
from tests.unit.test_web import events_of, token_of


def test_unsubscribe_link_asks_first_and_one_click_post_opts_out(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    page = client.get(f"/u/{token}?c=email")
    assert page.status_code == 200 and "Keine E-Mail-Nachrichten mehr" in page.get_data(
        as_text=True
    )
    with ctx.db.session() as session:  # a scanner following the link changed nothing
        assert not optout.blocked(session, "anna@example.org", "email")
    # what a mail client sends for List-Unsubscribe-Post (RFC 8058): no cookie, no CSRF token
    done = client.post(f"/u/{token}?c=email", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "Erledigt" in done.get_data(as_text=True)
    with ctx.db.session() as session:
        assert optout.blocked(session, "anna@example.org", "email")
        assert not optout.blocked(session, "+4915112345678", "sms")
    assert [e.channel for e in events_of(ctx, "opted_out")] == ["email"]
    assert client.post(f"/u/{token}?c=email", data={}).status_code == 400
    assert client.get("/u/" + "x" * 32).status_code == 404


def test_delivery_callbacks_need_the_webhook_token(client, ctx, app):
    load_campaign(ctx)
    assert (
        client.post("/webhooks/sms", json={"reference": "x", "status": "delivered"}).status_code
        == 404
    )
    ctx.settings = dataclasses.replace(ctx.settings, webhook_token="hook-token-0123456789")
    refused = client.post("/webhooks/sms", json={"reference": "x", "status": "delivered"},
                          headers={"Authorization": "Bearer wrong"})  # fmt: skip
    assert refused.status_code == 401
    odd = client.post("/webhooks/sms", json={"reference": "x", "status": "delivered"},
                      headers={"Authorization": "Bearer h\u00e9"})  # fmt: skip
    assert odd.status_code == 401  # non-ASCII: refused, not a 500
    unknown = client.post("/webhooks/sms", json={"reference": "nope", "status": "delivered"},
                          headers={"Authorization": "Bearer hook-token-0123456789"})  # fmt: skip
    assert unknown.status_code == 200 and unknown.get_json() == {"applied": None}
    dsn = EmailMessage()
    dsn["Subject"] = "Delivery Status Notification"
    dsn.set_content("not a report")
    bad = client.post("/webhooks/bounces", data=dsn.as_bytes(),
                      headers={"Authorization": "Bearer hook-token-0123456789"})  # fmt: skip
    assert bad.status_code == 400
    with ctx.db.session() as session:
        assert session.scalar(select(Debtor).where(Debtor.reference == "A-1")) is not None
