"""Messages kept in the outbox folder are `outbox`, never `sent` (security issue 15, item 2)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from kindly.campaigns.models import Campaign
from kindly.errors import ConfigError
from kindly.infra.config import check_production, load_settings
from kindly.messaging import delivery
from kindly.messaging.models import Send
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.tracking.models import Event
from tests.support.app import launched, load_campaign
from tests.unit.test_admin import make_user, sign_in
from workers.queues import Dispatcher
from workers.send import enqueue_sends

AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 in Berlin, a Tuesday
RULES = {"defaults": {"tone": "firm", "channels": ["email", "sms", "letter"]}}


def send_all(ctx, at: dt.datetime = AT) -> dict[str, delivery.Planned]:
    """Decide and deliver the campaign's first step, in this process."""
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        decide(session, campaign, save_rules(session, campaign, parse_rules(RULES)), at.date())
    with ctx.db.session() as session:
        planned = delivery.plan(session, session.scalar(select(Campaign)), at)
    enqueue_sends(Dispatcher(ctx.settings), planned, at)
    return {p.reference: p for p in planned}


def test_an_email_written_to_the_outbox_is_recorded_as_outbox_not_sent(ctx):
    load_campaign(ctx)
    launched(ctx)
    planned = send_all(ctx)
    assert (planned["A-1"].channel, planned["A-2"].channel) == ("email", "email")
    assert len(list((ctx.settings.data_dir / "outbox").glob("*.eml"))) == 2
    with ctx.db.session() as session:
        statuses = {(s.channel, s.status) for s in session.scalars(select(Send))}
        types = list(session.scalars(select(Event.type).where(Event.type.in_(("sent", "outbox")))))
    assert statuses == {("email", "outbox"), ("letter", "print")}
    assert types == ["outbox", "outbox"]
    # the step counts as done: a second run sends nothing again
    send_all(ctx)
    assert len(list((ctx.settings.data_dir / "outbox").glob("*.eml"))) == 2


def test_kindly_stats_counts_outbox_messages_apart_from_sent(ctx):
    load_campaign(ctx)
    launched(ctx)
    send_all(ctx)
    env = {
        "KINDLY_DATA_DIR": str(ctx.settings.data_dir),
        "KINDLY_SECRET_KEY": ctx.settings.secret_key,
    }
    from kindly.cli import cli

    result = CliRunner().invoke(cli, ["stats", "winter", "--json"], env=env)
    assert result.exit_code == 0, result.output
    funnel = json.loads(result.output)["funnel"]
    assert (funnel["sent"], funnel["outbox"]) == (0, 2)


def test_the_campaign_page_says_how_many_messages_only_reached_the_outbox(client, ctx):
    load_campaign(ctx)
    launched(ctx)
    send_all(ctx)
    make_user(ctx)
    assert sign_in(client).status_code == 303
    page = client.get("/admin/campaigns/winter").get_data(as_text=True)
    notice = re.search(r'<p class="notice warn" role="status" id="outbox">(.*?)</p>', page, re.S)
    assert notice and notice.group(1).startswith("2 messages only written to the outbox folder")
    assert "email 2" in notice.group(1)


def production(tmp_path, **extra: str) -> dict[str, str]:
    env = {
        "KINDLY_ENV": "production",
        "KINDLY_SECRET_KEY": "production-secret-key-0123456789",
        "KINDLY_DATABASE_URL": f"sqlite:///{tmp_path / 'kindly.db'}",
        "KINDLY_BASE_URL": "https://pay.example.org",
        "KINDLY_PAYMENTS": "none",
    }
    env.update(extra)
    return {name: value for name, value in env.items() if value}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "production without KINDLY_SMTP_URL and KINDLY_SMS_WEBHOOK_URL would write"),
        ({"KINDLY_SMTP_URL": "smtp://mail"}, "production without KINDLY_SMS_WEBHOOK_URL would"),
        ({"KINDLY_OUTBOX": "on"}, "KINDLY_OUTBOX=on in production needs KINDLY_DATA_DIR"),
        ({"KINDLY_OUTBOX": "on", "KINDLY_DATA_DIR": "var"}, "needs KINDLY_DATA_DIR set to the"),
    ],
)
def test_production_refuses_an_outbox_not_chosen_or_not_on_a_volume(tmp_path, extra, message):
    env = production(tmp_path, **extra)
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_production(load_settings(env), env)


@pytest.mark.parametrize(
    "extra",
    [
        {"KINDLY_SMTP_URL": "smtp://mail", "KINDLY_SMS_WEBHOOK_URL": "https://sms.example.org"},
        {"KINDLY_OUTBOX": "on"},  # with KINDLY_DATA_DIR, an absolute path, below
    ],
)
def test_production_starts_with_gateways_or_an_explicit_outbox_on_a_volume(tmp_path, extra):
    env = production(tmp_path, KINDLY_DATA_DIR=str(tmp_path / "var"), **extra)
    check_production(load_settings(env), env)


def test_kindly_outbox_takes_on_or_off_only(tmp_path):
    with pytest.raises(ConfigError, match="KINDLY_OUTBOX must be on or off, got 'maybe'"):
        load_settings({"KINDLY_DATA_DIR": str(tmp_path), "KINDLY_OUTBOX": "maybe"})
