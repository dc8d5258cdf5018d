"""The cockpit's inbox: a question or dispute sent from the debtor's page lands there with the
due time the page promised, a manager takes it and answers by email, SMS or the page, and
nobody outside the campaign's scope sees or answers it."""

from __future__ import annotations

import datetime as dt
import email
import re
from email import policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from kindly.accounts import users
from kindly.accounts.models import AuditLog
from kindly.accounts.scopes import Scope
from kindly.campaigns.models import Debtor
from kindly.inbox import service
from kindly.inbox.due import due_at, working_days_after
from kindly.inbox.models import InboxItem, InboxReply
from kindly.messaging import optout
from kindly.tracking.models import Event
from tests.support import services
from tests.support.app import front_client, installed, load_campaign, make_settings
from tests.unit.test_admin import PASSWORD, csrf_of, make_user, sign_in
from tests.unit.test_web import csrf_from, token_of

BERLIN = dt.timezone(dt.timedelta(hours=1))  # December: CET
CHRISTMAS_EVE = dt.datetime(2026, 12, 24, 10, 0, tzinfo=BERLIN)  # a Thursday


def dispute_from_the_page(client, ctx, reference: str = "A-1", message: str = "") -> int:
    """POST the page's contact form as the debtor; returns the contact event's id."""
    token = token_of(ctx, reference)
    form = client.get(f"/s/{token}/contact").get_data(as_text=True)
    sent = client.post(f"/s/{token}/contact", data={
        "csrf_token": csrf_from(form), "topic": "dispute",
        "message": message or "I paid this in October, see my bank statement.", "phone": "",
    })  # fmt: skip
    assert sent.status_code == 303
    with ctx.db.session() as session:
        return session.scalar(select(func.max(Event.id)).where(Event.type == "contact"))


def arrived_at(ctx, event_id: int, moment: dt.datetime) -> None:
    """Move the event's time (the request ran today; the promise is measured from arrival)."""
    with ctx.db.session() as session:
        session.get(Event, event_id).occurred_at = moment


def item_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-item="(\d+)"', html)]


@pytest.fixture
def manager(client, ctx):
    make_user(ctx)
    assert sign_in(client).status_code == 303
    return client


# ---- the promise: two working days ---------------------------------------------------------


def test_two_working_days_skip_the_weekend_and_german_public_holidays():
    # Thu 24 Dec: Fri 25 and Sat 26 are holidays, Sunday is Sunday: Mon 28, Tue 29
    assert working_days_after(dt.date(2026, 12, 24), 2, "DE") == dt.date(2026, 12, 29)
    # Friday to Tuesday over a plain weekend; Good Friday and Easter Monday 2027 skipped
    assert working_days_after(dt.date(2026, 11, 27), 2, "DE") == dt.date(2026, 12, 1)
    assert working_days_after(dt.date(2027, 3, 25), 2, "DE") == dt.date(2027, 3, 31)
    # Italy works on 26 December 2025? No: Santo Stefano. Britain: Boxing Day too
    assert working_days_after(dt.date(2025, 12, 24), 2, "IT") == dt.date(2025, 12, 30)
    due = due_at(CHRISTMAS_EVE.astimezone(dt.UTC), "de-DE")
    assert due == dt.datetime(2026, 12, 29, 17, 0, tzinfo=dt.UTC)  # 18:00 in Berlin


def test_a_dispute_posted_on_the_page_lands_in_the_inbox_due_two_working_days_later(
    manager, client, ctx
):
    load_campaign(ctx)
    event_id = dispute_from_the_page(client, ctx)
    arrived_at(ctx, event_id, CHRISTMAS_EVE)
    html = manager.get("/admin/inbox").get_data(as_text=True)
    [item_id] = item_ids(html)
    assert "dispute" in html and "Anna Müller" in html
    assert "I paid this in October" in html
    assert '<time datetime="2026-12-29T17:00:00+00:00">Tue 2026-12-29 17:00 UTC</time>' in html
    with ctx.db.session() as session:
        item = session.get(InboxItem, item_id)
        assert (item.event_id, item.topic, item.status, item.owner) == (
            event_id, "dispute", "open", None,
        )  # fmt: skip
    # read again: the event makes one item, never two
    assert item_ids(manager.get("/admin/inbox").get_data(as_text=True)) == [item_id]


def test_overdue_items_come_first_and_the_filters_split_mine_from_nobodys(manager, client, ctx):
    load_campaign(ctx)
    late = dispute_from_the_page(client, ctx, "A-2")
    fresh = dispute_from_the_page(client, ctx, "A-1")
    arrived_at(ctx, late, dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC))
    now = dt.datetime.now(dt.UTC)
    arrived_at(ctx, fresh, now)
    html = manager.get("/admin/inbox").get_data(as_text=True)
    first, second = item_ids(html)
    assert re.search(rf'data-item="{first}" data-overdue="1"', html)
    assert "1 overdue" in html
    token = csrf_of(manager, f"/admin/inbox/{second}")
    took = manager.post(f"/admin/inbox/{second}/take", data={"csrf_token": token})
    assert took.status_code == 303
    assert item_ids(manager.get("/admin/inbox?view=mine").get_data(as_text=True)) == [second]
    assert item_ids(manager.get("/admin/inbox?view=unassigned").get_data(as_text=True)) == [first]


def test_receive_records_the_contact_event_and_its_item_once_and_refuses_bad_input(ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-3"))
        item = service.receive(session, debtor, "callback", "", "+39 06 1234567", source="api")
        assert (item.topic, item.phone, item.source, item.status) == (
            "callback", "+39 06 1234567", "api", "open",
        )  # fmt: skip
        event = session.get(Event, item.event_id)
        assert (event.type, event.data["topic"]) == ("contact", "callback")
        assert service.collect(session, campaign_ids=[debtor.campaign_id]) == 0
        for topic, message in (("complaint", "x"), ("question", ""), ("dispute", "x" * 2001)):
            with pytest.raises(service.InboxError):
                service.receive(session, debtor, topic, message)
        assert session.scalar(select(func.count(InboxItem.id))) == 1
        assert session.scalar(select(func.count(Event.id)).where(Event.type == "contact")) == 1


# ---- answers -------------------------------------------------------------------------------


class Mailbox:
    """An aiosmtpd handler that keeps what arrives."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


@pytest.fixture
def smtp_ctx(tmp_path):
    """A context whose email goes to a real SMTP server on this machine."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=services.free_port())
    controller.start()
    settings = make_settings(
        tmp_path / "var", KINDLY_SMTP_URL=f"smtp+insecure://127.0.0.1:{controller.port}"
    )
    try:
        with installed(settings) as context:
            yield context, mailbox
    finally:
        controller.stop()


def test_taking_and_answering_by_email_reaches_the_debtor_over_smtp(smtp_ctx):
    ctx, mailbox = smtp_ctx
    load_campaign(ctx)
    client = front_client(ctx)
    dispute_from_the_page(client, ctx)
    make_user(ctx)
    assert sign_in(client).status_code == 303
    [item_id] = item_ids(client.get("/admin/inbox").get_data(as_text=True))
    token = csrf_of(client, f"/admin/inbox/{item_id}")
    assert (
        client.post(f"/admin/inbox/{item_id}/take", data={"csrf_token": token}).status_code == 303
    )
    answer = "Guten Tag Frau Müller,\nwir prüfen Ihren Kontoauszug und melden uns."
    sent = client.post(f"/admin/inbox/{item_id}/reply",
                       data={"csrf_token": token, "channel": "email", "body": answer})  # fmt: skip
    assert sent.status_code == 303
    [message] = mailbox.messages
    assert message["To"] == "Anna Müller <anna@example.org>"
    assert message["Subject"] == (
        "Antwort auf Ihre Nachricht – Stadtwerke Beispielstadt GmbH, Aktenzeichen A-1"
    )
    assert "Stadtwerke Beispielstadt GmbH" in message["From"]
    text = message.get_content().replace("\r\n", "\n")  # CRLF on the wire
    assert answer in text and "Ihr Vorgang online, jederzeit:" in text
    assert "/c/" in text and "to=site" in text  # their page, through the tracked link
    page = client.get(f"/admin/inbox/{item_id}?done=reply").get_data(as_text=True)
    assert 'data-channel="email" data-status="sent"' in page
    with ctx.db.session() as session:
        item = session.get(InboxItem, item_id)
        assert (item.status, item.owner) == ("answered", "manager@example.org")
        assert item.answered_at is not None
        actions = list(session.scalars(select(AuditLog.action).where(
            AuditLog.action.like("inbox.%")).order_by(AuditLog.id)))  # fmt: skip
    assert actions == ["inbox.take", "inbox.reply"]


def test_an_answer_on_the_page_is_kept_for_the_debtors_page_and_sms_goes_to_the_outbox(
    manager, client, ctx
):
    load_campaign(ctx)
    dispute_from_the_page(client, ctx)
    [item_id] = item_ids(manager.get("/admin/inbox").get_data(as_text=True))
    token = csrf_of(manager, f"/admin/inbox/{item_id}")
    for channel, body in (("page", "Wir haben Ihre Zahlung gefunden."), ("sms", "Erledigt.")):
        answered = manager.post(
            f"/admin/inbox/{item_id}/reply",
            data={"csrf_token": token, "channel": channel, "body": body},
        )
        assert answered.status_code == 303  # fmt: skip
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        [shown] = service.replies_for(session, debtor)
        statuses = dict(session.execute(select(InboxReply.channel, InboxReply.status)).all())
    assert (shown.topic, shown.body) == ("dispute", "Wir haben Ihre Zahlung gefunden.")
    assert shown.asked.startswith("I paid this in October")
    assert statuses == {"page": "shown", "sms": "outbox"}
    [sms] = (ctx.settings.data_dir / "outbox").glob("*-reply-*.sms.json")
    assert '"to": "+4915112345678"' in sms.read_text() and "Erledigt." in sms.read_text()


def test_an_opt_out_does_not_stop_an_answer_but_a_hard_bounce_does(manager, client, ctx):
    load_campaign(ctx)
    dispute_from_the_page(client, ctx)
    [item_id] = item_ids(manager.get("/admin/inbox").get_data(as_text=True))
    token = csrf_of(manager, f"/admin/inbox/{item_id}")
    with ctx.db.session() as session:
        optout.add(session, "anna@example.org", "email", "debtor")
    reply = {"csrf_token": token, "channel": "email", "body": "Wir prüfen das."}
    assert manager.post(f"/admin/inbox/{item_id}/reply", data=reply).status_code == 303
    with ctx.db.session() as session:
        session.execute(optout.OptOut.__table__.delete())
        optout.add(session, "anna@example.org", "email", "bounced_hard")
    refused = manager.post(f"/admin/inbox/{item_id}/reply", data=reply)
    assert refused.status_code == 409
    assert "blocked (bounced_hard)" in refused.get_data(as_text=True)
    assert len(list((ctx.settings.data_dir / "outbox").glob("*.eml"))) == 1
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(InboxReply.id))) == 1


def test_a_closed_item_leaves_the_open_list_and_takes_no_more_answers(manager, client, ctx):
    load_campaign(ctx)
    dispute_from_the_page(client, ctx)
    [item_id] = item_ids(manager.get("/admin/inbox").get_data(as_text=True))
    token = csrf_of(manager, f"/admin/inbox/{item_id}")
    assert manager.post(f"/admin/inbox/{item_id}/close", data={"csrf_token": token}).status_code
    assert item_ids(manager.get("/admin/inbox").get_data(as_text=True)) == []
    assert item_ids(manager.get("/admin/inbox?closed=1").get_data(as_text=True)) == [item_id]
    late = manager.post(
        f"/admin/inbox/{item_id}/reply",
        data={"csrf_token": token, "channel": "page", "body": "Noch da?"},
    )
    assert late.status_code == 409  # fmt: skip


# ---- who may ---------------------------------------------------------------------------------


def test_a_user_scoped_to_another_campaign_can_neither_see_nor_answer_the_item(client, ctx):
    load_campaign(ctx)
    load_campaign(ctx, "other", "reference,last_name,currency,amount_due,due_date\n"
                  "O-1,Other,EUR,10.00,2026-12-01\n")  # fmt: skip
    dispute_from_the_page(client, ctx)
    with ctx.db.session() as session:
        users.create_user(session, "other@example.org", PASSWORD, "manager",
                          Scope(campaigns=frozenset({"other"})))  # fmt: skip
        [item_id] = [row.item.id for row in service.listing(session, [1, 2])]
    assert sign_in(client, "other@example.org").status_code == 303
    assert item_ids(client.get("/admin/inbox").get_data(as_text=True)) == []
    assert client.get(f"/admin/inbox/{item_id}").status_code == 404
    token = csrf_of(client, "/admin/inbox")
    for action, data in (
        ("reply", {"channel": "page", "body": "Hallo"}),
        ("take", {}),
        ("close", {}),
    ):
        answer = client.post(f"/admin/inbox/{item_id}/{action}", data={"csrf_token": token, **data})
        assert answer.status_code == 404, action  # fmt: skip
    with ctx.db.session() as session:
        item = session.get(InboxItem, item_id)
        assert (item.status, item.owner) == ("open", None)
        assert session.scalar(select(func.count(InboxReply.id))) == 0


def test_a_viewer_sees_the_list_without_the_debtors_words_and_may_not_answer(client, ctx):
    load_campaign(ctx)
    dispute_from_the_page(client, ctx)
    make_user(ctx, "viewer@example.org", "viewer")
    assert sign_in(client, "viewer@example.org").status_code == 303
    html = client.get("/admin/inbox").get_data(as_text=True)
    [item_id] = item_ids(html)
    assert "I paid this in October" not in html
    token = csrf_of(client, "/admin/inbox")
    denied = client.post(
        f"/admin/inbox/{item_id}/reply",
        data={"csrf_token": token, "channel": "page", "body": "Hallo"},
    )
    assert denied.status_code == 403  # fmt: skip


def test_every_inbox_form_refuses_a_post_without_its_csrf_token(manager, client, ctx):
    load_campaign(ctx)
    dispute_from_the_page(client, ctx)
    [item_id] = item_ids(manager.get("/admin/inbox").get_data(as_text=True))
    for action in ("take", "reply", "close"):
        refused = manager.post(
            f"/admin/inbox/{item_id}/{action}", data={"channel": "page", "body": "Hallo"}
        )
        assert refused.status_code == 400, action  # fmt: skip
    with ctx.db.session() as session:
        item = session.get(InboxItem, item_id)
        assert (item.status, item.owner) == ("open", None)


# ---- data protection -------------------------------------------------------------------------


def test_an_export_holds_the_inbox_and_an_erasure_blanks_it_and_closes_the_item(
    manager, client, ctx
):
    from kindly import privacy

    load_campaign(ctx)
    dispute_from_the_page(client, ctx, message="Call me on +49 151 1234567")
    [item_id] = item_ids(manager.get("/admin/inbox").get_data(as_text=True))
    token = csrf_of(manager, f"/admin/inbox/{item_id}")
    manager.post(
        f"/admin/inbox/{item_id}/reply",
        data={"csrf_token": token, "channel": "page", "body": "Wir rufen an."},
    )
    with ctx.db.session() as session:  # fmt: skip
        campaign, debtor = privacy.find(session, "winter", "A-1")
        data = privacy.export_debtor(session, campaign, debtor)
        assert data["inbox_items"][0]["message"] == "Call me on +49 151 1234567"
        assert data["inbox_replies"][0]["body"] == "Wir rufen an."
        privacy.erase_debtor(session, debtor, None)
    with ctx.db.session() as session:
        item = session.get(InboxItem, item_id)
        assert (item.message, item.status) == ("", "closed")
        assert session.scalar(select(InboxReply.body)) == "(erased)"
    assert item_ids(manager.get("/admin/inbox").get_data(as_text=True)) == []


def test_the_answers_partial_shows_a_page_answer_in_the_debtors_language_escaped(
    manager, client, ctx, app
):
    from flask import render_template

    from renderer.texts import load_texts

    load_campaign(ctx)
    dispute_from_the_page(client, ctx, message="Warum <b>zwei</b> Rechnungen?")
    [item_id] = item_ids(manager.get("/admin/inbox").get_data(as_text=True))
    token = csrf_of(manager, f"/admin/inbox/{item_id}")
    manager.post(f"/admin/inbox/{item_id}/reply", data={
        "csrf_token": token, "channel": "page", "body": "Eine ist storniert.\nGruß"})  # fmt: skip
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        replies = service.replies_for(session, debtor)
    with app.test_request_context():
        html = render_template("web/_answers.html", replies=replies,
                               t=load_texts("site").for_lang("de"))  # fmt: skip
    assert "Unsere Antworten auf Ihre Nachrichten" in html and "Sie schrieben" in html
    assert "Warum &lt;b&gt;zwei&lt;/b&gt; Rechnungen?" in html
    assert "Eine ist storniert.<br>Gruß" in html
    with app.test_request_context():
        assert render_template("web/_answers.html", replies=[], t={}).strip() == ""
