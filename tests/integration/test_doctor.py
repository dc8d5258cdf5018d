"""`kindly doctor` as an operator runs it: a healthy production installation on the real
PostgreSQL, Redis, S3 endpoint, SMTP server and SMS gateway passes every check; then each
check is broken for real, once, and must fail with its fix."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from kindly.cli.doctor import as_text
from kindly.doctor import Finding
from kindly.infra.config import load_settings
from kindly.infra.db import MIGRATIONS, Database
from tests.support import services
from tests.support.app import PORTFOLIO, installed, load_campaign

ROOT = Path(__file__).resolve().parents[2]
STRIPE_KEY = "sk_live_" + secrets.token_hex(16)
VITHKUQI = "\U00010570\U00010597\U00010570"  # a name in a script no installed font draws


class Accepting:
    """An SMTP handler that takes every message (the doctor sends none)."""

    async def handle_DATA(self, server, session, envelope):
        return "250 Message accepted"


class Gateway(BaseHTTPRequestHandler):
    """An SMS gateway: takes POSTs, answers anything else 405 as real gateways do."""

    def do_POST(self):
        self.send_response(200)
        self.end_headers()

    def do_HEAD(self):
        self.send_response(405)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[str]:
    """A real SMTP server (aiosmtpd) on a free loopback port."""
    controller = Controller(Accepting(), hostname="127.0.0.1", port=services.free_port())
    controller.start()
    yield f"smtp+insecure://127.0.0.1:{controller.port}"
    controller.stop()


@pytest.fixture(scope="module")
def sms_gateway() -> Iterator[str]:
    """An HTTP SMS gateway on a free loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sms"
    server.shutdown()
    server.server_close()


@pytest.fixture
def healthy(tmp_path, postgres_url, redis_url, s3_endpoint, s3_bucket, smtp_server, sms_gateway):
    """The environment of a production installation that lacks nothing, its database migrated
    and holding a campaign, its bucket created."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")}
    env.pop("LD_LIBRARY_PATH", None)
    env.update(
        PYTHONPATH=str(ROOT),
        KINDLY_ENV="production",
        KINDLY_DATA_DIR=str(tmp_path / "var"),
        KINDLY_SECRET_KEY=secrets.token_urlsafe(32),
        KINDLY_DATABASE_URL=postgres_url,
        KINDLY_BASE_URL="https://pay.example.org",
        KINDLY_REDIS_URL=redis_url,
        KINDLY_STORAGE_URL=f"s3://{s3_bucket}/kindly",
        KINDLY_S3_ENDPOINT_URL=s3_endpoint,
        KINDLY_PAYMENTS="stripe",
        KINDLY_STRIPE_SECRET_KEY=STRIPE_KEY,
        KINDLY_STRIPE_WEBHOOK_SECRET="whsec_" + secrets.token_hex(16),
        KINDLY_SMTP_URL=smtp_server,
        KINDLY_SMS_WEBHOOK_URL=sms_gateway,
    )
    with installed(load_settings(env)) as context:
        load_campaign(context)
    return env


def doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`kindly doctor` as its own process (library paths and the clock are the process's)."""
    return subprocess.run(
        [sys.executable, "-m", "kindly", "doctor", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def report(env: dict[str, str]) -> tuple[int, dict[str, dict[str, str]]]:
    """The exit code and the JSON report's findings by check name."""
    done = doctor(env, "--json")
    assert STRIPE_KEY not in done.stdout + done.stderr  # the key is never printed
    return done.returncode, {check["check"]: check for check in json.loads(done.stdout)["checks"]}


def fails(env: dict[str, str], check: str, finding: str, fix: str, status: str = "error") -> dict:
    """Assert that exactly `check` fails (as `status`), saying `finding` and printing `fix`;
    every other check that depends on nothing broken stays as the healthy one was."""
    code, findings = report(env)
    assert findings[check]["status"] == status, findings[check]
    assert finding in findings[check]["finding"]
    assert fix in findings[check]["fix"]
    others = {name: f["status"] for name, f in findings.items() if name != check}
    assert "error" not in others.values(), others
    assert code == (1 if status == "error" else 0)
    # the human report (its own process in the healthy and database tests) prints the fix
    text = as_text([Finding(**finding) for finding in findings.values()])
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[1:2] == [check])
    assert lines[at + 1].strip().startswith("fix: ") and fix in lines[at + 1], text
    return findings


def test_a_healthy_production_installation_passes_every_check(healthy):
    code, findings = report(healthy)
    assert code == 0
    assert {name: f["status"] for name, f in findings.items()} == dict.fromkeys(
        ["configuration", "production", "modes", "stripe", "database", "migrations", "clock",
         "redis", "storage", "smtp", "sms", "harfbuzz", "fonts", "ffmpeg"], "ok",
    )  # fmt: skip
    assert findings["stripe"]["finding"] == "live mode, with a webhook signing secret"
    assert "write, read and delete work" in findings["storage"]["finding"]
    assert "LATIN" in findings["fonts"]["finding"]
    text = doctor(healthy)
    assert text.returncode == 0
    assert "healthy: 0 error(s), 0 warning(s)" in text.stdout
    assert "fix:" not in text.stdout


def test_a_malformed_setting_is_the_one_error(healthy):
    healthy["KINDLY_PAYMENTS"] = "bitcoin"
    code, findings = report(healthy)
    assert code == 1
    assert findings == {"configuration": {
        "check": "configuration", "status": "error",
        "finding": "KINDLY_PAYMENTS must be stripe, sandbox or none, got 'bitcoin'",
        "fix": "correct the variable it names",
    }}  # fmt: skip


def test_production_without_https_cannot_start(healthy):
    healthy["KINDLY_BASE_URL"] = "http://pay.example.org"
    fails(healthy, "production", "production needs an https KINDLY_BASE_URL", "set what the")


def test_sandbox_payments_in_production(healthy):
    healthy["KINDLY_PAYMENTS"] = "sandbox"
    del healthy["KINDLY_STRIPE_SECRET_KEY"]
    fails(healthy, "modes", "payments are the sandbox", "KINDLY_PAYMENTS=stripe")


def test_a_stripe_test_key_in_production(healthy):
    healthy["KINDLY_STRIPE_SECRET_KEY"] = "sk_test_" + secrets.token_hex(16)
    findings = fails(healthy, "stripe", "production uses a Stripe test key", "sk_live_")
    assert healthy["KINDLY_STRIPE_SECRET_KEY"] not in json.dumps(findings)


def test_a_wrong_database_url(healthy):
    healthy["KINDLY_DATABASE_URL"] = healthy["KINDLY_DATABASE_URL"] + "_missing"
    code, findings = report(healthy)
    assert code == 1
    assert findings["database"]["status"] == "error"
    assert "does not exist" in findings["database"]["finding"]
    assert "check KINDLY_DATABASE_URL" in findings["database"]["fix"]
    for dependent in ("migrations", "clock", "fonts"):  # not errors of their own
        assert findings[dependent]["status"] == "skipped"
    assert [name for name, f in findings.items() if f["status"] == "error"] == ["database"]
    assert "fix: check KINDLY_DATABASE_URL" in doctor(healthy).stdout


def test_an_old_migration(healthy):
    from alembic import command
    from alembic.config import Config

    database = Database(healthy["KINDLY_DATABASE_URL"])
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "-1")
    database.dispose()
    fails(healthy, "migrations", "this Kindly needs", "run the migrations")


def test_a_clock_that_runs_ahead(healthy):
    import libfaketime

    library = Path(libfaketime.__file__).parent / "vendor/libfaketime/src/libfaketime.so.1"
    healthy.update(LD_PRELOAD=str(library), FAKETIME="+30s", FAKETIME_DONT_FAKE_MONOTONIC="1")
    findings = fails(healthy, "clock", "s ahead of the database server", "NTP", "warning")
    seconds = float(findings["clock"]["finding"].split("clock is ")[1].split(" s ")[0])
    assert 29 < seconds < 31


def test_redis_that_refuses(healthy):
    healthy["KINDLY_REDIS_URL"] = f"redis://127.0.0.1:{services.free_port()}/0"
    fails(healthy, "redis", "Redis unreachable", "check KINDLY_REDIS_URL")


def test_a_missing_bucket(healthy):
    healthy["KINDLY_STORAGE_URL"] = "s3://kindly-no-such-bucket/kindly"
    fails(healthy, "storage", "does not exist", "create the bucket")


def test_an_smtp_port_that_refuses(healthy):
    healthy["KINDLY_SMTP_URL"] = f"smtp+insecure://127.0.0.1:{services.free_port()}"
    fails(healthy, "smtp", "SMTP server unreachable", "check KINDLY_SMTP_URL")


def test_an_sms_gateway_port_that_refuses(healthy):
    healthy["KINDLY_SMS_WEBHOOK_URL"] = f"http://127.0.0.1:{services.free_port()}/sms"
    fails(healthy, "sms", "does not answer", "check KINDLY_SMS_WEBHOOK_URL")


def test_a_fake_harfbuzz_subset_library(healthy, tmp_path):
    fake = tmp_path / "lib"
    fake.mkdir()
    (fake / "libharfbuzz-subset.so.0").write_bytes(b"")  # found first, and not a library
    healthy["LD_LIBRARY_PATH"] = str(fake)
    fails(healthy, "harfbuzz", "no libharfbuzz-subset found", "apt-get install libharfbuzz-subset0")


def test_a_debtor_named_in_a_script_no_font_draws(healthy):
    with installed(load_settings(healthy)) as context:
        load_campaign(context, "spring", PORTFOLIO.replace("O'Brien", VITHKUQI))
    fails(healthy, "fonts", "no installed font draws VITHKUQI", "fonts-noto")


def test_no_ffmpeg_on_the_path(healthy, tmp_path):
    path = tmp_path / "bin"
    path.mkdir()
    (path / "fc-list").symlink_to(shutil.which("fc-list"))  # fonts stay checkable
    healthy.update(PATH=str(path), IMAGEIO_FFMPEG_EXE=str(tmp_path / "no-ffmpeg"))
    fails(healthy, "ffmpeg", "no working ffmpeg", "apt-get install ffmpeg")


def test_a_database_user_that_may_only_read(healthy):
    import psycopg

    url = healthy["KINDLY_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    role = f"kindly_reader_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    try:
        host = healthy["KINDLY_DATABASE_URL"].rpartition("@")[2]
        healthy["KINDLY_DATABASE_URL"] = f"postgresql+psycopg://{role}@{host}"
        fails(healthy, "database", f"{role} cannot read and write", "GRANT SELECT, INSERT")
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_a_redis_user_that_may_not_write(healthy):
    from redis import Redis

    admin = Redis.from_url(healthy["KINDLY_REDIS_URL"])
    user, password = f"kindly-reader-{secrets.token_hex(4)}", secrets.token_hex(16)
    admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"],
                      commands=["+ping", "+get", "+info", "+select", "+config|get"])  # fmt: skip
    try:
        host = healthy["KINDLY_REDIS_URL"].removeprefix("redis://")
        healthy["KINDLY_REDIS_URL"] = f"redis://{user}:{password}@{host}"
        findings = fails(healthy, "redis", "Redis refuses what Kindly needs", "ACL")
        assert password not in json.dumps(findings)
    finally:
        admin.acl_deluser(user)
        admin.close()
