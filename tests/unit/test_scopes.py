"""Creditors kept apart: a user or key limited to creditor A meets creditor B's campaign as if
it did not exist, on every dashboard page and API route that names a campaign."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from kindly.accounts import users
from kindly.accounts.models import ApiToken, AuditLog, User
from kindly.accounts.scopes import Scope
from kindly.campaigns.models import Campaign, CampaignStatus
from kindly.rules.store import current_rules
from tests.support.app import PHONE_UA, PORTFOLIO, load_campaign
from tests.unit.test_admin import PASSWORD, csrf_of, sign_in
from web.api import common

ALPHA, BETA = "Alpha Energie GmbH", "Beta Water Ltd"
ONLY_ALPHA = Scope(creditors=frozenset({ALPHA}))
VALUES = {
    "reference": "A-1",
    "name": "letter.pdf",
    "item_id": "1",
    "payment_id": "1",
    "dispute_id": "1",
}
"""What a campaign route's other parts are filled with (a new part must be added here)."""


@pytest.fixture(autouse=True)
def _fresh_rate_windows():
    common.forget_rate_limits()
    yield
    common.forget_rate_limits()


@pytest.fixture
def creditors(ctx):
    """Two campaigns of two creditors, each with the sample portfolio."""
    for slug, creditor in (("alpha", ALPHA), ("beta", BETA)):
        load_campaign(ctx, slug)
        with ctx.db.session() as session:
            session.scalar(select(Campaign).where(Campaign.slug == slug)).creditor = creditor
    return ctx


def person(ctx, email: str, role: str, scope: Scope | None = ONLY_ALPHA) -> None:
    with ctx.db.session() as session:
        users.create_user(session, email, PASSWORD, role, scope)


def key(ctx, email: str, role: str, scope: Scope | None = ONLY_ALPHA, key_scope=None) -> dict:
    """The Authorization header of a new key of a new user."""
    with ctx.db.session() as session:
        user = users.create_user(session, email, PASSWORD, role, scope)
        _, secret = users.issue_token(session, user, "crm", key_scope)
    return {"Authorization": f"Bearer {secret}"}


def signed_in(app, ctx, email: str, role: str, scope: Scope | None = ONLY_ALPHA):
    person(ctx, email, role, scope)
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = PHONE_UA
    assert sign_in(client, email).status_code == 303
    return client


def campaign_routes(app, prefix: str) -> list[tuple[str, str]]:
    """(method, rule) of every route under `prefix` that names a campaign by slug."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(prefix) and "slug" in rule.arguments:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                found.append((method, rule.rule))
    return found


def path_of(rule: str, slug: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: {"slug": slug, **VALUES}[m.group(1)], rule)


def nothing_happened_to_beta(ctx) -> None:
    """No audit entry, status, rules version or new debtor for creditor B's campaign."""
    with ctx.db.session() as session:
        beta = session.scalar(select(Campaign).where(Campaign.slug == "beta"))
        assert session.scalar(select(func.count()).where(AuditLog.campaign_id == beta.id)) == 0
        assert session.get(CampaignStatus, beta.id) is None
        assert current_rules(session, beta).version == 0
        assert len(beta.debtors) == 3


@pytest.mark.parametrize("role", ["viewer", "manager"])
def test_every_dashboard_campaign_route_hides_another_creditors_campaign(app, creditors, role):
    client = signed_in(app, creditors, f"{role}@alpha.example", role)
    csrf = csrf_of(client, "/admin/keys")
    routes = campaign_routes(app, "/admin/")
    assert len(routes) >= 12, routes  # the walk really walks the dashboard
    for method, rule in routes:
        answers = {}
        for slug in ("beta", "no-such-campaign"):
            form = {"csrf_token": csrf, "do": "pause", "document": "{}",
                    "portfolio": (io.BytesIO(PORTFOLIO.encode()), "p.csv")}  # fmt: skip
            data = form if method == "POST" else None
            answers[slug] = client.open(path_of(rule, slug), method=method, data=data)
        beta, absent = answers["beta"], answers["no-such-campaign"]
        assert beta.status_code in (403, 404), (method, rule, beta.status_code)
        assert (beta.status_code, beta.data) == (absent.status_code, absent.data), (method, rule)
        if method == "GET" and rule.rsplit("/", 1)[-1] != "<name>":
            own = client.get(path_of(rule, "alpha"))
            assert own.status_code in (200, 403), (rule, own.status_code)
            # a role may be refused a page, but then equally for every campaign
            assert (own.status_code == 403) == (beta.status_code == 403), rule
    nothing_happened_to_beta(creditors)


def test_a_scoped_viewer_gets_404_for_the_other_creditors_pages(app, creditors):
    viewer = signed_in(app, creditors, "viewer@alpha.example", "viewer")
    for path in ("/admin/campaigns/beta", "/admin/campaigns/beta/debtors",
                 "/admin/campaigns/beta/debtors/A-1", "/admin/campaigns/beta/rules"):  # fmt: skip
        response = viewer.get(path)
        assert response.status_code == 404, path
        assert "Beta" not in response.get_data(as_text=True)
    assert viewer.get("/admin/campaigns/alpha/debtors/A-1").status_code == 200


def test_a_scoped_manager_gets_404_for_the_other_creditors_exports(app, creditors):
    manager = signed_in(app, creditors, "manager@alpha.example", "manager")
    for name in ("debtors.csv", "funnel.csv"):
        assert manager.get(f"/admin/campaigns/beta/{name}").status_code == 404
        own = manager.get(f"/admin/campaigns/alpha/{name}")
        assert own.status_code == 200 and own.mimetype == "text/csv"


def test_lists_and_the_audit_log_show_only_campaigns_in_scope(app, creditors):
    admin = signed_in(app, creditors, "admin@example.org", "admin", None)
    assert admin.get("/admin/campaigns/beta/funnel.csv").status_code == 200  # audited for beta
    manager = signed_in(app, creditors, "manager@alpha.example", "manager")
    assert manager.get("/admin/campaigns/alpha/funnel.csv").status_code == 200
    listed = manager.get("/admin/").get_data(as_text=True)
    assert "/admin/campaigns/alpha" in listed and "/admin/campaigns/beta" not in listed
    audit_page = manager.get("/admin/audit").get_data(as_text=True)
    assert "export.funnel" in audit_page and "beta" not in audit_page
    assert "admin@example.org" not in audit_page
    everything = admin.get("/admin/").get_data(as_text=True)
    assert "/admin/campaigns/alpha" in everything and "/admin/campaigns/beta" in everything


def test_a_scoped_manager_creates_and_moves_campaigns_only_within_their_creditors(app, creditors):
    manager = signed_in(app, creditors, "manager@alpha.example", "manager")
    csrf = csrf_of(manager, "/admin/campaigns/new")

    def create(slug: str, creditor: str):
        upload = (io.BytesIO(PORTFOLIO.encode()), "p.csv")
        return manager.post("/admin/campaigns/new", data={
            "csrf_token": csrf, "slug": slug, "locale": "de-DE", "creditor": creditor,
            "portfolio": upload})  # fmt: skip

    refused = create("for-beta", BETA)
    assert refused.status_code == 422
    assert "only create campaigns for a creditor in your scope" in refused.get_data(as_text=True)
    assert create("more-alpha", ALPHA).status_code == 200
    assert manager.get("/admin/campaigns/more-alpha").status_code == 200
    settings = manager.get("/admin/campaigns/alpha/settings").get_data(as_text=True)
    form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', settings))
    form.update(csrf_token=csrf, creditor=BETA, default_locale="de-DE", identity_check="none")
    moved = manager.post("/admin/campaigns/alpha/settings", data=form)
    assert moved.status_code == 422
    assert "only name a creditor in your scope" in moved.get_data(as_text=True)
    with creditors.db.session() as session:
        slugs = set(session.scalars(select(Campaign.slug)))
        alpha = session.scalar(select(Campaign).where(Campaign.slug == "alpha"))
        assert alpha.creditor == ALPHA and "for-beta" not in slugs


@pytest.mark.parametrize("role", ["viewer", "manager", "admin"])
def test_every_api_campaign_route_hides_another_creditors_campaign(client, creditors, role):
    # an admin reaches everything; an admin's key limited to creditor A does not
    scope, key_scope = (None, ONLY_ALPHA) if role == "admin" else (ONLY_ALPHA, None)
    headers = key(creditors, f"{role}@alpha.example", role, scope, key_scope)
    routes = campaign_routes(client.application, "/api/v1/")
    assert len(routes) >= 15, routes
    body = {"status": "paused", "kinds": ["site"], "dry_run": True, "defaults": {}}
    for method, rule in routes:
        sent = {"json": body} if method != "GET" else {}
        answers = {
            slug: client.open(path_of(rule, slug), method=method, headers=headers, **sent)
            for slug in ("beta", "no-such-campaign")
        }
        beta, absent = answers["beta"], answers["no-such-campaign"]
        assert beta.status_code in (403, 404), (method, rule, beta.status_code)
        assert beta.status_code == absent.status_code, (method, rule)
        if beta.status_code == 404:
            assert beta.get_json() == {"error": "no campaign 'beta'"}, rule
        if method == "GET":
            own = client.get(path_of(rule, "alpha"), headers=headers)
            assert own.status_code in (200, 403), (rule, own.status_code)
            assert (own.status_code == 403) == (beta.status_code == 403), rule
    nothing_happened_to_beta(creditors)


def test_the_api_lists_and_creates_only_within_scope(client, creditors):
    headers = key(creditors, "manager@alpha.example", "manager")
    listed = client.get("/api/v1/campaigns", headers=headers).get_json()
    assert [c["slug"] for c in listed["campaigns"]] == ["alpha"]
    refused = client.post("/api/v1/campaigns", headers=headers,
                          json={"slug": "for-beta", "creditor": BETA})  # fmt: skip
    assert refused.status_code == 403
    assert (
        client.post("/api/v1/campaigns", headers=headers, json={"slug": "none"}).status_code == 403
    )
    made = client.post("/api/v1/campaigns", headers=headers,
                       json={"slug": "alpha-2", "creditor": ALPHA})  # fmt: skip
    assert made.status_code == 201
    listed = client.get("/api/v1/campaigns", headers=headers).get_json()
    assert [c["slug"] for c in listed["campaigns"]] == ["alpha", "alpha-2"]
    with creditors.db.session() as session:
        assert set(session.scalars(select(Campaign.slug))) == {"alpha", "beta", "alpha-2"}


def test_a_key_never_reaches_more_than_its_user(client, creditors):
    only_beta = Scope(campaigns=frozenset({"beta"}))
    # a user of creditor A, with a key for campaign beta: the key reaches nothing at all
    headers = key(creditors, "manager@alpha.example", "manager", ONLY_ALPHA, only_beta)
    assert client.get("/api/v1/campaigns", headers=headers).get_json()["campaigns"] == []
    for slug in ("alpha", "beta"):
        assert client.get(f"/api/v1/campaigns/{slug}", headers=headers).status_code == 404
    # narrowing the user later narrows every key at once
    wide = key(creditors, "wide@example.org", "manager", None, None)
    assert client.get("/api/v1/campaigns/beta", headers=wide).status_code == 200
    with creditors.db.session() as session:
        users.set_scope(session.scalar(select(User).where(User.email == "wide@example.org")),
                        ONLY_ALPHA)  # fmt: skip
    assert client.get("/api/v1/campaigns/beta", headers=wide).status_code == 404


def test_a_scoped_admin_key_manages_no_webhooks(client, creditors):
    headers = key(creditors, "admin@example.org", "admin", None, ONLY_ALPHA)
    for method, path in (("GET", "/api/v1/webhooks"), ("POST", "/api/v1/webhooks"),
                         ("DELETE", "/api/v1/webhooks/1")):  # fmt: skip
        response = client.open(path, method=method, headers=headers,
                               json={"url": "https://hooks.example.org/k"})  # fmt: skip
        assert response.status_code == 403, (method, path)
        assert "limited to some creditors" in response.get_json()["error"]


def test_admins_set_scopes_on_the_users_page_and_users_on_their_keys(app, creditors):
    admin = signed_in(app, creditors, "admin@example.org", "admin", None)
    csrf = csrf_of(admin, "/admin/users")
    made = admin.post("/admin/users", data={
        "csrf_token": csrf, "email": "v@example.org", "password": PASSWORD, "role": "viewer",
        "creditors": f"{ALPHA}\n", "campaigns": []})  # fmt: skip
    assert made.status_code == 200
    page = made.get_data(as_text=True)
    assert f"creditors: {ALPHA}" in page
    refused = admin.post("/admin/users", data={
        "csrf_token": csrf, "email": "a2@example.org", "password": PASSWORD, "role": "admin",
        "creditors": ALPHA})  # fmt: skip
    assert refused.status_code == 422 and "an admin reaches every campaign" in refused.get_data(
        as_text=True
    )
    unknown = admin.post("/admin/users", data={
        "csrf_token": csrf, "email": "m@example.org", "password": PASSWORD, "role": "manager",
        "campaigns": ["nope"]})  # fmt: skip
    assert unknown.status_code == 422 and "no campaign &#39;nope&#39;" in unknown.get_data(
        as_text=True
    )
    with creditors.db.session() as session:
        viewer = session.scalar(select(User).where(User.email == "v@example.org"))
        assert viewer.scope == {"creditors": [ALPHA], "campaigns": []}
        assert session.scalar(select(User).where(User.email == "a2@example.org")) is None
        viewer_id = viewer.id
    changed = admin.post(f"/admin/users/{viewer_id}/scope",
                         data={"csrf_token": csrf, "campaigns": ["beta"]})  # fmt: skip
    assert changed.status_code == 303
    viewer_client = app.test_client()
    assert sign_in(viewer_client, "v@example.org").status_code == 303
    assert viewer_client.get("/admin/campaigns/alpha").status_code == 404
    assert viewer_client.get("/admin/campaigns/beta").status_code == 200
    everything = admin.post(f"/admin/users/{viewer_id}/scope",
                            data={"csrf_token": csrf, "campaigns": ["beta"], "all": "1"})  # fmt: skip
    assert everything.status_code == 303
    assert viewer_client.get("/admin/campaigns/alpha").status_code == 200
    admin.post(f"/admin/users/{viewer_id}/scope", data={"csrf_token": csrf, "campaigns": ["beta"]})
    # the viewer's key: limited to a campaign the viewer does not reach -> refused by name
    viewer_csrf = csrf_of(viewer_client, "/admin/keys")
    refused_key = viewer_client.post("/admin/keys", data={
        "csrf_token": viewer_csrf, "name": "x", "campaigns": ["alpha"]})  # fmt: skip
    assert refused_key.status_code == 422
    made_key = viewer_client.post("/admin/keys", data={"csrf_token": viewer_csrf, "name": "bi"})
    assert made_key.status_code == 200
    secret = re.search(r'id="new-key">([^<]+)<', made_key.get_data(as_text=True)).group(1)
    answer = viewer_client.get("/api/v1/campaigns", headers={"Authorization": f"Bearer {secret}"})
    assert [c["slug"] for c in answer.get_json()["campaigns"]] == ["beta"]
    with creditors.db.session() as session:
        assert session.scalar(select(func.count(ApiToken.id))) == 1
        actions = list(session.scalars(select(AuditLog.action)))
    assert "user.scope" in actions


def test_the_user_commands_set_scopes(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from kindly.cli import cli
    from tests.support.app import front_client, installed, make_settings

    monkeypatch.setenv("KINDLY_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KINDLY_SECRET_KEY", "test-secret-key-0123456789")
    settings = make_settings(tmp_path / "var")
    with installed(settings) as ctx:
        load_campaign(ctx, "alpha")
        load_campaign(ctx, "beta")
    runner = CliRunner()

    def run(*args: str, password: bool = False):
        return runner.invoke(cli, ["user", *args], input=PASSWORD + "\n" if password else None)

    made = run("create", "m@example.org", "--role", "manager", "--campaign", "alpha",
               "--creditor", ALPHA, "--password-stdin", password=True)  # fmt: skip
    assert made.exit_code == 0, made.output
    assert f"reaching creditors: {ALPHA}; campaigns: alpha" in made.output
    wrong = run("create", "x@example.org", "--role", "viewer", "--campaign", "nope",
                "--password-stdin", password=True)  # fmt: skip
    assert wrong.exit_code == 1 and "no campaign 'nope'" in wrong.output
    admin = run("create", "a@example.org", "--role", "admin", "--creditor", ALPHA,
                "--password-stdin", password=True)  # fmt: skip
    assert admin.exit_code == 1 and "an admin reaches every campaign" in admin.output
    secret = run("token", "m@example.org", "--campaign", "beta").output.strip()
    listed = run("list").output
    assert "m@example.org" in listed and "campaigns: alpha" in listed
    assert "x@example.org" not in listed and "a@example.org" not in listed
    with installed(settings) as ctx:
        client = front_client(ctx)
        headers = {"Authorization": f"Bearer {secret}"}
        assert client.get("/api/v1/campaigns", headers=headers).get_json()["campaigns"] == []
        assert run("scope", "m@example.org").output.strip() == "m@example.org reaches all campaigns"
        slugs = [c["slug"] for c in client.get("/api/v1/campaigns", headers=headers).get_json()[
            "campaigns"]]  # fmt: skip
        assert slugs == ["beta"]
