"""The debtor pages as a manager and a viewer meet them: the searchable list, one case's
timeline for disputes and audits, and previews that show what the debtor sees without
counting anything."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from kindly.accounts.models import AuditLog
from kindly.campaigns.models import Debtor
from kindly.messaging.models import Send
from kindly.money import format_minor
from kindly.payments.models import Instalment, Payment, Plan
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.site import artifacts, identity
from kindly.site.models import IdentityCheck
from kindly.tracking import events
from kindly.tracking.models import Event
from tests.support.app import load_campaign
from tests.unit.test_admin import make_user, sign_in


def eur(minor: int) -> str:
    """An amount as the dashboard writes it."""
    return format_minor(minor, "EUR", "en-GB")


T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def manager(client, ctx):
    make_user(ctx)
    assert sign_in(client).status_code == 303
    return client


@pytest.fixture
def viewer(client, ctx):
    make_user(ctx, "viewer@example.org", "viewer")
    assert sign_in(client, "viewer@example.org").status_code == 303
    return client


def a1(session) -> Debtor:
    return session.scalar(select(Debtor).where(Debtor.reference == "A-1"))


def rich_case(ctx) -> str:
    """A-1 with a decision, events out of insertion order, money, a plan, sends and a lock."""
    campaign_id = load_campaign(ctx)
    with ctx.db.session() as session:
        debtor = a1(session)
        rules = save_rules(
            session,
            debtor.campaign,
            parse_rules({"defaults": {"tone": "firm", "channels": ["sms", "email"]}}),
        )
        decide(session, debtor.campaign, rules, dt.date(2026, 11, 1))
        events.record(session, debtor, "clicked", channel="sms", agent="automated")
        events.record(session, debtor, "sent", channel="sms")
        events.record(session, debtor, "viewed", agent="human", data={"gate": "1"})
        session.flush()
        when = {"sent": T0, "clicked": T0 + dt.timedelta(seconds=4),
                "viewed": T0 + dt.timedelta(hours=3)}  # fmt: skip
        for event in session.scalars(select(Event).where(Event.debtor_id == debtor.id)):
            event.occurred_at = when[event.type]
        session.add_all([
            Payment(campaign_id=campaign_id, debtor_id=debtor.id, provider="sandbox",
                    provider_ref="sbx_1", amount_minor=20000, currency="EUR",
                    status="succeeded"),
            Payment(campaign_id=campaign_id, debtor_id=debtor.id, provider="sandbox",
                    provider_ref="sbx_r", amount_minor=-5000, currency="EUR",
                    status="succeeded", kind="refund"),
            Send(campaign_id=campaign_id, debtor_id=debtor.id, step=1, channel="sms",
                 status="sent", address="+4915112345678", attempts=1, sent_at=T0),
            IdentityCheck(debtor_id=debtor.id, failures=5, total_failures=7, locks=1,
                          locked_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)),
        ])  # fmt: skip
        plan = Plan(campaign_id=campaign_id, debtor_id=debtor.id, currency="EUR",
                    total_minor=118456, frequency="monthly", count=2, status="agreed")  # fmt: skip
        session.add(plan)
        session.flush()
        session.add_all([
            Instalment(plan_id=plan.id, seq=1, due_date=dt.date(2026, 12, 1),
                       amount_minor=59228, status="paid"),
            Instalment(plan_id=plan.id, seq=2, due_date=dt.date(2027, 1, 1),
                       amount_minor=59228, status="due"),
        ])  # fmt: skip
        return debtor.token


def test_debtor_list_links_every_case_and_searches_reference_and_name(manager, ctx):
    load_campaign(ctx)
    html = manager.get("/admin/campaigns/winter/debtors").get_data(as_text=True)
    assert "3 debtors" in html
    for ref in ("A-1", "A-2", "A-3"):
        assert f'href="/admin/campaigns/winter/debtors/{ref}"' in html
    found = manager.get("/admin/campaigns/winter/debtors?q=o%27brien").get_data(as_text=True)
    assert re.findall(r'data-reference="([^"]+)"', found) == ["A-2"]
    assert "Siobhán O&#39;Brien" in found
    by_ref = manager.get("/admin/campaigns/winter/debtors?q=a-3").get_data(as_text=True)
    assert re.findall(r'data-reference="([^"]+)"', by_ref) == ["A-3"]
    none = manager.get("/admin/campaigns/winter/debtors?q=100%25").get_data(as_text=True)
    assert "No debtor" in none  # % is a literal, not a wildcard


def test_debtor_list_pages_fifty_at_a_time(manager, ctx):
    rows = "".join(f"P-{i:03},Person{i},EUR,10.00,2026-12-01\n" for i in range(60))
    load_campaign(ctx, "big", "reference,last_name,currency,amount_due,due_date\n" + rows)
    first = manager.get("/admin/campaigns/big/debtors").get_data(as_text=True)
    assert len(re.findall(r"data-reference=", first)) == 50
    assert "Page 1 of 2" in first and 'rel="next"' in first
    second = manager.get("/admin/campaigns/big/debtors?page=2").get_data(as_text=True)
    assert re.findall(r'data-reference="([^"]+)"', second)[0] == "P-050"
    assert len(re.findall(r"data-reference=", second)) == 10


def test_the_campaign_page_links_the_debtors(manager, ctx):
    load_campaign(ctx)
    html = manager.get("/admin/campaigns/winter").get_data(as_text=True)
    assert 'href="/admin/campaigns/winter/debtors"' in html


def test_timeline_shows_decision_events_money_plan_sends_and_lock(manager, ctx):
    token = rich_case(ctx)
    page = manager.get("/admin/campaigns/winter/debtors/A-1")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert token not in html
    assert "Anna Müller" in html and "A-1" in html
    decision = re.search(r'id="decision">(.*?)</table>', html, re.S).group(1)
    assert "firm" in decision and "sms → email" in decision and "v1" in decision
    rows = re.findall(
        r'<tr data-type="(\w+)">.*?<td class="agent agent-\w+">(\w+)</td><td>([^<]*)</td>', html
    )
    assert rows == [("sent", "human", "sms"), ("clicked", "automated", "sms"),
                    ("viewed", "human", "–")]  # fmt: skip
    payments = re.search(r'id="payments">(.*?)</table>', html, re.S).group(1)
    assert eur(20000) in payments and "refund" in payments and eur(-5000) in payments
    assert eur(15000) in re.search(r'id="paid">(.*?)</td>', html).group(1)
    assert "2 monthly instalments" in html
    instalments = re.search(r'id="instalments">(.*?)</table>', html, re.S).group(1)
    assert eur(59228) in instalments and "paid" in instalments and "2027-01-01" in instalments
    sends = re.search(r'id="sends">(.*?)</table>', html, re.S).group(1)
    assert "+4915112345678" in sends  # a manager sees the address a message went to
    identity_box = re.search(r'id="identity">(.*?)</p>', html, re.S).group(1)
    assert "Locked until" in identity_box and "in total: 7" in identity_box
    assert "anna@example.org" in html


def test_viewer_sees_name_and_reference_but_masked_contacts_and_no_previews(viewer, ctx):
    rich_case(ctx)
    page = viewer.get("/admin/campaigns/winter/debtors/A-1")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Anna Müller" in html and "A-1" in html
    assert "anna@example.org" not in html and "a•••@example.org" in html
    assert "+4915112345678" not in html and "Hauptstraße" not in html
    assert "/preview" not in html
    assert viewer.get("/admin/campaigns/winter/debtors/A-1/preview").status_code == 403
    assert viewer.get("/admin/campaigns/winter/debtors/A-1/preview/letter.pdf").status_code == 403


def test_signed_out_and_unknown_cases(client, manager, ctx):
    load_campaign(ctx)
    assert manager.get("/admin/campaigns/winter/debtors/NOPE").status_code == 404
    assert manager.get("/admin/campaigns/other/debtors").status_code == 404
    assert manager.get("/admin/campaigns/winter/debtors/A-1/preview/secret.txt").status_code == 404
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      manager.get("/admin/").get_data(as_text=True)).group(1)  # fmt: skip
    manager.post("/admin/logout", data={"csrf_token": token})
    for path in ("/admin/campaigns/winter/debtors", "/admin/campaigns/winter/debtors/A-1",
                 "/admin/campaigns/winter/debtors/A-1/preview"):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


def test_preview_renders_the_live_microsite_counts_nothing_and_is_audited(manager, ctx):
    token = rich_case(ctx)
    with ctx.db.session() as session:
        before = session.scalar(select(func.count(Event.id)))
    page = manager.get("/admin/campaigns/winter/debtors/A-1/preview")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Preview" in html
    assert token not in html
    assert "1.084,56" in html  # the live balance: 1234.56 owed, 150.00 kept
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'none'" in csp and "connect-src 'none'" in csp
    with ctx.db.session() as session:
        assert session.scalar(select(func.count(Event.id))) == before
        entry = session.scalar(select(AuditLog).where(AuditLog.action == "debtor.preview"))
        assert entry.actor == "manager@example.org"
        assert entry.detail == {"reference": "A-1", "kind": "site"}
        assert identity.locked_until(session, a1(session)) is not None  # the lock is untouched


def test_letter_preview_is_the_stored_file_and_is_audited(manager, ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        stored = artifacts.save(session, ctx.storage, a1(session), "letter", b"%PDF-1.7 letter")
        digest = stored.sha256
    timeline = manager.get("/admin/campaigns/winter/debtors/A-1").get_data(as_text=True)
    assert 'href="/admin/campaigns/winter/debtors/A-1/preview/letter.pdf"' in timeline
    assert digest in timeline  # the exact stored version
    response = manager.get("/admin/campaigns/winter/debtors/A-1/preview/letter.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.get_data() == b"%PDF-1.7 letter"
    site = manager.get("/admin/campaigns/winter/debtors/A-1/preview").get_data(as_text=True)
    assert "/admin/campaigns/winter/debtors/A-1/preview/letter.pdf" in site
    assert manager.get("/admin/campaigns/winter/debtors/A-1/preview/video.mp4").status_code == 404
    with ctx.db.session() as session:
        kinds = [
            e.detail["kind"]
            for e in session.scalars(
                select(AuditLog).where(AuditLog.action == "debtor.preview").order_by(AuditLog.id)
            )
        ]
        assert kinds == ["letter", "site"]
        assert session.scalar(select(func.count(Event.id))) == 0


def test_a_message_whose_worker_was_lost_shows_as_outcome_unknown(manager, ctx):
    campaign_id = load_campaign(ctx)
    now = dt.datetime.now(dt.UTC)
    with ctx.db.session() as session:
        debtor = a1(session)
        session.add_all([
            Send(campaign_id=campaign_id, debtor_id=debtor.id, step=0, channel="email",
                 status="sending", attempts=1, created_at=now - dt.timedelta(minutes=20)),
            Send(campaign_id=campaign_id, debtor_id=debtor.id, step=0, channel="sms",
                 status="sending", attempts=1, created_at=now - dt.timedelta(minutes=1)),
        ])  # fmt: skip
        session.commit()
    html = manager.get("/admin/campaigns/winter/debtors/A-1").get_data(as_text=True)
    sends = re.search(r'id="sends">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r"<td>(email|sms)</td><td>[^<]*</td><td>([^<]*)</td>", sends)
    assert rows == [("email", "outcome unknown"), ("sms", "sending")]  # one still in flight
    assert "it may have arrived" in sends
    campaign = manager.get("/admin/campaigns/winter").get_data(as_text=True)
    notice = re.search(r'id="in-doubt">(.*?)</p>', campaign, re.S).group(1)
    assert notice.startswith("1 message with no known outcome (email 1)")
