"""Behind a proxy, one guesser cannot lock everyone out, nor a stranger lock out a known admin."""

from __future__ import annotations

import datetime as dt

import pytest
from werkzeug.test import EnvironBuilder

from kindly.accounts import throttle, users
from kindly.infra.config import Settings
from tests.support.app import make_settings
from tests.unit.test_admin import PASSWORD, csrf_of, make_user
from web.server import RedactingLogger

ADMIN = "admin@example.org"
WRONG = "guess guess guess"
HOME = "198.51.100.20"
"""The address the admin signs in from."""


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Behind one reverse proxy (Caddy in docs/deploy.md)."""
    return make_settings(tmp_path / "var", KINDLY_TRUSTED_PROXIES="1")


def attempt(client, address: str, email: str = ADMIN, password: str = WRONG):
    """A sign-in as the proxy passes it on: the client's address in X-Forwarded-For."""
    token = csrf_of(client, "/admin/login")
    return client.post(
        "/admin/login",
        data={"csrf_token": token, "email": email, "password": password},
        headers={"X-Forwarded-For": address},
    )


def test_twenty_failures_from_one_address_do_not_lock_out_another(client, ctx):
    make_user(ctx, ADMIN, "admin")
    for n in range(4 * users.MAX_FAILURES):
        assert attempt(client, "203.0.113.7", f"nobody{n}@example.org").status_code == 401
    assert attempt(client, "203.0.113.7", "nobody@example.org").status_code == 429
    assert attempt(client, HOME, password=PASSWORD).status_code == 303


def test_a_stranger_guessing_from_many_addresses_cannot_lock_out_the_admin(client, ctx):
    make_user(ctx, ADMIN, "admin")
    assert attempt(client, HOME, password=PASSWORD).status_code == 303  # the admin, earlier
    token = csrf_of(client, "/admin/")
    client.post("/admin/logout", data={"csrf_token": token})
    answers = [attempt(client, f"203.0.113.{n}").status_code for n in range(1, 41)]
    assert answers.count(401) >= throttle.ACCOUNT_FAILURES  # wrong, then slowed down
    assert 429 in answers
    assert attempt(client, HOME, password=PASSWORD).status_code == 303


def test_the_slowed_down_answer_says_how_long_to_wait(client, ctx):
    make_user(ctx, ADMIN, "admin")
    guesses = 2 * throttle.ACCOUNT_FAILURES  # spread out so that each one was let through
    now = dt.datetime.now(dt.UTC)
    with ctx.db.session() as session:
        for n in range(guesses):
            at = now - dt.timedelta(seconds=(guesses - n) * throttle.MAX_BACKOFF)
            users.authenticate(session, ADMIN, WRONG, f"203.0.113.{n}", at)
        users.authenticate(session, ADMIN, WRONG, "203.0.113.99")  # the last one: just now
    refused = attempt(client, "192.0.2.50", password=PASSWORD)
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= throttle.MAX_BACKOFF
    assert f"try again in {wait} seconds" in refused.get_data(as_text=True)


def test_a_new_address_passes_with_the_right_password_after_a_short_wait(ctx):
    make_user(ctx, ADMIN, "admin")
    start = dt.datetime.now(dt.UTC)
    with ctx.db.session() as session:
        for n in range(3 * throttle.ACCOUNT_FAILURES):  # a stranger, spread out over addresses
            at = start + dt.timedelta(seconds=n * throttle.MAX_BACKOFF)
            users.authenticate(session, ADMIN, WRONG, f"203.0.113.{n}", at)
    last = start + dt.timedelta(seconds=(3 * throttle.ACCOUNT_FAILURES - 1) * throttle.MAX_BACKOFF)
    with ctx.db.session() as session, pytest.raises(users.TooManyAttempts) as refused:
        users.authenticate(session, ADMIN, PASSWORD, "192.0.2.50", last + dt.timedelta(seconds=1))
    assert refused.value.retry_after <= throttle.MAX_BACKOFF
    later = last + dt.timedelta(seconds=throttle.MAX_BACKOFF)
    with ctx.db.session() as session:
        assert users.authenticate(session, ADMIN, PASSWORD, "192.0.2.50", later) is not None


def test_one_address_guessing_one_account_is_still_locked_for_the_window(client, ctx):
    make_user(ctx, ADMIN, "admin")
    assert attempt(client, HOME, password=PASSWORD).status_code == 303
    for _ in range(users.MAX_FAILURES):
        assert attempt(client, "203.0.113.9").status_code == 401
    locked = attempt(client, "203.0.113.9", password=PASSWORD)
    assert locked.status_code == 429
    assert "try again in 15 minutes" in locked.get_data(as_text=True)


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(tmp_path):
    from tests.support.app import front_client, installed

    plain = make_settings(tmp_path / "plain")
    assert plain.trusted_proxies == 0
    with installed(plain) as context:
        make_user(context, ADMIN, "admin")
        client = front_client(context)
        for n in range(4 * users.MAX_FAILURES):
            attempt(client, f"203.0.113.{n}", f"nobody{n}@example.org")
        assert attempt(client, "192.0.2.99", "other@example.org").status_code == 429


def test_the_access_log_shows_the_client_not_the_proxy(app):
    environ = EnvironBuilder(
        path="/healthz", headers={"X-Forwarded-For": "192.0.2.44, 203.0.113.250"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    ).get_environ()  # fmt: skip
    body = app.wsgi_app(environ, lambda status, headers, exc_info=None: None)
    b"".join(body)
    logger = RedactingLogger.__new__(RedactingLogger)
    response = type("Response", (), {"status": "200 OK", "sent": 15})()
    atoms = logger.atoms(response, None, environ, dt.timedelta(milliseconds=3))
    assert atoms["h"] == "203.0.113.250"  # one trusted hop: the address the proxy saw


def test_the_number_of_proxies_is_checked(tmp_path):
    from kindly.errors import ConfigError

    for bad in ("one", "-1", "9"):
        with pytest.raises(ConfigError, match="KINDLY_TRUSTED_PROXIES"):
            make_settings(tmp_path / "var", KINDLY_TRUSTED_PROXIES=bad)
    assert make_settings(tmp_path / "var", KINDLY_TRUSTED_PROXIES="2").trusted_proxies == 2
