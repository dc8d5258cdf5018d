"""The JSON API as an integrator's CRM calls it: keys, roles, import, stats, exports, schema."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from sqlalchemy import select

from kindly.accounts import users
from kindly.accounts.models import ApiToken, AuditLog
from kindly.campaigns.models import Campaign, Debtor
from kindly.payments.models import Payment
from kindly.tracking import events
from tests.support.app import PORTFOLIO, load_campaign
from web.api import OPENAPI, common

SPEC = json.loads(OPENAPI.read_text())
PASSWORD = "correct horse battery staple"


def key_for(ctx, role: str, email: str | None = None) -> str:
    with ctx.db.session() as session:
        user = users.create_user(session, email or f"{role}@example.org", PASSWORD, role)
        _, secret = users.issue_token(session, user, "crm")
    return secret


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def conforms(response, path: str, method: str) -> None:
    """The status is documented for the operation and the body matches its schema."""
    operation = SPEC["paths"][path][method]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method} {path}: {response.status_code} not documented"
    while "$ref" in documented:
        documented = SPEC["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
    schema = dict(documented["content"]["application/json"]["schema"])
    schema["components"] = SPEC["components"]
    Draft202012Validator(schema).validate(response.get_json())


@pytest.fixture(autouse=True)
def _fresh_rate_windows():
    common.forget_rate_limits()
    yield
    common.forget_rate_limits()


def test_the_openapi_document_is_valid_and_served(client, ctx):
    validate_spec(SPEC)
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == SPEC


def test_every_route_refuses_a_missing_a_wrong_and_a_revoked_key(client, ctx):
    load_campaign(ctx)
    secret = key_for(ctx, "admin")
    with ctx.db.session() as session:
        users.revoke_token(session, session.scalar(select(ApiToken)))
    routes = [
        ("get", "/api/v1/campaigns"),
        ("post", "/api/v1/campaigns"),
        ("get", "/api/v1/campaigns/winter"),
        ("post", "/api/v1/campaigns/winter/portfolio"),
        ("post", "/api/v1/campaigns/winter/status"),
        ("get", "/api/v1/campaigns/winter/check"),
        ("post", "/api/v1/campaigns/winter/render"),
        ("post", "/api/v1/campaigns/winter/send"),
        ("get", "/api/v1/campaigns/winter/debtors/A-1/timeline"),
        ("get", "/api/v1/campaigns/winter/rules"),
        ("put", "/api/v1/campaigns/winter/rules"),
        ("get", "/api/v1/campaigns/winter/stats"),
        ("get", "/api/v1/campaigns/winter/debtors"),
        ("get", "/api/v1/campaigns/winter/events"),
        ("get", "/api/v1/campaigns/winter/debtors/A-1/export"),
        ("post", "/api/v1/campaigns/winter/debtors/A-1/erase"),
        ("get", "/api/v1/campaigns/winter/report.pdf"),
        ("get", "/api/v1/campaigns/winter/inbox"),
        ("post", "/api/v1/campaigns/winter/inbox/1/reply"),
        ("get", "/api/v1/webhooks"),
        ("post", "/api/v1/webhooks"),
        ("delete", "/api/v1/webhooks/1"),
        ("get", "/api/v1/creditors"),
        ("get", "/api/v1/creditors/x"),
        ("put", "/api/v1/creditors/x"),
        ("post", "/api/v1/bank/statements"),
        ("get", "/api/v1/bank/unmatched"),
        ("post", "/api/v1/bank/entries/1/assign"),
        ("post", "/api/v1/campaigns/winter/debtors/A-1/payments"),
        ("post", "/api/v1/campaigns/winter/payments/1/reverse"),
        ("get", "/api/v1/campaigns/winter/ledger"),
        ("get", "/api/v1/campaigns/winter/survey"),
        ("get", "/api/v1/nothing/here"),
    ]
    documented = {
        (
            m,
            "/api/v1"
            + p.replace("{slug}", "winter")
            .replace("{reference}", "A-1")
            .replace("{id}", "1")
            .replace("{name}", "x"),
        )
        for p, ops in SPEC["paths"].items()
        for m in ops
        if m in ("get", "post", "put") and p != "/openapi.json"
    }
    assert documented <= set(routes)
    for headers in ({}, auth("kly_" + "x" * 43), auth(secret), {"Authorization": "Basic abc"}):
        for method, path in routes:
            response = getattr(client, method)(path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "error" in response.get_json()
    with ctx.db.session() as session:
        assert session.scalar(select(Campaign).where(Campaign.slug != "winter")) is None


def test_a_session_cookie_does_not_open_the_api(client, ctx):
    from tests.unit.test_admin import make_user, sign_in

    make_user(ctx)
    sign_in(client)
    assert client.get("/admin/").status_code == 200
    assert client.get("/api/v1/campaigns").status_code == 401


def test_campaigns_create_import_and_list(client, ctx):
    secret = key_for(ctx, "manager")
    created = client.post(
        "/api/v1/campaigns", headers=auth(secret), json={"slug": "crm-1", "name": "From the CRM"}
    )
    assert created.status_code == 201
    conforms(created, "/campaigns", "post")
    imported = client.post(
        "/api/v1/campaigns/crm-1/portfolio",
        headers=auth(secret),
        data=PORTFOLIO.encode(),
        content_type="text/csv",
    )
    assert imported.status_code == 200, imported.get_json()
    conforms(imported, "/campaigns/{slug}/portfolio", "post")
    assert imported.get_json()["created"] == 3
    listed = client.get("/api/v1/campaigns", headers=auth(secret))
    conforms(listed, "/campaigns", "get")
    [campaign] = listed.get_json()["campaigns"]
    assert campaign["debtors"] == 3
    assert campaign["owed"] == {"EUR": "1276.56", "GBP": "89.90"}
    assert campaign["status"] == "draft"
    with ctx.db.session() as session:
        entries = session.execute(select(AuditLog.action, AuditLog.via, AuditLog.actor)).all()
    assert ("portfolio.import", "api", "manager@example.org") in entries
    assert ("campaign.create", "api", "manager@example.org") in entries


def test_json_import_with_a_bad_row_writes_nothing_and_names_the_cell(client, ctx):
    load_campaign(ctx)
    secret = key_for(ctx, "manager")
    rows = [
        {
            "reference": "J-1",
            "last_name": "Ok",
            "currency": "EUR",
            "amount_due": "5.00",
            "due_date": "2026-12-01",
        },
        {
            "reference": "J-2",
            "last_name": "Bad",
            "currency": "EUR",
            "amount_due": "5.001",
            "due_date": "2026-12-01",
        },
    ]
    response = client.post("/api/v1/campaigns/winter/portfolio", headers=auth(secret), json=rows)
    assert response.status_code == 422
    conforms(response, "/campaigns/{slug}/portfolio", "post")
    [error] = response.get_json()["errors"]
    assert (error["row"], error["column"]) == (2, "amount_due")
    with ctx.db.session() as session:
        assert session.scalar(select(Debtor).where(Debtor.reference == "J-1")) is None
    skipped = client.post(
        "/api/v1/campaigns/winter/portfolio?skip_invalid=true", headers=auth(secret), json=rows
    )
    assert skipped.status_code == 200
    assert (skipped.get_json()["created"], skipped.get_json()["rejected"]) == (1, 1)


def test_viewer_key_reads_but_cannot_write_or_export_debtors(client, ctx):
    load_campaign(ctx)
    secret = key_for(ctx, "viewer")
    assert client.get("/api/v1/campaigns/winter", headers=auth(secret)).status_code == 200
    refused = [
        client.post("/api/v1/campaigns", headers=auth(secret), json={"slug": "nope"}),
        client.post(
            "/api/v1/campaigns/winter/portfolio",
            headers=auth(secret),
            data=PORTFOLIO.encode(),
            content_type="text/csv",
        ),
        client.post(
            "/api/v1/campaigns/winter/status", headers=auth(secret), json={"status": "live"}
        ),
        client.get("/api/v1/campaigns/winter/debtors", headers=auth(secret)),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    with ctx.db.session() as session:
        assert session.scalar(select(Campaign).where(Campaign.slug == "nope")) is None


def test_stats_match_the_cli_keys_and_count_people_apart(client, ctx):
    campaign_id = load_campaign(ctx)
    with ctx.db.session() as session:
        a1 = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        events.record(session, a1, "viewed")
        events.record(session, a1, "opened", agent="automated")
        events.record(session, a1, "paid")
        session.add(
            Payment(
                campaign_id=campaign_id,
                debtor_id=a1.id,
                provider="sandbox",
                provider_ref="sbx_1",
                amount_minor=123456,
                currency="EUR",
                status="succeeded",
            )
        )
    secret = key_for(ctx, "viewer")
    response = client.get("/api/v1/campaigns/winter/stats", headers=auth(secret))
    conforms(response, "/campaigns/{slug}/stats", "get")
    data = response.get_json()
    assert data["funnel"]["viewed"] == 1
    assert (data["funnel"]["opened"], data["funnel_raw"]["opened"]) == (0, 1)
    assert data["collected"] == {"EUR": "1234.56"}
    assert data["funnel"]["collected"] == {"EUR": "1234.56"}
    cei = next(k for k in data["kpis"] if (k["key"], k["currency"]) == ("cei", "EUR"))
    assert round(cei["value"], 1) == 96.7  # 1234.56 of 1276.56


def test_debtor_export_pages_with_a_cursor(client, ctx):
    load_campaign(ctx)
    secret = key_for(ctx, "manager")
    first = client.get("/api/v1/campaigns/winter/debtors?limit=2", headers=auth(secret))
    conforms(first, "/campaigns/{slug}/debtors", "get")
    page = first.get_json()
    assert [d["reference"] for d in page["debtors"]] == ["A-1", "A-2"]
    assert page["debtors"][0]["site_url"].startswith("http://127.0.0.1:5000/s/")
    rest = client.get(
        f"/api/v1/campaigns/winter/debtors?limit=2&cursor={page['next_cursor']}",
        headers=auth(secret),
    ).get_json()
    assert [d["reference"] for d in rest["debtors"]] == ["A-3"]
    assert rest["next_cursor"] is None


def test_events_export_since_a_cursor(client, ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        for debtor in session.scalars(select(Debtor).order_by(Debtor.reference)):
            events.record(session, debtor, "sent", channel="email")
    secret = key_for(ctx, "viewer")
    first = client.get("/api/v1/campaigns/winter/events?limit=2", headers=auth(secret))
    conforms(first, "/campaigns/{slug}/events", "get")
    page = first.get_json()
    assert [e["reference"] for e in page["events"]] == ["A-1", "A-2"]
    more = client.get(
        f"/api/v1/campaigns/winter/events?since={page['next_cursor']}", headers=auth(secret)
    ).get_json()
    assert [e["reference"] for e in more["events"]] == ["A-3"]


def test_malformed_requests_get_documented_4xx_never_500(client, ctx):
    load_campaign(ctx)
    secret = key_for(ctx, "admin")
    cases = [
        ("post", "/campaigns", "/api/v1/campaigns", {"data": "nope", "content_type": "text/plain"}),
        ("post", "/campaigns", "/api/v1/campaigns", {"json": {"slug": "BAD SLUG"}}),
        ("post", "/campaigns", "/api/v1/campaigns", {"json": {"slug": "ok", "name": 5}}),
        ("post", "/campaigns", "/api/v1/campaigns", {"json": {"slug": "ok", "default_locale": []}}),
        ("post", "/campaigns", "/api/v1/campaigns", {"json": {"slug": "winter"}}),
        ("post", "/campaigns", "/api/v1/campaigns", {"json": ["slug"]}),
        ("get", "/campaigns/{slug}", "/api/v1/campaigns/none", {}),
        (
            "post",
            "/campaigns/{slug}/portfolio",
            "/api/v1/campaigns/winter/portfolio",
            {"data": b"\xff\xfe", "content_type": "text/csv"},
        ),
        (
            "post",
            "/campaigns/{slug}/portfolio",
            "/api/v1/campaigns/winter/portfolio",
            {"data": "{}", "content_type": "application/json"},
        ),
        (
            "post",
            "/campaigns/{slug}/portfolio",
            "/api/v1/campaigns/winter/portfolio",
            {"data": "x", "content_type": "application/xml"},
        ),
        (
            "post",
            "/campaigns/{slug}/portfolio",
            "/api/v1/campaigns/winter/portfolio?skip_invalid=1",
            {"data": "x", "content_type": "text/csv"},
        ),
        (
            "post",
            "/campaigns/{slug}/portfolio",
            "/api/v1/campaigns/none/portfolio",
            {"data": PORTFOLIO, "content_type": "text/csv"},
        ),
        ("post", "/campaigns/{slug}/status", "/api/v1/campaigns/winter/status", {"json": {}}),
        ("get", "/campaigns/{slug}/debtors", "/api/v1/campaigns/winter/debtors?limit=0", {}),
        ("get", "/campaigns/{slug}/debtors", "/api/v1/campaigns/winter/debtors?cursor=-1", {}),
        ("get", "/campaigns/{slug}/events", "/api/v1/campaigns/winter/events?since=abc", {}),
        ("get", "/campaigns/{slug}/events", "/api/v1/campaigns/winter/events?limit=99999", {}),
    ]
    for method, spec_path, url, kwargs in cases:
        response = getattr(client, method)(url, headers=auth(secret), **kwargs)
        assert 400 <= response.status_code < 500, (url, kwargs, response.status_code)
        conforms(response, spec_path, method)


def test_keys_are_rate_limited(client, ctx, monkeypatch):
    monkeypatch.setattr(common, "RATE_LIMIT", 3)
    secret = key_for(ctx, "viewer")
    codes = [client.get("/api/v1/campaigns", headers=auth(secret)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_keys_are_stored_hashed_and_revocable_in_the_dashboard(client, ctx):
    from tests.unit.test_admin import csrf_of, make_user, sign_in

    make_user(ctx)
    sign_in(client)
    token = csrf_of(client, "/admin/keys")
    page = client.post("/admin/keys", data={"csrf_token": token, "name": "CRM sync"})
    secret = page.get_data(as_text=True).split('id="new-key">')[1].split("<")[0]
    assert client.get("/api/v1/campaigns", headers=auth(secret)).status_code == 200
    with ctx.db.session() as session:
        stored = session.scalar(select(ApiToken))
        assert secret not in (stored.token_hash, stored.prefix)
        token_id = stored.id
    client.post(f"/admin/keys/{token_id}/revoke", data={"csrf_token": token})
    assert client.get("/api/v1/campaigns", headers=auth(secret)).status_code == 401


def test_launch_check_lists_gaps_and_a_launch_waits_until_there_are_none(client, ctx):

    load_campaign(ctx)
    secret = key_for(ctx, "manager")
    check = client.get("/api/v1/campaigns/winter/check", headers=auth(secret))
    body = check.get_json()
    assert check.status_code == 200 and body["ready"] is False
    assert {"template": "creditor Northern Water Ltd", "language": "*", "tone": "*",
            "missing": "whom to contact: phone or email (kindly creditor set "
                       "'Northern Water Ltd' …)"} in body["gaps"]  # fmt: skip
    refused = client.post(
        "/api/v1/campaigns/winter/status", headers=auth(secret), json={"status": "live"}
    )
    assert refused.status_code == 409 and refused.get_json()["gaps"] == body["gaps"]
    from tests.support.creditors import complete_creditors

    with ctx.db.session() as session:
        complete_creditors(session)
    assert client.get("/api/v1/campaigns/winter/check", headers=auth(secret)).get_json() == {
        "campaign": "winter", "ready": True, "gaps": [],
    }  # fmt: skip
    launched = client.post(
        "/api/v1/campaigns/winter/status", headers=auth(secret), json={"status": "live"}
    )
    assert launched.status_code == 200


def test_an_api_request_no_route_takes_is_answered_in_json_with_404(client, ctx):
    # a newline in the path matches no route: before, the CSRF check answered an HTML 400
    secret = key_for(ctx, "admin")
    for method in ("PUT", "POST", "GET"):
        answer = client.open("/api/v1/creditors/a%0Ab", method=method, headers=auth(secret),
                             json={})  # fmt: skip
        assert (answer.status_code, answer.content_type) == (404, "application/json"), method
