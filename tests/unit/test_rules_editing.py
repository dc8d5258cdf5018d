"""Rules are edited through the API and the dashboard with the same validation as the CLI."""

from __future__ import annotations

import copy

from sqlalchemy import select

from kindly.campaigns.models import Debtor
from tests.support.app import load_campaign
from tests.unit.test_admin import audit_actions, csrf_of, make_user, sign_in
from tests.unit.test_api import auth, key_for
from tests.unit.test_rules import RULES as DOCUMENT

BROKEN = copy.deepcopy(DOCUMENT)
BROKEN["segments"][0]["tone"] = "shouty"
BROKEN["segments"][1]["send_window"] = {"start": "21:00", "end": "09:00"}


def test_api_reads_refuses_a_broken_document_and_saves_a_good_one(client, ctx):
    load_campaign(ctx)
    secret = key_for(ctx, "manager")
    assert client.get("/api/v1/campaigns/winter/rules", headers=auth(secret)).get_json() == {
        "version": 0, "document": {},
    }  # fmt: skip
    refused = client.put("/api/v1/campaigns/winter/rules", headers=auth(secret), json=BROKEN)
    problems = refused.get_json()["problems"]
    assert refused.status_code == 422 and len(problems) == 2
    assert any("shouty" in p for p in problems) and any("21:00" in p for p in problems)
    saved = client.put("/api/v1/campaigns/winter/rules", headers=auth(secret), json=DOCUMENT)
    assert saved.status_code == 200
    assert saved.get_json()["version"] == 1 and sum(saved.get_json()["segments"].values()) == 3
    assert (
        client.get("/api/v1/campaigns/winter/rules", headers=auth(secret)).get_json()["version"]
        == 1
    )
    viewer = key_for(ctx, "viewer", "viewer@example.org")
    assert (
        client.put(
            "/api/v1/campaigns/winter/rules", headers=auth(viewer), json=DOCUMENT
        ).status_code
        == 403
    )
    assert audit_actions(ctx)[-1] == "rules.change"


def test_dashboard_lists_every_problem_then_saves_and_decides(client, ctx):
    import json

    load_campaign(ctx)
    make_user(ctx)
    sign_in(client)
    token = csrf_of(client, "/admin/campaigns/winter/rules")
    bad = client.post(
        "/admin/campaigns/winter/rules", data={"csrf_token": token, "document": json.dumps(BROKEN)}
    )
    page = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "Nothing was saved: the rules have 2 problem(s)" in page
    good = client.post(
        "/admin/campaigns/winter/rules",
        data={"csrf_token": token, "document": json.dumps(DOCUMENT)},
    )
    assert good.status_code == 303
    assert "Saved as version 1; 3 debtors decided" in client.get(good.headers["Location"]).get_data(
        as_text=True
    )
    with ctx.db.session() as session:
        assert {d.segment for d in session.scalars(select(Debtor))} <= {
            "default",
            "student",
            "long-overdue",
            "risky",
        }
