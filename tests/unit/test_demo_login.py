"""`kindly demo` shows the real world: due dates in the past but one, and a printed way into
the cockpit with a random password that is never the same twice (issue 17)."""

from __future__ import annotations

import datetime as dt
import re

from click.testing import CliRunner
from sqlalchemy import select

from kindly.accounts.models import User
from kindly.campaigns.demo import MANAGER, demo_rows
from kindly.campaigns.models import Debtor
from kindly.cli import cli
from tests.support.app import front_client, installed, make_settings
from tests.unit.test_web import csrf_from


def test_demo_due_dates_lie_in_the_past_but_one():
    today = dt.date(2026, 12, 2)
    rows = demo_rows(20, today=today)
    dues = [dt.date.fromisoformat(row.values["due_date"]) for row in rows]
    assert sum(due > today for due in dues) == 1
    assert sum(due <= today - dt.timedelta(days=14) for due in dues) >= 5  # overdue by weeks
    assert all(today - due <= dt.timedelta(days=60) for due in dues)


def _demo(tmp_path) -> str:
    env = {"KINDLY_DATA_DIR": str(tmp_path / "var"), "KINDLY_SECRET_KEY": "test-secret-key-0123456789",
           "KINDLY_BASE_URL": "http://127.0.0.1:5999", "KINDLY_REDIS_URL": ""}  # fmt: skip
    result = CliRunner().invoke(cli, ["demo", "--count", "6", "--kinds", "site", "--no-serve"],
                                env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def _login(client, password: str) -> int:
    csrf = csrf_from(client.get("/admin/login").get_data(as_text=True))
    response = client.post(
        "/admin/login", data={"csrf_token": csrf, "email": MANAGER, "password": password}
    )
    return response.status_code


def test_demo_prints_a_manager_login_that_works_and_changes_each_run(tmp_path):
    first = _demo(tmp_path)
    assert "Cockpit: http://127.0.0.1:5999/admin/login" in first
    (password,) = re.findall(rf"user {re.escape(MANAGER)}  password (\S+)", first)
    assert len(password) >= 16
    settings = make_settings(tmp_path / "var", KINDLY_BASE_URL="http://127.0.0.1:5999")
    with installed(settings) as ctx:
        client = front_client(ctx)
        assert _login(client, password) == 303  # signed in: on to the cockpit
        cockpit = client.get("/admin/")
        assert cockpit.status_code == 200 and "Demo campaign" in cockpit.get_data(as_text=True)
        with ctx.db.session() as session:
            user = session.scalar(select(User).where(User.email == MANAGER))
            assert (user.role, user.scope) == ("manager", {"creditors": [], "campaigns": ["demo"]})
            assert (
                session.scalar(select(Debtor.due_date).where(Debtor.reference == "DEMO-0001"))
                < dt.date.today()
            )
    second = _demo(tmp_path)
    (again,) = re.findall(rf"user {re.escape(MANAGER)}  password (\S+)", second)
    assert again != password
    with installed(settings) as ctx:
        client = front_client(ctx)
        assert _login(client, password) == 401  # the first one no longer opens anything
        assert _login(client, again) == 303
