"""Production refuses development defaults: an http base URL, well-known secrets, open folders."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kindly.errors import ConfigError
from kindly.infra.config import check_production, load_settings

STRONG = "kP3v9-Xq7LmZ2wR8tN4yB6cD1fG5hJ0s"


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """A production environment that passes every check; tests change one value."""
    env = {
        "KINDLY_ENV": "production",
        "KINDLY_DATA_DIR": str(tmp_path / "data"),
        "KINDLY_SECRET_KEY": STRONG,
        "KINDLY_DATABASE_URL": f"postgresql+psycopg://kindly:{STRONG}@db:5432/kindly",
        "KINDLY_REDIS_URL": f"redis://:{STRONG}@redis:6379/0",
        "KINDLY_BASE_URL": "https://pay.example.com",
        "KINDLY_PAYMENTS": "none",
        "KINDLY_SMTP_URL": "smtp://mail.example.com:587",
        "KINDLY_SMS_WEBHOOK_URL": "https://sms.example.com/send",
        "AWS_ACCESS_KEY_ID": "kindly-4f2a",
        "AWS_SECRET_ACCESS_KEY": STRONG,
    }
    env.update(overrides)
    return env


def check(env: dict[str, str]) -> None:
    check_production(load_settings(env), env)


def test_a_complete_production_environment_starts(tmp_path):
    check(production_env(tmp_path))


def test_production_refuses_an_http_base_url(tmp_path):
    with pytest.raises(ConfigError, match="https KINDLY_BASE_URL"):
        check(production_env(tmp_path, KINDLY_BASE_URL="http://pay.example.com"))


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("KINDLY_DATABASE_URL", "postgresql+psycopg://kindly:kindly@postgres:5432/kindly",
         "KINDLY_DATABASE_URL"),
        ("KINDLY_REDIS_URL", "redis://:password@redis:6379/0", "KINDLY_REDIS_URL"),
        ("AWS_SECRET_ACCESS_KEY", "kindly-minio-secret", "AWS_SECRET_ACCESS_KEY"),
        ("AWS_SECRET_ACCESS_KEY", "minioadmin", "AWS_SECRET_ACCESS_KEY"),
        ("AWS_ACCESS_KEY_ID", "minioadmin", "AWS_ACCESS_KEY_ID"),
        ("KINDLY_SECRET_KEY", "aaaaaaaaaaaaaaaaaaaa", "KINDLY_SECRET_KEY"),
    ],
)  # fmt: skip
def test_production_refuses_well_known_secrets(tmp_path, name, value, named):
    with pytest.raises(ConfigError, match=named):
        check(production_env(tmp_path, **{name: value}))


def test_development_keeps_its_defaults(tmp_path):
    env = {"KINDLY_DATA_DIR": str(tmp_path / "data"), "KINDLY_BASE_URL": "http://127.0.0.1:5000"}
    check(env)  # nothing refused outside production


def test_the_data_folder_is_created_private(tmp_path):
    data = tmp_path / "new" / "var"
    settings = load_settings({"KINDLY_DATA_DIR": str(data)})  # generates the secret key there
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "secret_key").stat().st_mode) == 0o600
    assert settings.secret_key


def test_the_sqlite_folder_and_storage_folder_are_private(tmp_path):
    from kindly.infra.db import Database
    from kindly.infra.storage import LocalStorage

    Database(f"sqlite:///{tmp_path / 'db' / 'kindly.db'}")
    LocalStorage(tmp_path / "files" / "storage").ensure()
    for folder in ("db", "files", "files/storage"):
        assert stat.S_IMODE((tmp_path / folder).stat().st_mode) == 0o700, folder


@pytest.mark.slow  # starts the kindly command as its own process
def test_workers_and_commands_refuse_what_the_web_front_refuses(tmp_path):
    import subprocess
    import sys

    env = production_env(tmp_path, KINDLY_BASE_URL="http://pay.example.com")
    env["KINDLY_DATABASE_URL"] = f"sqlite:///{tmp_path / 'kindly.db'}"
    for args in (["worker", "--burst"], ["stats", "winter"]):
        result = subprocess.run(
            [sys.executable, "-m", "kindly", *args], env=env, capture_output=True, text=True
        )
        assert result.returncode == 1, args
        assert "error: production needs an https KINDLY_BASE_URL" in result.stderr, args
