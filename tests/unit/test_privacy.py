"""GDPR: a debtor's data exported on request, erased on request, purged after retention."""

from __future__ import annotations

import datetime as dt
import json

from click.testing import CliRunner
from sqlalchemy import func, select

from kindly.accounts.models import AuditLog
from kindly.campaigns.models import Campaign, CampaignStatus, Debtor
from kindly.cli import cli
from kindly.payments.models import Payment
from kindly.reporting.metrics import campaign_stats
from kindly.site.models import Artifact
from kindly.tracking import events
from kindly.tracking.models import Event
from tests.support.app import load_campaign
from tests.unit.test_api import auth, conforms, key_for
from web.api import common


def _with_history(ctx) -> str:
    """A-1 viewed, wrote a message, paid part; has a stored site. Returns the old token."""
    campaign_id = load_campaign(ctx)
    with ctx.db.session() as session:
        a1 = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        events.record(session, a1, "viewed")
        events.record(session, a1, "contact", channel="web", data={
            "topic": "question", "message": "Ich bin Anna Müller, ruf mich an", "phone": "+4915112345678"})  # fmt: skip
        events.record(session, a1, "paid")
        session.add(Payment(campaign_id=campaign_id, debtor_id=a1.id, provider="sandbox",
                            provider_ref="sbx_1", amount_minor=50000, currency="EUR",
                            status="succeeded", notes="paid by Anna Müller"))  # fmt: skip
        key = "campaigns/winter/A-1/site.html"
        ctx.storage.put(key, "<h1>Hallo Anna Müller</h1>".encode(), "text/html")
        session.add(Artifact(debtor_id=a1.id, kind="site", key=key, sha256="0" * 64, size=10,
                             content_type="text/html"))  # fmt: skip
        return a1.token


def test_manager_exports_everything_held_about_one_debtor(client, ctx):
    _with_history(ctx)
    secret = key_for(ctx, "manager")
    response = client.get("/api/v1/campaigns/winter/debtors/A-1/export", headers=auth(secret))
    assert response.status_code == 200
    conforms(response, "/campaigns/{slug}/debtors/{reference}/export", "get")
    data = response.get_json()
    assert data["debtor"]["email"] == "anna@example.org"
    assert data["debtor"]["birth_date"] is None and data["debtor"]["city"] == "Berlin"
    assert [e["type"] for e in data["events"]] == ["viewed", "contact", "paid"]
    assert data["payments"][0]["amount_minor"] == 50000
    assert data["artifacts"][0]["key"] == "campaigns/winter/A-1/site.html"
    missing = client.get("/api/v1/campaigns/winter/debtors/NOPE/export", headers=auth(secret))
    assert missing.status_code == 404
    conforms(missing, "/campaigns/{slug}/debtors/{reference}/export", "get")
    viewer = key_for(ctx, "viewer")
    refused = client.get("/api/v1/campaigns/winter/debtors/A-1/export", headers=auth(viewer))
    assert refused.status_code == 403
    with ctx.db.session() as session:
        assert session.scalar(select(AuditLog).where(AuditLog.action == "privacy.export"))


def test_admin_erases_a_debtor_but_the_numbers_stay(client, ctx):
    old_token = _with_history(ctx)
    assert client.get(f"/s/{old_token}").status_code in (200, 302, 303)
    with ctx.db.session() as session:
        before = campaign_stats(session, session.scalar(select(Campaign)))
        events_before = session.scalar(select(func.count(Event.id)))
    manager = key_for(ctx, "manager")
    url = "/api/v1/campaigns/winter/debtors/A-1/erase"
    assert client.post(url, headers=auth(manager)).status_code == 403
    admin = key_for(ctx, "admin")
    response = client.post(url, headers=auth(admin))
    assert response.status_code == 200
    conforms(response, "/campaigns/{slug}/debtors/{reference}/erase", "post")
    assert response.get_json()["artifacts_deleted"] == 1
    # the link is dead, the stored site is gone
    assert client.get(f"/s/{old_token}").status_code == 404
    assert not ctx.storage.exists("campaigns/winter/A-1/site.html")
    exported = client.get(
        "/api/v1/campaigns/winter/debtors/A-1/export", headers=auth(admin)
    ).get_json()
    text = json.dumps(exported, ensure_ascii=False)
    for personal in ("Anna", "Müller", "anna@example.org", "4915112345678", "Hauptstraße",
                     "10115", "Stromliefervertrag"):  # fmt: skip
        assert personal not in text, personal
    assert exported["debtor"]["last_name"] == "erased"
    contact = next(e for e in exported["events"] if e["type"] == "contact")
    assert contact["data"] == {"topic": "question"}
    with ctx.db.session() as session:
        after = campaign_stats(session, session.scalar(select(Campaign)))
        assert session.scalar(select(func.count(Event.id))) == events_before
        entry = session.scalar(select(AuditLog).where(AuditLog.action == "privacy.erase"))
        assert (entry.via, entry.actor, entry.detail["reference"]) == (
            "api",
            "admin@example.org",
            "A-1",
        )
    before.pop("artifacts"), after.pop("artifacts")
    assert after == before  # funnel, owed, collected: unchanged


def test_cli_export_erase_and_purge(ctx, monkeypatch, tmp_path):
    monkeypatch.setenv("KINDLY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("KINDLY_SECRET_KEY", "test-secret-key-0123456789")
    _with_history(ctx)
    runner = CliRunner()
    exported = runner.invoke(cli, ["privacy", "export", "winter", "A-2"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["debtor"]["first_name"] == "Siobhán"
    erased = runner.invoke(cli, ["privacy", "erase", "winter", "A-2"])
    assert erased.exit_code == 0 and "erased A-2" in erased.output
    assert runner.invoke(cli, ["privacy", "erase", "winter", "Z-9"]).exit_code != 0

    fresh = runner.invoke(cli, ["privacy", "purge", "winter", "--older-than", "30"])
    assert "nothing to purge" in fresh.output
    with ctx.db.session() as session:  # paused 40 days ago: a pause is not an end
        campaign = session.scalar(select(Campaign))
        session.add(CampaignStatus(campaign_id=campaign.id, status="paused",
                                   changed_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40)))  # fmt: skip
    paused = runner.invoke(cli, ["privacy", "purge", "winter", "--older-than", "30", "--yes"])
    assert "the campaign is paused: end it first (kindly end winter)" in paused.output
    with ctx.db.session() as session:  # ended 40 days ago
        session.scalar(select(CampaignStatus)).status = "ended"
    dry = runner.invoke(cli, ["privacy", "purge", "winter", "--older-than", "30"])
    assert "dry run: would erase 2 debtors" in dry.output
    with ctx.db.session() as session:
        assert session.scalar(select(Debtor.first_name).where(Debtor.reference == "A-1")) == "Anna"
    done = runner.invoke(cli, ["privacy", "purge", "winter", "--older-than", "30", "--yes"])
    assert "erased 2 debtors" in done.output, done.output
    with ctx.db.session() as session:
        names = session.scalars(select(Debtor.last_name)).all()
        assert set(names) == {"erased"}
        assert session.scalar(select(func.sum(Debtor.amount_due_minor))) == 123456 + 8990 + 4200
        actions = session.scalars(select(AuditLog.action)).all()
        assert {"privacy.export", "privacy.erase", "privacy.purge"} <= set(actions)


def test_live_campaigns_are_not_purged(ctx):
    from kindly import privacy

    load_campaign(ctx)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        session.add(CampaignStatus(campaign_id=campaign.id, status="live",
                                   changed_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))  # fmt: skip
        session.flush()
        due, reason = privacy.purge_due(session, campaign, 1)
        assert due == [] and "live" in reason


def _paid_in_full(session, reference: str, days_ago: int) -> None:
    debtor = session.scalar(select(Debtor).where(Debtor.reference == reference))
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    session.add(Payment(campaign_id=debtor.campaign_id, debtor_id=debtor.id, provider="sandbox",
                        provider_ref=f"sbx_full_{reference}", amount_minor=debtor.amount_due_minor,
                        currency=debtor.currency, status="succeeded", created_at=when,
                        updated_at=when))  # fmt: skip


def test_retention_erases_cases_closed_long_enough_ago_and_keeps_the_numbers(ctx, monkeypatch):
    monkeypatch.setenv("KINDLY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("KINDLY_SECRET_KEY", "test-secret-key-0123456789")
    load_campaign(ctx)
    runner = CliRunner()
    with ctx.db.session() as session:  # live, and no retention period yet: nothing is due
        campaign = session.scalar(select(Campaign))
        session.add(CampaignStatus(campaign_id=campaign.id, status="live",
                                   changed_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=90)))  # fmt: skip
        _paid_in_full(session, "A-1", days_ago=40)  # closed 40 days ago
        _paid_in_full(session, "A-2", days_ago=10)  # closed 10 days ago; A-3 still open
    assert "nothing to purge" in runner.invoke(cli, ["purge"]).output
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        campaign.settings = {**(campaign.settings or {}), "retention_days": 30}
        before = campaign_stats(session, campaign)

    dry = runner.invoke(cli, ["purge"])
    assert "dry run: would erase 1 debtors of winter" in dry.output, dry.output
    with ctx.db.session() as session:
        assert session.scalar(select(Debtor.last_name).where(Debtor.reference == "A-1")) == "Müller"

    done = runner.invoke(cli, ["purge", "--yes"])
    assert done.exit_code == 0 and "erased 1 debtors of winter" in done.output, done.output
    with ctx.db.session() as session:
        names = dict(session.execute(select(Debtor.reference, Debtor.last_name)).all())
        assert names == {"A-1": "erased", "A-2": "O'Brien", "A-3": "D'Angelo"}
        campaign = session.scalar(select(Campaign))
        after = campaign_stats(session, campaign)
        assert after["collected"] == before["collected"] and after["debtors"] == 3
        entry = session.scalars(
            select(AuditLog).where(AuditLog.action == "privacy.retention")
        ).one()
        assert entry.campaign_id == campaign.id
    assert "nothing to purge" in runner.invoke(cli, ["purge", "--yes"]).output  # once only

    with ctx.db.session() as session:  # paused 40 days ago: a pause closes no case
        session.get(CampaignStatus, campaign.id).status = "paused"
        session.get(CampaignStatus, campaign.id).changed_at = dt.datetime.now(
            dt.UTC
        ) - dt.timedelta(days=40)
    assert "nothing to purge" in runner.invoke(cli, ["purge", "--yes"]).output
    with ctx.db.session() as session:
        names = dict(session.execute(select(Debtor.reference, Debtor.last_name)).all())
        assert names == {"A-1": "erased", "A-2": "O'Brien", "A-3": "D'Angelo"}
        session.get(CampaignStatus, campaign.id).status = "ended"  # ended 40 days ago
    assert "erased 2 debtors of winter" in runner.invoke(cli, ["purge", "--yes"]).output


def test_retention_days_are_checked_in_the_settings():
    from kindly.site.identity import validate_site_settings

    assert validate_site_settings({"retention_days": 365}) == []
    assert validate_site_settings({"retention_days": 0}) == [
        "retention_days must be a whole number from 1 to 3650"
    ]


def teardown_function():
    common.forget_rate_limits()


def test_erasing_removes_the_record_an_outage_would_serve_the_link_from(ctx):
    from kindly import privacy
    from kindly.site import links
    from workers.jobs import render_debtor

    load_campaign(ctx)
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-2"))
        debtor_id, token = debtor.id, debtor.token
    render_debtor(debtor_id, ["site"])
    record = links.find(ctx.storage, token)
    assert record is not None and record.debtor_id == debtor_id and record.lang == "en"
    assert token not in links.record_key(token)  # storage keys never carry the token
    with ctx.db.session() as session:
        privacy.erase_debtor(session, session.get(Debtor, debtor_id), ctx.storage)
    assert links.find(ctx.storage, token) is None
