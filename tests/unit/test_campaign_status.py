"""Only a live campaign sends: `kindly send`, queued jobs and the API hold every message of a
draft, paused or ended campaign; launch, pause, resume and end are one audited change in the
CLI, the dashboard and the API; a pause is no end for erasure; agreed plans keep running."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from kindly import launch, privacy
from kindly.accounts.models import AuditLog
from kindly.campaigns.models import Campaign, CampaignStatus, Debtor
from kindly.campaigns.service import status_of
from kindly.cli import cli
from kindly.messaging import delivery
from kindly.messaging.models import Send
from kindly.payments.models import Instalment, Payment, Plan
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from tests.support.app import launched, load_campaign
from tests.unit.test_admin import csrf_of, ready_to_launch
from tests.unit.test_api import auth, key_for
from tests.unit.test_payments import csrf, pay_instalment_in_sandbox, token, walk_plan
from workers.send import send_message

AT = "2026-12-01T10:00:00+00:00"  # 11:00 in Berlin on a Tuesday: inside every send window
RULES = {"defaults": {"tone": "firm", "channels": ["email", "sms", "letter"]}}


@pytest.fixture
def runner(ctx, monkeypatch) -> CliRunner:
    """The `kindly` command on the test's data folder, jobs in this process."""
    monkeypatch.setenv("KINDLY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("KINDLY_SECRET_KEY", ctx.settings.secret_key)
    return CliRunner()


def outbox(ctx) -> list[str]:
    return sorted(p.name for p in (ctx.settings.data_dir / "outbox").glob("*"))


def sends(ctx) -> list[tuple[str, str]]:
    with ctx.db.session() as session:
        return [(s.channel, s.status) for s in session.scalars(select(Send).order_by(Send.id))]


def audit(ctx) -> list[tuple[str, str, str, dict]]:
    with ctx.db.session() as session:
        rows = session.scalars(select(AuditLog).order_by(AuditLog.id))
        return [(a.action, a.actor, a.via, a.detail) for a in rows]


def set_status(ctx, wanted: str, slug: str = "winter") -> None:
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
        assert launch.set_status(session, campaign, wanted)[1] == []


def test_kindly_send_sends_nothing_for_a_draft_or_paused_campaign_and_sends_once_live(ctx, runner):
    load_campaign(ctx)
    ready_to_launch(ctx)
    dry = runner.invoke(cli, ["send", "winter", "--dry-run", "--at", AT, "--json"])
    assert dry.exit_code == 0, dry.output
    assert "campaign winter is a draft: nothing sent" in dry.stderr
    preview = json.loads(dry.stdout)
    assert preview["status"] == "draft" and preview["send"] == {}
    assert preview["held"] == {"campaign_draft": 3}
    assert {d["reason"] for d in preview["debtors"]} == {"campaign_draft"}
    anna = next(d for d in preview["debtors"] if d["reference"] == "A-1")
    assert (anna["step"], anna["channel"]) == (0, "email")  # what it would send once live

    draft = runner.invoke(cli, ["send", "winter", "--at", AT])
    assert draft.exit_code == 0, draft.output
    assert "nothing sent" in draft.stderr and "sending nothing; held 3" in draft.stdout
    assert outbox(ctx) == [] and sends(ctx) == []

    assert runner.invoke(cli, ["launch", "winter", "--yes"]).exit_code == 0
    live = runner.invoke(cli, ["send", "winter", "--at", AT])
    assert live.exit_code == 0, live.output
    assert "nothing sent" not in live.output
    assert len([n for n in outbox(ctx) if n.endswith(".eml")]) == 2
    assert sorted(sends(ctx)) == [("email", "outbox"), ("email", "outbox"), ("letter", "print")]

    assert runner.invoke(cli, ["pause", "winter"]).exit_code == 0
    week = "2026-12-08T10:00:00+00:00"  # the next step is due
    paused = runner.invoke(cli, ["send", "winter", "--dry-run", "--at", week])
    assert "campaign winter is paused: nothing sent" in paused.stderr
    assert "would send nothing; held 3" in paused.stdout
    assert paused.stdout.count("held: campaign_paused") == 3
    runner.invoke(cli, ["send", "winter", "--at", week])
    assert len(sends(ctx)) == 3  # nothing more went out


def test_a_job_queued_while_live_sends_nothing_when_it_runs_after_a_pause(ctx):
    load_campaign(ctx)
    launched(ctx)
    at = dt.datetime.fromisoformat(AT)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        decide(session, campaign, save_rules(session, campaign, parse_rules(RULES)), at.date())
    with ctx.db.session() as session:
        planned = [p for p in delivery.plan(session, session.scalar(select(Campaign)), at)
                   if p.status == "send"]  # fmt: skip
    assert {p.reference for p in planned} == {"A-1", "A-2", "A-3"}  # queued while live

    set_status(ctx, "paused")
    for item in planned:  # the jobs run now: each asks the campaign's status again
        assert send_message(item.debtor_id, item.step, item.channel, AT) is None
    assert outbox(ctx) == [] and sends(ctx) == []

    ready_to_launch(ctx)
    set_status(ctx, "live")  # resumed: the same jobs deliver
    statuses = [send_message(p.debtor_id, p.step, p.channel, AT) for p in planned]
    assert sorted(statuses) == ["outbox", "outbox", "print"]


def test_cli_launch_refuses_on_gaps_asks_unless_yes_and_pause_and_end_are_audited(ctx, runner):
    load_campaign(ctx)
    refused = runner.invoke(cli, ["launch", "winter", "--yes"])
    assert refused.exit_code == 1
    assert "winter is not ready to launch: 9 gaps" in refused.stderr
    assert "creditor Northern Water Ltd [*, *]: no creditor address" in refused.stderr
    assert status_of_winter(ctx) == "draft"
    no_gaps_asked = runner.invoke(cli, ["launch", "winter"], input="y\n")
    assert no_gaps_asked.exit_code == 1 and "Launch winter?" not in no_gaps_asked.output

    ready_to_launch(ctx)
    declined = runner.invoke(cli, ["launch", "winter"], input="n\n")
    assert declined.exit_code != 0
    assert "winter: 3 debtors; first channel: email 2, letter 1" in declined.output
    assert status_of_winter(ctx) == "draft"
    accepted = runner.invoke(cli, ["launch", "winter"], input="y\n")
    assert accepted.exit_code == 0 and "winter launched: live" in accepted.output
    assert runner.invoke(cli, ["launch", "winter"]).output == "winter is live already\n"

    assert "winter paused" in runner.invoke(cli, ["pause", "winter"]).output
    resumed = runner.invoke(cli, ["launch", "winter", "--yes"])  # no prompt with --yes
    assert resumed.exit_code == 0 and "Launch winter?" not in resumed.output
    assert "winter resumed: live" in resumed.output
    ended = runner.invoke(cli, ["end", "winter", "--yes"])
    assert ended.exit_code == 0 and status_of_winter(ctx) == "ended"
    again = runner.invoke(cli, ["launch", "winter", "--yes"])
    assert again.exit_code == 1 and "winter has ended" in again.output

    load_campaign(ctx, "spring")
    draft = runner.invoke(cli, ["pause", "spring"])
    assert draft.exit_code == 1 and "spring is a draft: there is nothing to pause" in draft.output
    trail = [
        (action, actor, via, detail.get("before")) for action, actor, via, detail in audit(ctx)
    ]
    assert trail == [
        ("campaign.launch_refused", "operator", "cli", "draft"),
        ("campaign.launch_refused", "operator", "cli", "draft"),
        ("campaign.launch", "operator", "cli", "draft"),
        ("campaign.pause", "operator", "cli", "live"),
        ("campaign.launch", "operator", "cli", "paused"),
        ("campaign.end", "operator", "cli", "live"),
    ]


def status_of_winter(ctx) -> str:
    with ctx.db.session() as session:
        return status_of(
            session, session.scalar(select(Campaign.id).where(Campaign.slug == "winter"))
        )


def test_api_and_dashboard_change_the_status_through_the_same_audited_function(client, ctx):
    from tests.unit.test_admin import make_user, sign_in

    load_campaign(ctx)
    secret = key_for(ctx, "manager")
    url = "/api/v1/campaigns/winter/status"
    refused = client.post(url, headers=auth(secret), json={"status": "live"})
    assert refused.status_code == 409 and len(refused.get_json()["gaps"]) == 9  # 3 creditors
    draft = client.post(url, headers=auth(secret), json={"status": "paused"})
    assert draft.status_code == 409 and "nothing to pause" in draft.get_json()["error"]
    ready_to_launch(ctx)
    assert (
        client.post(url, headers=auth(secret), json={"status": "live"}).get_json()["status"]
        == "live"
    )
    assert (
        client.post(url, headers=auth(secret), json={"status": "paused"}).get_json()["status"]
        == "paused"
    )

    make_user(ctx, "boss@example.org")
    assert sign_in(client, "boss@example.org").status_code == 303
    page = client.get("/admin/campaigns/winter").get_data(as_text=True)
    assert "Paused: nothing is sent, queued and scheduled messages included" in page
    token = csrf_of(client, "/admin/campaigns/winter")
    form = "/admin/campaigns/winter/status"
    assert client.post(form, data={"csrf_token": token, "do": "resume"}).status_code == 303
    assert client.post(form, data={"csrf_token": token, "do": "end"}).status_code == 400
    assert status_of_winter(ctx) == "live"  # ending needs its confirmation ticked
    ended = client.post(form, data={"csrf_token": token, "do": "end", "confirm": "yes"})
    assert ended.status_code == 303 and status_of_winter(ctx) == "ended"
    assert client.post(form, data={"csrf_token": token, "do": "resume"}).status_code == 409
    over = client.post(url, headers=auth(secret), json={"status": "live"})
    assert over.status_code == 409 and over.get_json() == {
        "error": "winter has ended; an ended campaign is not launched or paused again", "gaps": []
    }  # fmt: skip
    trail = [(action, via, detail.get("before")) for action, _, via, detail in audit(ctx)
             if action.startswith("campaign.")]  # fmt: skip
    assert trail == [
        ("campaign.launch_refused", "api", "draft"),
        ("campaign.launch", "api", "draft"),
        ("campaign.pause", "api", "live"),
        ("campaign.launch", "web", "paused"),
        ("campaign.end", "web", "live"),
    ]


def test_the_api_send_of_a_paused_campaign_holds_every_message(client, ctx):
    load_campaign(ctx)
    launched(ctx)
    set_status(ctx, "paused")
    secret = key_for(ctx, "manager")
    sent = client.post("/api/v1/campaigns/winter/send", headers=auth(secret), json={})
    body = sent.get_json()
    assert sent.status_code == 200, body
    assert (body["send"], body["held"], body["jobs"]) == ({}, {"campaign_paused": 3}, 0)
    assert outbox(ctx) == [] and sends(ctx) == []


def test_while_paused_the_debtor_still_agrees_and_pays_and_agreed_instalments_are_charged(
    client, ctx
):
    from workers import daily

    load_campaign(ctx)
    launched(ctx)
    set_status(ctx, "paused")
    tok = token(ctx, "A-1")
    review = walk_plan(client, tok, instalments="3").get_data(as_text=True)
    agreed = client.post(
        f"/s/{tok}/plan", data={"csrf_token": csrf(review), "agree": "1", "instalments": "3"}
    )
    assert agreed.status_code == 303
    pay_instalment_in_sandbox(client, tok)  # the debtor's own payment goes through
    with ctx.db.session() as session:
        second = session.scalar(select(Instalment).where(Instalment.seq == 2))
        second.due_date = dt.datetime.now(dt.UTC).date()
    # the plan is the debtor's own commitment: a pause does not stop its instalments
    summary = daily.collect_payments()
    assert (summary["charged"], summary["succeeded"]) == (1, 1)
    with ctx.db.session() as session:
        assert session.scalar(select(Plan.status)) == "active"
        paid = session.scalars(select(Payment.amount_minor).where(Payment.status == "succeeded"))
        assert sorted(paid) == [41152, 41152]
    assert status_of_winter(ctx) == "paused"


def test_erasure_leaves_a_paused_campaigns_open_cases_and_running_plans_alone(ctx):
    load_campaign(ctx)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        campaign.settings = {"retention_days": 30}
        session.add(CampaignStatus(campaign_id=campaign.id, status="paused", changed_at=long_ago))
        debtors = {d.reference: d for d in session.scalars(select(Debtor))}
        paid = debtors["A-2"]
        session.add(Payment(campaign_id=campaign.id, debtor_id=paid.id, provider="sandbox",
                            provider_ref="sbx_full", amount_minor=paid.amount_due_minor,
                            currency=paid.currency, status="succeeded", created_at=long_ago,
                            updated_at=long_ago))  # fmt: skip
        session.add(Plan(campaign_id=campaign.id, debtor_id=debtors["A-3"].id, currency="EUR",
                         total_minor=4200, frequency="monthly", count=2, status="active",
                         misses=0))  # fmt: skip
    with ctx.db.session() as session:  # paused 400 days ago: only the case paid in full closed
        campaign = session.scalar(select(Campaign))
        due = privacy.closed_cases_due(session, campaign)
        assert [d.reference for d in due] == ["A-2"]
        assert privacy.purge_due(session, campaign, 30) == (
            [], "the campaign is paused: end it first (kindly end winter)"
        )  # fmt: skip
        session.scalar(select(CampaignStatus)).status = "ended"
    with ctx.db.session() as session:  # ended 400 days ago: all closed but the running plan
        campaign = session.scalar(select(Campaign))
        assert [d.reference for d in privacy.closed_cases_due(session, campaign)] == ["A-1", "A-2"]
        due, reason = privacy.purge_due(session, campaign, 30)
        assert reason is None and [d.reference for d in due] == ["A-1", "A-2"]
