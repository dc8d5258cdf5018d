"""Viewers see what viewers may see: the case timeline and the API's events mask a debtor's
message, phone number and a mail server's bounce diagnostic, as the debtor page masks contacts;
managers see them whole."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from kindly.accounts import users
from kindly.campaigns.models import Debtor
from kindly.messaging.models import Send
from kindly.tracking import events
from tests.support.app import PHONE_UA, load_campaign
from tests.unit.test_admin import PASSWORD, sign_in
from web.api import common

MESSAGE = "I lost my job and am in hospital"
PHONE = "+49 151 99988877"
DIAGNOSTIC = "smtp; 550 5.1.1 <anna.private@mail.example>: user unknown"
SECRETS = (MESSAGE, "99988877", "anna.private", "550 5.1.1", "+4915112345678")
"""What a viewer must not read anywhere: the message, both phone numbers, the bounce."""


@pytest.fixture(autouse=True)
def _fresh_rate_windows():
    common.forget_rate_limits()
    yield
    common.forget_rate_limits()


@pytest.fixture
def case(ctx):
    """A-1 wrote a message with a phone number, and an email to them bounced."""
    load_campaign(ctx)
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        events.record(session, debtor, "contact", channel="web",
                      data={"topic": "callback", "message": MESSAGE, "phone": PHONE})  # fmt: skip
        events.record(session, debtor, "bounced_hard", channel="email", agent="automated",
                      data={"status": "5.1.1", "diagnostic": DIAGNOSTIC, "send_id": 1})  # fmt: skip
        events.record(session, debtor, "bounced_soft", channel="email", agent="automated",
                      data={"reply": f"452 mailbox of {debtor.email} full", "attempt": 2})  # fmt: skip
        session.add(Send(campaign_id=debtor.campaign_id, debtor_id=debtor.id, step=1,
                         channel="email", address=debtor.email, status="failed", attempts=1,
                         error=DIAGNOSTIC, created_at=dt.datetime.now(dt.UTC)))  # fmt: skip
    return ctx


def page_for(app, ctx, role: str) -> str:
    with ctx.db.session() as session:
        users.create_user(session, f"{role}@example.org", PASSWORD, role)
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = PHONE_UA
    assert sign_in(client, f"{role}@example.org").status_code == 303
    response = client.get("/admin/campaigns/winter/debtors/A-1")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def events_for(client, ctx, role: str) -> str:
    with ctx.db.session() as session:
        user = users.create_user(session, f"{role}-key@example.org", PASSWORD, role)
        _, secret = users.issue_token(session, user, "crm")
    response = client.get("/api/v1/campaigns/winter/events",
                          headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
    assert response.status_code == 200
    assert len(response.get_json()["events"]) >= 3
    return response.get_data(as_text=True)


def test_a_viewers_timeline_shows_no_message_phone_or_diagnostic(app, case):
    html = page_for(app, case, "viewer")
    for secret in SECRETS:
        assert secret not in html, secret
    assert "masked for your role" in html
    assert "+49•••77" in html  # the contact's phone, masked like the debtor's own
    assert "topic: callback" in html  # what is not personal stays readable


def test_a_managers_timeline_shows_them_whole(app, case):
    html = page_for(app, case, "manager")
    assert MESSAGE in html and PHONE in html and "550 5.1.1" in html
    assert "anna.private@mail.example" in html


def test_a_viewers_key_gets_the_events_masked_and_a_managers_key_whole(client, case):
    masked = events_for(client, case, "viewer")
    for secret in SECRETS:
        assert secret not in masked, secret
    assert "callback" in masked and "5.1.1" in masked  # the status code stays
    whole = events_for(client, case, "manager")
    assert MESSAGE in whole and PHONE in whole and "anna.private@mail.example" in whole
