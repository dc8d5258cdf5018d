"""The dashboard as a manager, a viewer and a stranger meet it: sign-in, roles, audit, pages."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from sqlalchemy import select

from kindly.accounts import users
from kindly.accounts.models import AuditLog, LoginAttempt, User
from kindly.campaigns.models import Campaign, Debtor
from kindly.payments.models import Payment
from kindly.tracking import events
from tests.support.app import PORTFOLIO, load_campaign

PASSWORD = "correct horse battery staple"
BROKEN = (
    "reference,last_name,currency,amount_due,due_date,email\n"
    "B-1,Ok,EUR,10.00,2026-12-01,\n"
    "B-2,Bad,EUR,-5,2026-12-01,\n"
    "B-3,Worse,XXY,1.00,2026-13-01,not-an-email\n"
)


def make_user(ctx, email: str = "manager@example.org", role: str = "manager") -> None:
    with ctx.db.session() as session:
        users.create_user(session, email, PASSWORD, role)


def csrf_of(client, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, email: str = "manager@example.org", password: str = PASSWORD):
    token = csrf_of(client, "/admin/login")
    return client.post(
        "/admin/login", data={"csrf_token": token, "email": email, "password": password}
    )


def audit_actions(ctx) -> list[str]:
    with ctx.db.session() as session:
        return list(session.scalars(select(AuditLog.action).order_by(AuditLog.id)))


@pytest.fixture
def manager(client, ctx):
    make_user(ctx)
    assert sign_in(client).status_code == 303
    return client


def test_signed_out_visitors_only_see_the_sign_in_page(client, ctx):
    load_campaign(ctx)
    for path in (
        "/admin/",
        "/admin/campaigns/winter",
        "/admin/campaigns/winter/debtors.csv",
        "/admin/users",
        "/admin/audit",
        "/admin/keys",
        "/admin/campaigns/new",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/admin/login"), path
    page = client.get("/admin/login")
    assert page.status_code == 200
    assert "Sign in" in page.get_data(as_text=True)
    assert "Winter" not in page.get_data(as_text=True)


def test_password_is_stored_as_argon2id_and_wrong_password_is_refused(client, ctx):
    make_user(ctx)
    with ctx.db.session() as session:
        stored = session.scalar(select(User.password_hash))
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    refused = sign_in(client, password="wrong password 123")
    assert refused.status_code == 401
    assert "do not match" in refused.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_sign_in_without_csrf_token_is_rejected(client, ctx):
    make_user(ctx)
    response = client.post(
        "/admin/login", data={"email": "manager@example.org", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_session_cookie_is_httponly_and_samesite(client, ctx):
    make_user(ctx)
    response = sign_in(client)
    cookie = response.headers["Set-Cookie"]
    assert "kindly_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_secure_cookie_on_an_https_base_url(tmp_path):
    from tests.support.app import make_settings
    from web import create_app

    app = create_app(make_settings(tmp_path / "var", KINDLY_BASE_URL="https://pay.example.org"))
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_sign_in_locks_after_five_failures_even_with_the_right_password(client, ctx):
    make_user(ctx)
    for _ in range(users.MAX_FAILURES):
        assert sign_in(client, password="guess guess guess").status_code == 401
    locked = sign_in(client)
    assert locked.status_code == 429
    assert "try again in 15 minutes" in locked.get_data(as_text=True)
    with ctx.db.session() as session:
        assert session.scalar(select(LoginAttempt).where(LoginAttempt.success.is_(True))) is None


def test_lock_expires_after_the_window(ctx):
    make_user(ctx)
    past = dt.datetime.now(dt.UTC) - users.FAILURE_WINDOW - dt.timedelta(minutes=1)
    with ctx.db.session() as session:
        for _ in range(users.MAX_FAILURES):
            assert (
                users.authenticate(session, "manager@example.org", "nope", "1.2.3.4", past) is None
            )
    with ctx.db.session() as session:
        assert users.authenticate(session, "manager@example.org", PASSWORD, "1.2.3.4") is not None


def test_sign_out_needs_a_post_and_ends_the_session(manager):
    assert manager.get("/admin/").status_code == 200
    token = csrf_of(manager, "/admin/")
    assert manager.post("/admin/logout", data={"csrf_token": token}).status_code == 303
    assert manager.get("/admin/").status_code == 302


def test_campaign_list_shows_status_and_money_collected(manager, ctx):
    campaign_id = load_campaign(ctx)
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        session.add(
            Payment(
                campaign_id=campaign_id,
                debtor_id=debtor.id,
                provider="sandbox",
                provider_ref="sbx_1",
                amount_minor=123456,
                currency="EUR",
                status="succeeded",
            )
        )
    html = manager.get("/admin/").get_data(as_text=True)
    row = re.search(r'<tr data-slug="winter">(.*?)</tr>', html, re.S).group(1)
    assert "draft" in row
    assert "1234.56 EUR" in row
    assert "89.90 GBP" in row  # owed, in its own currency


def test_empty_campaign_page_shows_zeros_and_empty_states(manager, ctx):
    with ctx.db.session() as session:
        session.add(Campaign(slug="empty", name="Empty"))
    page = manager.get("/admin/campaigns/empty")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "0 debtors" in html
    assert "No debtors yet" in html
    assert re.search(
        r'data-step="paid"><th scope="row">paid</th><td class="num human">0</td>', html
    )
    assert "<svg" not in html  # no chart drawn from nothing
    assert 'id="plans-empty"' in html
    assert 'id="experiments-empty"' in html


def test_campaign_page_funnel_raw_vs_people_money_and_rates(manager, ctx):
    campaign_id = load_campaign(ctx)
    with ctx.db.session() as session:
        a1, a2, a3 = session.scalars(select(Debtor).order_by(Debtor.reference)).all()
        for debtor in (a1, a2, a3):
            events.record(session, debtor, "sent", channel="email")
        events.record(session, a1, "viewed", agent="human")
        events.record(session, a2, "viewed", agent="automated")  # a link scanner
        events.record(session, a1, "cta", data={"cta": "pay"})
        events.record(session, a1, "payment_started")
        events.record(session, a1, "paid")
        session.add(
            Payment(
                campaign_id=campaign_id,
                debtor_id=a1.id,
                provider="sandbox",
                provider_ref="sbx_9",
                amount_minor=123456,
                currency="EUR",
                status="succeeded",
            )
        )
    html = manager.get("/admin/campaigns/winter").get_data(as_text=True)
    viewed = re.search(r'data-step="viewed">.*?human">(\d+)<.*?raw">(\d+)<', html, re.S)
    assert viewed.groups() == ("1", "2")  # one person, plus one scanner in the raw count
    assert re.search(r'data-rate="payment_success">.*?value">100.0 %', html, re.S)
    assert re.search(r'data-rate="view">.*?value">33.3 %.*?1 / 3', html, re.S)
    money = re.search(r'data-currency="EUR">(.*?)</div>', html, re.S).group(1)
    assert "€1,234.56" in money
    assert "of €1,276.56 owed" in money  # 1234.56 + 42.00
    assert "96.7 %" in money  # recovery rate
    assert html.count("<svg") >= 3  # funnel, money over time, variants
    assert "Okabe" not in html and "<script" not in html


def test_kpis_are_shown_with_their_formula(manager, ctx):
    load_campaign(ctx)
    html = manager.get("/admin/campaigns/winter").get_data(as_text=True)
    cei = re.search(r'data-kpi="cei-EUR">(.*?)</tr>', html, re.S).group(1)
    assert "0.0 %" in cei
    assert "CEI = (beginning receivables + credit sales" in cei
    dso = re.search(r'data-kpi="dso-EUR">(.*?)</tr>', html, re.S).group(1)
    assert "not available" in dso


def test_upload_of_a_broken_file_lists_the_bad_rows_and_creates_nothing(manager, ctx):
    token = csrf_of(manager, "/admin/campaigns/new")
    response = manager.post(
        "/admin/campaigns/new",
        data={
            "csrf_token": token,
            "slug": "spring",
            "name": "Spring",
            "locale": "de-DE",
            "portfolio": (io.BytesIO(BROKEN.encode()), "spring.csv"),
        },
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    table = re.search(r'id="rejected">(.*?)</section>', html, re.S).group(1)
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td><code>([^<]+)</code></td>', table)
    assert ("3", "amount_due") in rows
    assert ("4", "currency") in rows and ("4", "due_date") in rows and ("4", "email") in rows
    with ctx.db.session() as session:
        assert session.scalar(select(Campaign).where(Campaign.slug == "spring")) is None
        assert session.scalar(select(Debtor)) is None


def test_upload_creates_the_campaign_and_audits_the_import(manager, ctx):
    token = csrf_of(manager, "/admin/campaigns/new")
    response = manager.post(
        "/admin/campaigns/new",
        data={
            "csrf_token": token,
            "slug": "spring",
            "name": "Spring",
            "locale": "de-DE",
            "portfolio": (io.BytesIO(PORTFOLIO.encode()), "spring.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert "3 created, 0 updated" in response.get_data(as_text=True)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == "spring"))
        assert len(campaign.debtors) == 3
        entry = session.scalar(select(AuditLog).where(AuditLog.action == "portfolio.import"))
        assert (entry.actor, entry.via, entry.campaign_id) == (
            "manager@example.org",
            "web",
            campaign.id,
        )
        assert entry.detail["created"] == 3


def test_skip_invalid_imports_good_rows_and_lists_the_rest(manager, ctx):
    token = csrf_of(manager, "/admin/campaigns/new")
    response = manager.post(
        "/admin/campaigns/new",
        data={
            "csrf_token": token,
            "slug": "spring",
            "locale": "de-DE",
            "skip_invalid": "1",
            "portfolio": (io.BytesIO(BROKEN.encode()), "spring.csv"),
        },
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert "1 created, 0 updated" in html
    assert 'id="rejected"' in html
    with ctx.db.session() as session:
        assert session.scalars(select(Debtor.reference)).all() == ["B-1"]


def ready_to_launch(ctx, slug: str = "winter") -> None:
    """Give the campaign the facts a collection demand needs (RDG §13a)."""

    from tests.support.creditors import complete_creditors

    with ctx.db.session() as session:
        complete_creditors(session)


def test_launch_is_refused_while_facts_are_missing_and_the_gaps_are_listed(manager, ctx):
    load_campaign(ctx)
    token = csrf_of(manager, "/admin/campaigns/winter")
    refused = manager.post(
        "/admin/campaigns/winter/status", data={"csrf_token": token, "do": "launch"}
    )
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "creditor Northern Water Ltd" in page
    assert "whom to contact: phone or email" in page
    assert ">live<" not in manager.get("/admin/campaigns/winter").get_data(as_text=True)
    assert audit_actions(ctx)[-1] == "campaign.launch_refused"


def test_launch_and_pause_are_audited(manager, ctx):
    load_campaign(ctx)
    ready_to_launch(ctx)
    token = csrf_of(manager, "/admin/campaigns/winter")
    manager.post("/admin/campaigns/winter/status", data={"csrf_token": token, "do": "launch"})
    assert ">live<" in manager.get("/admin/campaigns/winter").get_data(as_text=True)
    manager.post("/admin/campaigns/winter/status", data={"csrf_token": token, "do": "pause"})
    assert ">paused<" in manager.get("/admin/").get_data(as_text=True)
    assert audit_actions(ctx)[-2:] == ["campaign.launch", "campaign.pause"]


def test_debtor_export_is_csv_with_outcomes_and_audited(manager, ctx):
    load_campaign(ctx)
    response = manager.get("/admin/campaigns/winter/debtors.csv")
    lines = response.get_data(as_text=True).splitlines()
    assert response.mimetype == "text/csv"
    assert lines[0].startswith("reference,segment,variant,channel,currency,amount_due")
    assert lines[1].startswith("A-1,default,A,email,EUR,1234.56,0.00,1234.56")
    assert "Müller" not in response.get_data(as_text=True)  # outcomes, not personal data
    assert audit_actions(ctx)[-1] == "export.debtors"


def test_viewer_reads_but_cannot_change_anything(client, ctx):
    load_campaign(ctx)
    make_user(ctx, "viewer@example.org", "viewer")
    sign_in(client, "viewer@example.org")
    page = client.get("/admin/campaigns/winter").get_data(as_text=True)
    assert "Funnel" in page
    assert "Launch" not in page and "Upload more" not in page
    token = csrf_of(client, "/admin/")
    refused = [
        client.post("/admin/campaigns/winter/status", data={"csrf_token": token, "do": "launch"}),
        client.post("/admin/campaigns/winter/upload", data={"csrf_token": token}),
        client.post("/admin/campaigns/new", data={"csrf_token": token, "slug": "x"}),
        client.get("/admin/campaigns/winter/debtors.csv"),
        client.get("/admin/users"),
        client.post(
            "/admin/users",
            data={"csrf_token": token, "email": "a@b.org", "password": PASSWORD, "role": "admin"},
        ),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    with ctx.db.session() as session:
        assert session.scalar(select(User).where(User.email == "a@b.org")) is None
    assert "campaign.launch" not in audit_actions(ctx)


def test_admin_adds_a_user_and_disabling_signs_them_out(client, ctx):
    make_user(ctx, "admin@example.org", "admin")
    sign_in(client, "admin@example.org")
    token = csrf_of(client, "/admin/users")
    added = client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "email": "new@example.org",
            "password": PASSWORD,
            "role": "viewer",
        },
    )
    assert added.status_code == 200
    assert "new@example.org" in added.get_data(as_text=True)
    other = client.application.test_client()
    sign_in(other, "new@example.org")
    assert other.get("/admin/").status_code == 200
    with ctx.db.session() as session:
        new_id = session.scalar(select(User.id).where(User.email == "new@example.org"))
    client.post(f"/admin/users/{new_id}/active", data={"csrf_token": token, "active": "0"})
    assert other.get("/admin/").status_code == 302
    actions = audit_actions(ctx)
    assert "user.create" in actions
    assert actions[-1] == "user.disable"


def test_audit_page_lists_who_did_what(manager, ctx):
    load_campaign(ctx)
    manager.get("/admin/campaigns/winter/funnel.csv")
    html = manager.get("/admin/audit").get_data(as_text=True)
    row = re.search(r"<tr><td><time[^>]*>[^<]*</time></td>(.*?)</tr>", html, re.S).group(1)
    assert "manager@example.org" in row and "export.funnel" in row and "winter" in row


def test_user_create_command(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from kindly.cli import cli

    monkeypatch.setenv("KINDLY_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KINDLY_SECRET_KEY", "test-secret-key-0123456789")
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["user", "create", "Boss@Example.org", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "created admin boss@example.org" in result.output
    short = runner.invoke(
        cli,
        ["user", "create", "x@example.org", "--role", "admin", "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code == 1
    assert "at least 12 characters" in short.output
    listed = runner.invoke(cli, ["user", "list"])
    assert "boss@example.org" in listed.output and "admin" in listed.output
