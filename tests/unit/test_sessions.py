"""A dashboard cookie dies when it should: sign-out, new password, new role, 12 hours after sign-in."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types

import pytest

from tests.support.app import load_campaign
from tests.unit.test_admin import csrf_of, make_user, sign_in
from web.admin import common as admin_web

CSV = "/admin/campaigns/winter/debtors.csv"


@pytest.fixture
def manager(client, ctx):
    make_user(ctx)
    load_campaign(ctx)
    assert sign_in(client).status_code == 303
    return client


def saved_cookie(client) -> str:
    return client.get_cookie("kindly_session").value


def replay(app, cookie: str, path: str = CSV):
    """The request a thief makes with a copied cookie, from another browser."""
    thief = app.test_client()
    thief.set_cookie("kindly_session", cookie)
    return thief.get(path)


def assert_signed_out(response) -> None:
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")
    assert "reference" not in response.get_data(as_text=True)  # no CSV header row


def kindly_cli(ctx, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`kindly …` as the operator runs it, on the test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | {
        "KINDLY_DATA_DIR": str(ctx.settings.data_dir),
        "KINDLY_DATABASE_URL": ctx.settings.database_url,
        "KINDLY_SECRET_KEY": ctx.settings.secret_key,
    }
    return subprocess.run(
        [sys.executable, "-m", "kindly", *args], input=stdin, capture_output=True, text=True,
        env=env, timeout=120,
    )  # fmt: skip


def test_a_cookie_saved_before_sign_out_no_longer_downloads_the_debtors(app, manager):
    cookie = saved_cookie(manager)
    assert replay(app, cookie).status_code == 200  # the copy works while the user is signed in
    token = csrf_of(manager, "/admin/")
    assert manager.post("/admin/logout", data={"csrf_token": token}).status_code == 303
    assert_signed_out(replay(app, cookie))


@pytest.mark.slow  # starts the kindly command as its own process
def test_a_new_password_ends_every_session_of_the_user(app, ctx, manager):
    cookie = saved_cookie(manager)
    changed = kindly_cli(ctx, "user", "password", "manager@example.org", "--password-stdin",
                         stdin="a brand new passphrase\n")  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert_signed_out(replay(app, cookie))
    assert_signed_out(manager.get(CSV))
    assert sign_in(manager).status_code == 401  # the old password is gone too
    assert sign_in(manager, password="a brand new passphrase").status_code == 303
    assert manager.get(CSV).status_code == 200


@pytest.mark.slow  # starts the kindly command as its own process
def test_a_too_short_new_password_changes_nothing(app, ctx, manager):
    cookie = saved_cookie(manager)
    refused = kindly_cli(ctx, "user", "password", "manager@example.org", "--password-stdin",
                         stdin="short\n")  # fmt: skip
    assert refused.returncode == 1
    assert "at least 12 characters" in refused.stderr
    assert replay(app, cookie).status_code == 200


@pytest.mark.slow  # starts the kindly command as its own process
def test_a_new_role_ends_every_session_of_the_user(app, ctx, manager):
    cookie = saved_cookie(manager)
    changed = kindly_cli(ctx, "user", "role", "manager@example.org", "--role", "viewer")
    assert changed.returncode == 0, changed.stderr
    assert_signed_out(replay(app, cookie))
    assert sign_in(manager).status_code == 303
    assert manager.get(CSV).status_code == 403  # signed in again, as what the role now allows


def test_disabling_a_user_ends_their_session_for_good(app, ctx, client, manager):
    cookie = saved_cookie(manager)
    make_user(ctx, "boss@example.org", "admin")
    boss = app.test_client()
    assert sign_in(boss, "boss@example.org").status_code == 303
    token = csrf_of(boss, "/admin/users")
    html = boss.get("/admin/users").get_data(as_text=True)
    user_id = html.split('action="/admin/users/')[1].split("/")[0]
    for active in ("0", "1"):  # disabled, then enabled again
        boss.post(f"/admin/users/{user_id}/active", data={"csrf_token": token, "active": active})
    assert_signed_out(replay(app, cookie))


@pytest.fixture
def clock(monkeypatch):
    """The dashboard's clock, moved forward by the test (hours pass in no time)."""
    moment = types.SimpleNamespace(now=time.time())
    monkeypatch.setattr(admin_web, "time", types.SimpleNamespace(time=lambda: moment.now))
    return moment


def test_a_session_ends_twelve_hours_after_sign_in_however_often_it_is_used(app, client, ctx,
                                                                            clock):  # fmt: skip
    make_user(ctx)
    load_campaign(ctx)
    assert sign_in(client).status_code == 303
    cookie = saved_cookie(client)
    for _ in range(11):  # a request every hour keeps the idle timeout away
        clock.now += 3600
        assert client.get("/admin/").status_code == 200
    clock.now += 3600 + 60
    assert_signed_out(client.get(CSV))
    assert_signed_out(replay(app, cookie))
    assert sign_in(client).status_code == 303  # signing in again starts a new 12 hours
    assert client.get(CSV).status_code == 200


def test_a_session_still_ends_after_eight_idle_hours(client, ctx, clock):
    make_user(ctx)
    assert sign_in(client).status_code == 303
    clock.now += 8 * 3600 + 60
    assert client.get("/admin/").status_code == 302


def test_signing_out_on_one_device_ends_the_others(app, ctx, manager):
    other = app.test_client()
    assert sign_in(other).status_code == 303
    assert other.get(CSV).status_code == 200
    token = csrf_of(manager, "/admin/")
    manager.post("/admin/logout", data={"csrf_token": token})
    assert_signed_out(other.get(CSV))  # sign-out ends the user's sessions on every device
    assert sign_in(other).status_code == 303
