"""Unsubscribe links carry a credential of their own, never the page token (issue item 8)."""

from __future__ import annotations

import datetime as dt
import email
from email import policy
from urllib.parse import urlsplit

from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.messaging import delivery, optout, unsublink
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from tests.support.app import launched, load_campaign
from tests.unit.test_web import events_of, token_of
from workers.queues import Dispatcher
from workers.send import enqueue_sends

AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 in Berlin, a Tuesday
RULES = {"defaults": {"tone": "firm", "channels": ["email", "sms", "letter"]}}
CASE_FACTS = ("Anna", "Müller", "A-1", "Stadtwerke", "1.234,56", "Stromliefervertrag", "/s/")


def send_emails(ctx) -> dict[str, email.message.EmailMessage]:
    """Send the campaign's first step to the outbox; the messages by recipient."""
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        decide(session, campaign, save_rules(session, campaign, parse_rules(RULES)), AT.date())
        planned = delivery.plan(session, campaign, AT)
    enqueue_sends(Dispatcher(ctx.settings), planned, AT)
    messages = [email.message_from_bytes(path.read_bytes(), policy=policy.default)
                for path in (ctx.settings.data_dir / "outbox").glob("*.eml")]  # fmt: skip
    return {m["To"].addresses[0].addr_spec: m for m in messages}


def test_the_sent_unsubscribe_link_has_no_page_token_and_still_unsubscribes(client, ctx):
    load_campaign(ctx)
    launched(ctx)
    token = token_of(ctx, "A-1")
    anna = send_emails(ctx)["anna@example.org"]
    header = anna["List-Unsubscribe"].strip()
    link = urlsplit(header.strip("<>"))
    body = anna.get_body(("plain",)).get_content() + anna.get_body(("html",)).get_content()
    assert token not in header and f"/u/{token}" not in body
    assert link.path.startswith("/u/") and link.query == "c=email"
    assert header.strip("<>") in body  # the same link in the footer
    assert f"/c/{token}?c=email" in body  # the page links are unchanged
    page = client.get(f"{link.path}?{link.query}")
    assert page.status_code == 200 and "Keine E-Mail-Nachrichten mehr" in page.get_data(
        as_text=True
    )
    assert not any(fact in page.get_data(as_text=True) for fact in CASE_FACTS)
    done = client.post(f"{link.path}?{link.query}", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "Erledigt" in done.get_data(as_text=True)
    with ctx.db.session() as session:
        assert optout.blocked(session, "anna@example.org", "email")
        assert not optout.blocked(session, "+4915112345678", "sms")
    assert [e.channel for e in events_of(ctx, "opted_out")] == ["email"]
    assert client.get(f"/s/{token}").status_code == 200  # the page token works as before


def test_the_unsubscribe_credential_opens_nothing_else_and_cannot_be_forged(client, ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        debtor_id = session.scalar(select(Debtor.id).where(Debtor.reference == "A-1"))
    secret = ctx.settings.secret_key
    good = unsublink.credential(secret, debtor_id, "email")
    tampered = good[:-1] + ("B" if good.endswith("A") else "A")
    unknown = client.get("/u/" + "x" * 32)
    assert unknown.status_code == 404
    refused = [
        client.get(f"/s/{good}"), client.get(f"/s/{good}/pay"), client.get(f"/o/{good}.gif"),
        client.get(f"/c/{good}?to=site"),
        client.get(f"/u/{good}?c=sms"),  # an email link does not reach the SMS channel
        client.get(f"/u/{debtor_id + 1}~{good.split('~')[1]}?c=email"),  # another debtor
        client.get(f"/u/{unsublink.credential('another-secret-key-0123', debtor_id, 'email')}"),
        client.post(f"/u/{tampered}?c=email", data={"List-Unsubscribe": "One-Click"}),
    ]  # fmt: skip
    assert [r.status_code for r in refused] == [404] * len(refused)
    assert all(r.data == unknown.data for r in refused[4:])  # nothing tells which part was wrong
    with ctx.db.session() as session:
        assert not optout.blocked(session, "anna@example.org", "email")
    assert client.get(f"/u/{good}?c=email").status_code == 200
