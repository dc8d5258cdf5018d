"""`kindly doctor` without services: the embedded defaults, the Stripe key's mode, production's
modes, an ffmpeg without the encoders, and nothing secret in a finding."""

from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner

from kindly.cli import cli
from kindly.doctor import Installation, examine, fonts, host, modes
from kindly.doctor import _private as private
from kindly.infra.config import load_settings
from tests.support.app import installed, make_settings

PRODUCTION = {
    "KINDLY_ENV": "production",
    "KINDLY_SECRET_KEY": "a-strong-key-0123456789-abcdefgh",
    "KINDLY_DATABASE_URL": "postgresql+psycopg://kindly:pw-7f3a9@db.internal/kindly",
    "KINDLY_BASE_URL": "https://pay.example.org",
    "KINDLY_STORAGE_URL": "s3://kindly-artifacts/prod",
    "KINDLY_PAYMENTS": "stripe",
    "KINDLY_STRIPE_SECRET_KEY": "sk_live_51Habcdefghijklmnop",
    "KINDLY_STRIPE_WEBHOOK_SECRET": "whsec_abcdefghijklmnop",
    "KINDLY_SMTP_URL": "smtp://mail.internal:587",
    "KINDLY_SMS_WEBHOOK_URL": "https://sms.example.org/send",
}


def installation(tmp_path, **env: str) -> Installation:
    values = {"KINDLY_DATA_DIR": str(tmp_path / "var"), **env}
    return Installation(load_settings(values), values)


def test_the_embedded_defaults_are_healthy_once_migrated(tmp_path):
    env = {"KINDLY_DATA_DIR": str(tmp_path / "var")}
    with installed(make_settings(tmp_path / "var")):
        findings = {finding.check: finding for finding in examine(env)}
    assert {f.status for f in findings.values()} <= {"ok", "skipped"}, findings
    assert findings["migrations"].status == "ok"
    assert findings["modes"].finding.startswith("development stand-ins")


def test_a_database_nobody_migrated_fails_with_the_way_to_migrate(tmp_path, monkeypatch):
    monkeypatch.setenv("KINDLY_DATA_DIR", str(tmp_path / "var"))
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 1
    assert "ERROR  migrations     the database is at no revision" in result.output
    assert "fix: run the migrations" in result.output
    assert "not healthy: 1 error(s)" in result.output


@pytest.mark.parametrize(
    ("env", "status", "says"),
    [
        ({}, "ok", "live mode, with a webhook signing secret"),
        ({"KINDLY_STRIPE_SECRET_KEY": "rk_live_51Hrestricted"}, "ok", "live mode"),
        ({"KINDLY_STRIPE_SECRET_KEY": "sk_test_51Habcdefghij"}, "error", "test key"),
        ({"KINDLY_STRIPE_SECRET_KEY": "pk_live_51Habcdefghij"}, "error", "does not look like"),
        ({"KINDLY_STRIPE_WEBHOOK_SECRET": ""}, "error", "no webhook signing secret"),
        ({"KINDLY_ENV": "development"}, "warning", "a live Stripe key outside production"),
    ],
)
def test_the_stripe_key_mode_comes_from_its_prefix(tmp_path, env, status, says):
    values = PRODUCTION | env
    finding = modes.stripe(installation(tmp_path, **values))
    assert (finding.status, says in finding.finding) == (status, True), finding
    assert values["KINDLY_STRIPE_SECRET_KEY"][8:] not in finding.finding + finding.fix


def test_production_modes(tmp_path):
    assert modes.modes(installation(tmp_path, **PRODUCTION)).status == "ok"
    sandbox = modes.modes(installation(tmp_path, **(PRODUCTION | {"KINDLY_PAYMENTS": "sandbox"})))
    assert sandbox.status == "error" and "sandbox" in sandbox.finding
    local = PRODUCTION | {"KINDLY_STORAGE_URL": "", "KINDLY_DATABASE_URL": "sqlite:///x.db"}
    both = modes.modes(installation(tmp_path, **local))
    assert both.status == "error"
    assert "local folder" in both.finding and "SQLite" in both.finding
    assert "KINDLY_STORAGE_URL=s3://" in both.fix
    outbox = PRODUCTION | {"KINDLY_SMS_WEBHOOK_URL": "", "KINDLY_OUTBOX": "on"}
    kept = modes.modes(installation(tmp_path, **outbox))
    assert (kept.status, kept.finding) == (
        "warning", "KINDLY_OUTBOX=on: SMS go to the outbox folder, nobody receives them"
    )  # fmt: skip
    refused = modes.modes(installation(tmp_path, **(outbox | {"KINDLY_OUTBOX": "off"})))
    assert refused.status == "error"


def test_an_ffmpeg_without_libx264(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\necho 'Encoders:'\necho ' V....D libopenh264  OpenH264'\n"
        "echo ' A....D aac          AAC (Advanced Audio Coding)'\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    finding = host.ffmpeg(installation(tmp_path))
    assert finding.status == "error"
    assert finding.finding == f"{fake} lacks the encoder(s) libx264: videos cannot render"
    assert "apt-get install ffmpeg" in finding.fix


def test_no_password_or_stripe_key_in_a_finding():
    said = private(
        "database unreachable (postgresql+psycopg://kindly:s3cr3t@db/kindly) with "
        "sk_live_51Habc and whsec_xyz"
    )
    assert said == (
        "database unreachable (postgresql+psycopg://kindly:***@db/kindly) with sk_live_… "
        "and whsec_…"
    )  # fmt: skip


def test_scripts_and_font_ranges():
    assert fonts._scripts("ΩμέγαАнна山田Ali") == "CJK UNIFIED, CYRILLIC, GREEK, LATIN"
    ranges = [(0x20, 0x7E), (0x400, 0x4FF)]
    assert fonts._within(0x41, ranges) and fonts._within(0x4FF, ranges)
    assert not fonts._within(0x7F, ranges) and not fonts._within(0x10570, ranges)
