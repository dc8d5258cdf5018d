"""Settings from KINDLY_* environment variables, each optional with an embedded default."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kindly.core.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one Kindly process."""

    data_dir: Path
    database_url: str
    redis_url: str | None
    storage_url: str
    s3_endpoint_url: str | None
    s3_public_endpoint_url: str | None
    base_url: str
    secret_key: str
    stripe_secret_key: str | None
    stripe_webhook_secret: str | None
    stripe_api_base: str | None
    smtp_url: str | None
    sms_webhook_url: str | None
    webhook_token: str | None
    environment: str
    s3_upload_attempts: int = 4
    """Tries per artifact upload when S3 cannot be reached, with exponential backoff between."""
    fast_lane: bool = True
    """Warm tracking hits and page views answered before Flask (kindly.web.fastlane)."""
    outbound_allow_private: bool = False
    """Development only: webhooks may go to http and private addresses (kindly.core.egress)."""

    @property
    def jobs_in_process(self) -> bool:
        """True when no Redis is configured and jobs run in the calling process."""
        return not self.redis_url

    @property
    def payments_sandbox(self) -> bool:
        """True when no Stripe key is configured and the sandbox provider takes payments."""
        return not self.stripe_secret_key


SWITCH = {"on": True, "1": True, "true": True, "yes": True,
          "off": False, "0": False, "false": False, "no": False}  # fmt: skip


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _secret_key(env: Mapping[str, str], data_dir: Path) -> str:
    """The configured key, or one generated once and kept in the data folder."""
    configured = _text(env, "KINDLY_SECRET_KEY")
    if configured:
        if len(configured) < 16:
            raise ConfigError("KINDLY_SECRET_KEY must be at least 16 characters long")
        return configured
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL so two processes starting together agree on one key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key)
    return key


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    data_dir = Path(_text(env, "KINDLY_DATA_DIR") or "./var").resolve()

    database_url = _text(env, "KINDLY_DATABASE_URL") or f"sqlite:///{data_dir / 'kindly.db'}"
    if database_url.startswith("postgresql://"):
        # SQLAlchemy would pick psycopg2 for a bare scheme; we ship psycopg 3.
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    if not database_url.startswith(("sqlite:", "postgresql+psycopg:")):
        raise ConfigError(
            "KINDLY_DATABASE_URL must start with sqlite:// or postgresql+psycopg:// "
            f"(got scheme {database_url.split(':', 1)[0]!r})"
        )

    storage_url = _text(env, "KINDLY_STORAGE_URL") or (data_dir / "storage").as_uri()
    if urlsplit(storage_url).scheme not in ("file", "s3"):
        raise ConfigError("KINDLY_STORAGE_URL must be a file:// folder or s3://bucket/prefix")

    base_url = (_text(env, "KINDLY_BASE_URL") or "http://127.0.0.1:5000").rstrip("/")
    if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
        raise ConfigError(f"KINDLY_BASE_URL must be an http(s) origin, got {base_url!r}")

    s3_attempts = _text(env, "KINDLY_S3_UPLOAD_ATTEMPTS") or "4"
    if not s3_attempts.isdigit() or not 1 <= int(s3_attempts) <= 10:
        raise ConfigError(
            f"KINDLY_S3_UPLOAD_ATTEMPTS must be a number from 1 to 10, got {s3_attempts!r}"
        )

    fast_lane = (_text(env, "KINDLY_FAST_LANE") or "on").lower()
    if fast_lane not in SWITCH:
        raise ConfigError(f"KINDLY_FAST_LANE must be on or off, got {fast_lane!r}")

    allow_private = (_text(env, "KINDLY_OUTBOUND_ALLOW_PRIVATE") or "off").lower()
    if allow_private not in SWITCH:
        raise ConfigError(f"KINDLY_OUTBOUND_ALLOW_PRIVATE must be on or off, got {allow_private!r}")

    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=_text(env, "KINDLY_REDIS_URL"),
        storage_url=storage_url,
        s3_endpoint_url=_text(env, "KINDLY_S3_ENDPOINT_URL"),
        s3_public_endpoint_url=_text(env, "KINDLY_S3_PUBLIC_ENDPOINT_URL"),
        base_url=base_url,
        secret_key=_secret_key(env, data_dir),
        stripe_secret_key=_text(env, "KINDLY_STRIPE_SECRET_KEY"),
        stripe_webhook_secret=_text(env, "KINDLY_STRIPE_WEBHOOK_SECRET"),
        stripe_api_base=_text(env, "KINDLY_STRIPE_API_BASE"),
        smtp_url=_text(env, "KINDLY_SMTP_URL"),
        sms_webhook_url=_text(env, "KINDLY_SMS_WEBHOOK_URL"),
        webhook_token=_text(env, "KINDLY_WEBHOOK_TOKEN"),
        environment=_text(env, "KINDLY_ENV") or "development",
        s3_upload_attempts=int(s3_attempts),
        fast_lane=SWITCH[fast_lane],
        outbound_allow_private=SWITCH[allow_private],
    )


def check_production(settings: Settings, env: Mapping[str, str] | None = None) -> None:
    """Refuse to start a production process that relies on a development default."""
    if settings.environment != "production":
        return
    env = os.environ if env is None else env
    missing = [
        name
        for name in ("KINDLY_SECRET_KEY", "KINDLY_DATABASE_URL", "KINDLY_BASE_URL")
        if not _text(env, name)
    ]
    if missing:
        raise ConfigError("production needs " + ", ".join(missing))
    if settings.stripe_secret_key and not settings.stripe_webhook_secret:
        raise ConfigError("KINDLY_STRIPE_WEBHOOK_SECRET is required with KINDLY_STRIPE_SECRET_KEY")
    if settings.outbound_allow_private:
        raise ConfigError(
            "KINDLY_OUTBOUND_ALLOW_PRIVATE is for development: production sends webhooks "
            "only to public https addresses"
        )
