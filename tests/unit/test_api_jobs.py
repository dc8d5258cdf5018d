"""Rendering, sending and a case's timeline through the API."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.messaging.models import Send
from kindly.site.models import Artifact
from kindly.tracking import events
from kindly.tracking.models import Event
from tests.support.app import load_campaign
from tests.unit.test_admin import audit_actions
from tests.unit.test_api import auth, key_for


def test_render_through_the_api_stores_every_debtors_page_and_letter(client, ctx):
    load_campaign(ctx)
    secret = key_for(ctx, "manager")
    bad = client.post(
        "/api/v1/campaigns/winter/render", headers=auth(secret), json={"kinds": ["poster"]}
    )
    assert bad.status_code == 400
    done = client.post(
        "/api/v1/campaigns/winter/render", headers=auth(secret), json={"kinds": ["site", "letter"]}
    )
    assert done.status_code == 202
    assert done.get_json() == {
        "campaign": "winter",
        "debtors": 3,
        "jobs": {"finished": 3},
        "failed": [],
    }
    with ctx.db.session() as session:
        assert sorted(session.scalars(select(Artifact.kind))) == ["letter"] * 3 + ["site"] * 3
    assert audit_actions(ctx)[-1] == "campaign.render"

    def letters() -> dict[str, str]:
        with ctx.db.session() as session:
            return dict(session.execute(select(Artifact.key, Artifact.inputs)
                                        .where(Artifact.kind == "letter")).all())  # fmt: skip

    stored = letters()
    assert None not in stored.values()
    assert client.post("/api/v1/campaigns/winter/render", headers=auth(secret),
                       json={"kinds": ["letter"], "force": "yes"}).status_code == 400  # fmt: skip
    again = client.post("/api/v1/campaigns/winter/render", headers=auth(secret),
                        json={"kinds": ["letter"], "force": True})  # fmt: skip
    assert again.status_code == 202 and again.get_json()["jobs"] == {"finished": 3}
    assert letters() == stored  # same inputs, rendered again: the same fingerprints


def test_send_dry_run_through_the_api_says_what_would_go_and_sends_nothing(client, ctx):
    load_campaign(ctx)
    secret = key_for(ctx, "manager")
    answer = client.post(
        "/api/v1/campaigns/winter/send", headers=auth(secret), json={"dry_run": True}
    )
    body = answer.get_json()
    assert answer.status_code == 200 and body["dry_run"] is True and body["jobs"] == 0
    assert sum(body["send"].values()) + sum(body["held"].values()) == 3
    assert (ctx.settings.data_dir / "outbox").exists() is False or not any(
        (ctx.settings.data_dir / "outbox").iterdir()
    )


def test_the_send_answer_counts_messages_whose_outcome_is_unknown(client, ctx):
    campaign_id = load_campaign(ctx)
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-3"))
        session.add(Send(campaign_id=campaign_id, debtor_id=debtor.id, step=0, channel="sms",
                         status="sending", attempts=1,
                         created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)))  # fmt: skip
        session.commit()
    secret = key_for(ctx, "manager")
    answer = client.post(
        "/api/v1/campaigns/winter/send", headers=auth(secret), json={"dry_run": True}
    )
    assert answer.status_code == 200 and answer.get_json()["in_doubt"] == {"sms": 1}


def test_scheduling_without_redis_is_refused_before_anything_is_sent(client, ctx):
    load_campaign(ctx)
    secret = key_for(ctx, "manager")
    answer = client.post(
        "/api/v1/campaigns/winter/send", headers=auth(secret), json={"schedule": True}
    )
    assert answer.status_code == 400
    assert "KINDLY_REDIS_URL" in answer.get_json()["error"]
    outbox = ctx.settings.data_dir / "outbox"
    assert not outbox.exists() or not any(outbox.rglob("*.*"))
    with ctx.db.session() as session:
        assert not session.scalars(select(Event).where(Event.type == "sent")).all()


def test_timeline_is_for_managers_and_lists_events_with_their_agent(client, ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        a1 = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        events.record(session, a1, "opened", agent="prefetch", channel="email")
        events.record(session, a1, "viewed", agent="human", channel="web")
    viewer = key_for(ctx, "viewer", "viewer@example.org")
    assert (
        client.get(
            "/api/v1/campaigns/winter/debtors/A-1/timeline", headers=auth(viewer)
        ).status_code
        == 403
    )
    manager = key_for(ctx, "manager")
    body = client.get(
        "/api/v1/campaigns/winter/debtors/A-1/timeline", headers=auth(manager)
    ).get_json()
    assert [(e["type"], e["agent"]) for e in body["events"]] == [
        ("opened", "prefetch"),
        ("viewed", "human"),
    ]
    assert body["payments"] == [] and body["reference"] == "A-1"
    assert (
        client.get(
            "/api/v1/campaigns/winter/debtors/NOPE/timeline", headers=auth(manager)
        ).status_code
        == 404
    )
