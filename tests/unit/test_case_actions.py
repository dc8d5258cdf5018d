"""Case actions on the cockpit's debtor page: the case's state, holding collection and
releasing it, notes, and sending the link again; and the debtor list's states."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from kindly.accounts.models import AuditLog
from kindly.campaigns.models import Campaign, CampaignStatus, Debtor
from kindly.cases import holds
from kindly.cases.models import CaseHold
from kindly.inbox.models import CaseNote
from kindly.messaging import delivery
from kindly.payments.models import Payment
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.tracking.models import Event
from tests.support.app import load_campaign
from tests.unit.test_admin import csrf_of, make_user, sign_in

CASE = "/admin/campaigns/winter/debtors/A-1"
AT = dt.datetime.now(dt.UTC).replace(hour=10, minute=0)  # inside Berlin's sending hours
RULES = {"defaults": {"tone": "firm", "channels": ["email", "sms"],
                      "send_window": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}},
         "quiet_hours": {"start": "00:00", "end": "23:59", "sundays": True,
                         "holidays": True}}  # fmt: skip


@pytest.fixture
def manager(client, ctx):
    load_campaign(ctx)
    make_user(ctx)
    assert sign_in(client).status_code == 303
    return client


def planned(ctx) -> delivery.Planned:
    """A-1's line of the send plan now."""
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == "winter"))
        decide(session, campaign, save_rules(session, campaign, parse_rules(RULES)), AT.date())
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == "winter"))
        return {p.reference: p for p in delivery.plan(session, campaign, AT)}["A-1"]


def go_live(ctx) -> None:
    with ctx.db.session() as session:
        session.add(CampaignStatus(campaign_id=session.scalar(select(Campaign.id)), status="live"))


def post(client, action: str, **data):
    token = csrf_of(client, CASE)
    return client.post(f"{CASE}/{action}", data={"csrf_token": token, **data})


def audited(ctx, prefix: str) -> list[str]:
    with ctx.db.session() as session:
        query = select(AuditLog.action).where(AuditLog.action.like(f"{prefix}%"))
        return list(session.scalars(query.order_by(AuditLog.id)))


def test_a_manual_hold_holds_the_send_plan_and_its_release_resumes_it(manager, ctx):
    go_live(ctx)  # only a live campaign's plan asks each case
    assert planned(ctx).status == "send"
    held = post(manager, "hold", note="Called: pays after the holidays")
    assert held.status_code == 303 and held.headers["Location"].endswith("done=hold#case-actions")
    assert (planned(ctx).status, planned(ctx).reason) == ("held", "on_hold")
    page = manager.get(CASE).get_data(as_text=True)
    assert 'data-state="on_hold"' in page and "Called: pays after the holidays" in page
    hold_id = re.search(r'data-hold="(\d+)" data-reason="manual"', page).group(1)
    assert post(manager, "release", hold=hold_id, note="").status_code == 400  # say why
    assert post(manager, "release", hold="9" * 30, note="x").status_code == 400
    released = post(manager, "release", hold=hold_id, note="Paid part, rest by plan")
    assert released.status_code == 303
    assert planned(ctx).status == "send"
    page = manager.get(CASE).get_data(as_text=True)
    assert 'data-state="open"' in page and "Released manual hold: Paid part, rest by plan" in page
    assert audited(ctx, "case.") == ["case.hold", "case.release"]


def test_a_hold_until_a_day_ends_by_itself_and_a_past_day_is_refused(manager, ctx):
    soon = dt.date.today() + dt.timedelta(days=3)
    assert post(manager, "hold", note="", until=soon.isoformat()).status_code == 303
    with ctx.db.session() as session:
        [hold] = session.scalars(select(CaseHold)).all()
        assert (hold.reason, hold.until, hold.placed_by) == ("manual", soon, "manager@example.org")
    yesterday = dt.date.today() - dt.timedelta(days=1)
    with ctx.db.session() as session:
        session.execute(CaseHold.__table__.delete())
    refused = post(manager, "hold", note="", until=yesterday.isoformat())
    assert refused.status_code == 400 and "in the past" in refused.get_data(as_text=True)
    assert post(manager, "hold", note="", until="soon").status_code == 400
    with ctx.db.session() as session:
        assert session.scalars(select(CaseHold)).all() == []


def test_releasing_a_dispute_from_the_page_resumes_collection(manager, ctx):
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        hold = holds.place(session, debtor, "dispute", source="page")
        hold_id = hold.id
    go_live(ctx)
    assert planned(ctx).reason == "dispute_open"
    page = manager.get(CASE).get_data(as_text=True)
    assert 'data-state="disputed"' in page and "(collection resumes)" in page
    assert post(manager, "release", hold=hold_id, note="Contract checked: claim stands")
    assert planned(ctx).status == "send"


def test_notes_are_kept_audited_and_masked_for_viewers(manager, client, ctx):
    assert post(manager, "note", body="  ").status_code == 400
    assert post(manager, "note", body="Spoke to her <b>daughter</b>").status_code == 303
    page = manager.get(CASE).get_data(as_text=True)
    assert "Spoke to her &lt;b&gt;daughter&lt;/b&gt;" in page
    assert audited(ctx, "case.") == ["case.note"]
    manager.post("/admin/logout", data={"csrf_token": csrf_of(manager, CASE)})
    make_user(ctx, "viewer@example.org", "viewer")
    assert sign_in(client, "viewer@example.org").status_code == 303
    page = client.get(CASE).get_data(as_text=True)
    assert "daughter" not in page and "masked for your role" in page
    assert 'id="note-form"' not in page
    token = csrf_of(client, CASE)
    assert client.post(f"{CASE}/note", data={"csrf_token": token, "body": "x"}).status_code == 403
    with ctx.db.session() as session:
        assert len(session.scalars(select(CaseNote)).all()) == 1


def test_resending_the_link_goes_through_the_send_path_and_is_refused_when_it_must_not(
    manager, ctx
):
    outbox = ctx.settings.data_dir / "outbox"
    draft = post(manager, "resend", channel="email")
    assert draft.status_code == 409 and "the campaign is draft" in draft.get_data(as_text=True)
    go_live(ctx)
    planned(ctx)  # the rules decide the tone of the message
    assert post(manager, "resend", channel="email").status_code == 303
    [eml] = outbox.glob("winter-*-resend-1-email.eml")
    assert "Stadtwerke Beispielstadt GmbH" in eml.read_bytes().decode("utf-8", "replace")
    assert post(manager, "resend", channel="sms").status_code == 303
    [sms] = outbox.glob("winter-*-resend-2-sms.sms.json")
    assert "/c/" in sms.read_text()
    with ctx.db.session() as session:
        kinds = [
            (e.type, e.channel, e.data.get("resend"))
            for e in session.scalars(
                select(Event).where(Event.idempotency_key.like("resend:%")).order_by(Event.id)
            )
        ]
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        session.add(Payment(campaign_id=debtor.campaign_id, debtor_id=debtor.id,
                            provider="sandbox", provider_ref="sbx_all", status="succeeded",
                            amount_minor=debtor.amount_due_minor, currency="EUR"))  # fmt: skip
    assert kinds == [("outbox", "email", True), ("outbox", "sms", True)]
    paid = post(manager, "resend", channel="email")
    assert paid.status_code == 409 and "the case is paid" in paid.get_data(as_text=True)
    assert len(list(outbox.glob("*resend*"))) == 2
    assert audited(ctx, "case.resend") == [
        "case.resend_refused", "case.resend", "case.resend", "case.resend_refused",
    ]  # fmt: skip


def test_resend_is_refused_for_an_opted_out_address(manager, client, ctx):
    go_live(ctx)
    from tests.unit.test_web import csrf_from, token_of

    token = token_of(ctx, "A-1")
    form = client.get(f"/s/{token}/preferences").get_data(as_text=True)
    client.post(
        f"/s/{token}/preferences",
        data={"csrf_token": csrf_from(form), "channel": "letter", "opt_out": "1"},
    )
    refused = post(manager, "resend", channel="email")  # fmt: skip
    assert refused.status_code == 409 and "blocked (opted_out)" in refused.get_data(as_text=True)


def test_every_case_form_refuses_a_post_without_its_csrf_token(manager, ctx):
    for action, data in (
        ("hold", {"note": "x"}),
        ("note", {"body": "x"}),
        ("resend", {"channel": "email"}),
        ("release", {"hold": "1"}),
    ):
        assert manager.post(f"{CASE}/{action}", data=data).status_code == 400, action
    with ctx.db.session() as session:
        assert session.scalars(select(CaseHold)).all() == []
        assert session.scalars(select(CaseNote)).all() == []


def test_the_debtor_list_shows_each_cases_state_and_filters_by_it(manager, ctx):
    with ctx.db.session() as session:
        a2 = session.scalar(select(Debtor).where(Debtor.reference == "A-2"))
        holds.place(session, a2, "dispute", source="page")
        a3 = session.scalar(select(Debtor).where(Debtor.reference == "A-3"))
        session.add(Payment(campaign_id=a3.campaign_id, debtor_id=a3.id, provider="sandbox",
                            provider_ref="sbx_3", status="succeeded",
                            amount_minor=a3.amount_due_minor, currency="EUR"))  # fmt: skip
    html = manager.get("/admin/campaigns/winter/debtors").get_data(as_text=True)
    states = re.findall(r'data-reference="([^"]+)">.*?data-state="([a-z_]+)"', html)
    assert states == [("A-1", "open"), ("A-2", "disputed"), ("A-3", "paid")]
    only = manager.get("/admin/campaigns/winter/debtors?state=disputed").get_data(as_text=True)
    assert re.findall(r'data-reference="([^"]+)"', only) == ["A-2"]
    assert "1 debtor" in only and "in state disputed" in only
    none = manager.get("/admin/campaigns/winter/debtors?state=promised").get_data(as_text=True)
    assert "No debtor in state promised" in none
