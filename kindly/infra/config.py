"""Settings from KINDLY_* environment variables, each optional with an embedded default."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kindly.errors import ConfigError
from kindly.infra.files import make_private_dir
from kindly.infra.fsync import parse_fsync


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
    """Warm tracking hits and page views answered before Flask (web.debtor.fastlane)."""
    trusted_proxies: int = 0
    """Reverse proxies in front of the app whose X-Forwarded-For/-Proto are believed."""
    payments: str = "sandbox"
    """How debtors pay online: stripe, sandbox (test checkout, no money) or none (transfer)."""
    outbox: bool = False
    """KINDLY_OUTBOX=on: production may keep messages without a gateway in the outbox folder."""
    outbound_allow_private: bool = False
    """Development only: webhooks may go to http and private addresses (kindly.outbound.egress)."""
    metrics_port: int | None = None
    """KINDLY_METRICS_PORT: where `kindly serve` and `kindly worker` answer Prometheus (off
    when unset); a port of its own, never the public one (kindly.infra.metrics)."""
    metrics_host: str = "0.0.0.0"  # noqa: S104 - Prometheus scrapes from another host
    """KINDLY_METRICS_HOST: the address the metrics port listens on."""
    log_format: str = "text"
    """KINDLY_LOG_FORMAT: json (one object per line, production's default) or text."""
    otlp_endpoint: str | None = None
    """Where OpenTelemetry traces go (OTLP over HTTP); None: no tracing, at no cost."""
    journal: Path | None = None
    """The local event journal's folder (kindly.tracking.journal); None: hits go to Redis or
    the database synchronously. `kindly serve` turns it on by default."""
    journal_fsync: str = "100ms"
    """When journal writes are forced to disk: always, every N ms (100ms), or never."""
    journal_limit_mb: int = 1024
    """Unshipped journal size past which hits go the synchronous way (and an alarm is logged)."""
    journal_shipper: bool = True
    """Each web process runs a shipper thread (only one per folder ships at a time)."""
    clamd_url: str | None = None
    """KINDLY_CLAMD_URL: the clamd that scans dispute files (tcp://host:3310 or unix:///path);
    None: files are stored unscanned (kindly.disputes.scan)."""

    @property
    def jobs_in_process(self) -> bool:
        """True when no Redis is configured and jobs run in the calling process."""
        return not self.redis_url

    @property
    def payments_sandbox(self) -> bool:
        """True when the sandbox provider takes payments (no money moves)."""
        return self.payments == "sandbox"

    @property
    def payments_online(self) -> bool:
        """True when debtors can pay on the site (Stripe or the sandbox)."""
        return self.payments != "none"

    @property
    def test_banner(self) -> bool:
        """True when every page must say TEST: play money in production."""
        return self.payments == "sandbox" and self.environment == "production"


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
    make_private_dir(data_dir)
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

    trusted_proxies = _text(env, "KINDLY_TRUSTED_PROXIES") or "0"
    if not trusted_proxies.isdigit() or int(trusted_proxies) > 5:
        raise ConfigError(
            f"KINDLY_TRUSTED_PROXIES must be a number of proxy hops from 0 to 5, got "
            f"{trusted_proxies!r}"
        )
    stripe_secret_key = _text(env, "KINDLY_STRIPE_SECRET_KEY")
    outbox = (_text(env, "KINDLY_OUTBOX") or "off").lower()
    if outbox not in SWITCH:
        raise ConfigError(f"KINDLY_OUTBOX must be on or off, got {outbox!r}")
    allow_private = (_text(env, "KINDLY_OUTBOUND_ALLOW_PRIVATE") or "off").lower()
    if allow_private not in SWITCH:
        raise ConfigError(f"KINDLY_OUTBOUND_ALLOW_PRIVATE must be on or off, got {allow_private!r}")

    metrics_port = _text(env, "KINDLY_METRICS_PORT")
    if metrics_port is not None and (
        not metrics_port.isdigit() or not 0 < int(metrics_port) < 65536
    ):
        raise ConfigError(
            f"KINDLY_METRICS_PORT must be a port number from 1 to 65535, got {metrics_port!r}"
        )
    journal = _text(env, "KINDLY_JOURNAL") or "off"
    journal_dir = (
        None if SWITCH.get(journal.lower()) is False
        else data_dir / "journal" if SWITCH.get(journal.lower()) is True
        else Path(journal).resolve()
    )  # fmt: skip
    journal_fsync = _text(env, "KINDLY_JOURNAL_FSYNC") or "100ms"
    try:
        parse_fsync(journal_fsync)
    except ValueError as exc:
        raise ConfigError(f"KINDLY_JOURNAL_FSYNC: {exc}") from None
    journal_limit = _text(env, "KINDLY_JOURNAL_LIMIT_MB") or "1024"
    if not journal_limit.isdigit() or int(journal_limit) < 1:
        raise ConfigError(f"KINDLY_JOURNAL_LIMIT_MB must be a number of MB, got {journal_limit!r}")
    journal_shipper = (_text(env, "KINDLY_JOURNAL_SHIPPER") or "on").lower()
    if journal_shipper not in SWITCH:
        raise ConfigError(f"KINDLY_JOURNAL_SHIPPER must be on or off, got {journal_shipper!r}")

    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=_text(env, "KINDLY_REDIS_URL"),
        storage_url=storage_url,
        s3_endpoint_url=_text(env, "KINDLY_S3_ENDPOINT_URL"),
        s3_public_endpoint_url=_text(env, "KINDLY_S3_PUBLIC_ENDPOINT_URL"),
        base_url=base_url,
        secret_key=_secret_key(env, data_dir),
        stripe_secret_key=stripe_secret_key,
        stripe_webhook_secret=_text(env, "KINDLY_STRIPE_WEBHOOK_SECRET"),
        stripe_api_base=_text(env, "KINDLY_STRIPE_API_BASE"),
        smtp_url=_text(env, "KINDLY_SMTP_URL"),
        sms_webhook_url=_text(env, "KINDLY_SMS_WEBHOOK_URL"),
        webhook_token=_text(env, "KINDLY_WEBHOOK_TOKEN"),
        environment=_text(env, "KINDLY_ENV") or "development",
        s3_upload_attempts=int(s3_attempts),
        fast_lane=SWITCH[fast_lane],
        trusted_proxies=int(trusted_proxies),
        payments=_payments(env, stripe_secret_key),
        outbox=SWITCH[outbox],
        outbound_allow_private=SWITCH[allow_private],
        metrics_port=int(metrics_port) if metrics_port is not None else None,
        metrics_host=_text(env, "KINDLY_METRICS_HOST") or "0.0.0.0",  # noqa: S104
        log_format=read_log_format(env),
        otlp_endpoint=read_otlp_endpoint(env),
        journal=journal_dir,
        journal_fsync=journal_fsync,
        journal_limit_mb=int(journal_limit),
        journal_shipper=SWITCH[journal_shipper],
        clamd_url=_clamd_url(env),
    )


def _clamd_url(env: Mapping[str, str]) -> str | None:
    """KINDLY_CLAMD_URL: tcp://host:port or unix:///path, checked at start."""
    url = _text(env, "KINDLY_CLAMD_URL")
    if url and not (url.startswith("tcp://") or url.startswith("unix:///")):
        raise ConfigError(f"KINDLY_CLAMD_URL must be tcp://host:port or unix:///path, got {url!r}")
    return url


def read_log_format(env: Mapping[str, str] | None = None) -> str:
    """KINDLY_LOG_FORMAT (json or text); by default json in production, text elsewhere.

    Read on its own as well: the command line sets up its log before it loads the settings.
    """
    env = os.environ if env is None else env
    production = (_text(env, "KINDLY_ENV") or "development") == "production"
    value = (_text(env, "KINDLY_LOG_FORMAT") or ("json" if production else "text")).lower()
    if value not in ("json", "text"):
        raise ConfigError(f"KINDLY_LOG_FORMAT must be json or text, got {value!r}")
    return value


def read_otlp_endpoint(env: Mapping[str, str] | None = None) -> str | None:
    """KINDLY_OTLP_ENDPOINT, else OpenTelemetry's own OTEL_EXPORTER_OTLP_ENDPOINT: the base
    URL of an OTLP/HTTP collector (traces go to its /v1/traces); None turns tracing off."""
    env = os.environ if env is None else env
    value = _text(env, "KINDLY_OTLP_ENDPOINT") or _text(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
    if value is None:
        return None
    if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
        raise ConfigError(f"the OTLP endpoint must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


PAYMENTS = ("stripe", "sandbox", "none")


def _payments(env: Mapping[str, str], stripe_secret_key: str | None) -> str:
    """KINDLY_PAYMENTS, by default stripe when a Stripe key is set, else the sandbox."""
    mode = (_text(env, "KINDLY_PAYMENTS") or ("stripe" if stripe_secret_key else "sandbox")).lower()
    if mode not in PAYMENTS:
        raise ConfigError(f"KINDLY_PAYMENTS must be stripe, sandbox or none, got {mode!r}")
    if mode == "stripe" and not stripe_secret_key:
        raise ConfigError("KINDLY_PAYMENTS=stripe needs KINDLY_STRIPE_SECRET_KEY")
    return mode


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
    if urlsplit(settings.base_url).scheme != "https":
        raise ConfigError(
            "production needs an https KINDLY_BASE_URL (session cookies are only marked Secure "
            f"over https), got {settings.base_url!r}"
        )
    if settings.outbound_allow_private:
        raise ConfigError(
            "KINDLY_OUTBOUND_ALLOW_PRIVATE is for development: production sends webhooks "
            "only to public https addresses"
        )
    _refuse_known_secrets(settings, env)
    _check_payments_and_outbox(settings, env)


KNOWN_SECRETS = frozenset(
    {"kindly", "kindly-minio-secret", "minioadmin", "minio123", "postgres", "password",
     "secret", "changeme", "change-me", "admin", "root"}
)  # fmt: skip
"""Passwords that earlier compose files, MinIO and PostgreSQL images or tutorials used as
defaults: anyone can try them, so production refuses them (docs/security.md)."""


def _refuse_known_secrets(settings: Settings, env: Mapping[str, str]) -> None:
    """Refuse a production process whose database, Redis, S3 or secret key uses a known value."""
    found = []
    for name, url in (("KINDLY_DATABASE_URL", settings.database_url),
                      ("KINDLY_REDIS_URL", settings.redis_url or "")):  # fmt: skip
        password = urlsplit(url).password
        if password is not None and unquote(password).lower() in KNOWN_SECRETS:
            found.append(f"the password in {name}")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        value = _text(env, name)
        if value is not None and value.lower() in KNOWN_SECRETS:
            found.append(name)
    if settings.secret_key.lower() in KNOWN_SECRETS or len(set(settings.secret_key)) < 8:
        found.append("KINDLY_SECRET_KEY")
    if found:
        raise ConfigError(
            "production refuses well-known default secrets: set a strong value for "
            + ", ".join(found)
        )


def _check_payments_and_outbox(settings: Settings, env: Mapping[str, str]) -> None:
    """Production chooses its payment mode, and an outbox, explicitly (never by default)."""
    if not _text(env, "KINDLY_PAYMENTS"):
        raise ConfigError(
            "production needs KINDLY_PAYMENTS: stripe (with KINDLY_STRIPE_SECRET_KEY), none "
            "(bank transfer only) or sandbox (test payments, every page marked TEST)"
        )
    if settings.smtp_url and settings.sms_webhook_url:
        return  # every message has a gateway: nothing is kept in the outbox
    missing = " and ".join(
        name
        for name, value in (("KINDLY_SMTP_URL", settings.smtp_url),
                            ("KINDLY_SMS_WEBHOOK_URL", settings.sms_webhook_url))
        if not value
    )  # fmt: skip
    if not settings.outbox:
        raise ConfigError(
            f"production without {missing} would write messages to the outbox folder: "
            "set the gateway, or KINDLY_OUTBOX=on with KINDLY_DATA_DIR on a volume"
        )
    data_dir = _text(env, "KINDLY_DATA_DIR")
    if not data_dir or not Path(data_dir).is_absolute():
        raise ConfigError(
            "KINDLY_OUTBOX=on in production needs KINDLY_DATA_DIR set to the absolute path "
            "of a volume (the outbox is KINDLY_DATA_DIR/outbox)"
        )
