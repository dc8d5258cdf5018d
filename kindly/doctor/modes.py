"""The doctor's checks of the configuration itself: production's rules, modes, the Stripe key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kindly.doctor import ERROR, OK, SKIPPED, WARNING, Finding
from kindly.errors import ConfigError
from kindly.infra.config import check_production

if TYPE_CHECKING:
    from kindly.doctor import Installation


def production(installation: Installation) -> Finding:
    """Would a production process start at all (the same rules `kindly serve` applies)?"""
    if not installation.production:
        return Finding(
            "production", SKIPPED,
            f"KINDLY_ENV is {installation.settings.environment!r}: production's rules do not apply",
            "set KINDLY_ENV=production on the installation debtors use",
        )  # fmt: skip
    try:
        check_production(installation.settings, installation.env)
    except ConfigError as exc:
        return Finding(
            "production", ERROR, f"web and workers refuse to start: {exc}",
            "set what the message names in the environment of every Kindly process",
        )  # fmt: skip
    return Finding("production", OK, "every setting production requires is set")


def modes(installation: Installation) -> Finding:
    """Development stand-ins in production: sandbox payments, the outbox, a folder, SQLite."""
    settings = installation.settings
    stand_ins: list[tuple[str, str]] = []  # (what is found, how to fix it)
    if settings.payments_sandbox:
        stand_ins.append(
            (
                "payments are the sandbox (no money moves, every page says TEST)",
                "KINDLY_PAYMENTS=stripe with a live key, or none for bank transfer only",
            )
        )
    missing = [
        (channel, variable)
        for channel, variable, url in (
            ("email", "KINDLY_SMTP_URL", settings.smtp_url),
            ("SMS", "KINDLY_SMS_WEBHOOK_URL", settings.sms_webhook_url),
        )
        if not url
    ]
    outbox = None
    if missing:
        outbox = (
            f"{' and '.join(c for c, _ in missing)} go to the outbox folder, nobody receives them",
            f"set {' and '.join(v for _, v in missing)} to the gateway",
        )
        if not settings.outbox:  # KINDLY_OUTBOX=on: production chose the outbox on purpose
            stand_ins.append(outbox)
    if settings.storage_url.startswith("file:"):
        stand_ins.append(
            (
                "artifacts are stored in a local folder (one machine only, no S3)",
                "KINDLY_STORAGE_URL=s3://bucket/prefix",
            )
        )
    if settings.database_url.startswith("sqlite:"):
        stand_ins.append(
            (
                "the database is SQLite (one machine, one writer at a time)",
                "KINDLY_DATABASE_URL=postgresql+psycopg://…",
            )
        )
    if not installation.production:
        found = [what for what, _ in stand_ins] + (
            [outbox[0]] if outbox and settings.outbox else []
        )
        if found:
            return Finding(
                "modes", OK, "development stand-ins (fine outside production): " + "; ".join(found)
            )
    elif stand_ins:
        return Finding(
            "modes",
            ERROR,
            "production on development stand-ins: " + "; ".join(w for w, _ in stand_ins),
            "; ".join(fix for _, fix in stand_ins),
        )
    elif outbox:
        return Finding(
            "modes",
            WARNING,
            f"KINDLY_OUTBOX=on: {outbox[0]}",
            f"collect the outbox folder's messages yourself, or {outbox[1]}",
        )
    storage = "S3" if settings.storage_url.startswith("s3:") else "a folder"
    database = "SQLite" if settings.database_url.startswith("sqlite:") else "PostgreSQL"
    messages = "the outbox" if outbox else "gateways"
    return Finding(
        "modes",
        OK,
        f"payments: {settings.payments}; messages: {messages}; "
        f"storage: {storage}; database: {database}",
    )


def stripe(installation: Installation) -> Finding:
    """Test or live, from the key's prefix (the key itself is never printed)."""
    settings = installation.settings
    key = settings.stripe_secret_key
    if not key:
        return Finding("stripe", SKIPPED, f"no Stripe key: payments are {settings.payments}")
    kind, _, rest = key.partition("_")
    mode = rest.split("_", 1)[0]
    if kind not in ("sk", "rk") or mode not in ("live", "test"):
        return Finding(
            "stripe", ERROR,
            "KINDLY_STRIPE_SECRET_KEY does not look like a Stripe secret or restricted key",
            "copy the secret key (sk_live_…) or a restricted key (rk_live_…) from the Stripe "
            "dashboard, not the publishable key (pk_…)",
        )  # fmt: skip
    webhook = settings.stripe_webhook_secret
    if mode == "test" and installation.production:
        return Finding(
            "stripe", ERROR, "production uses a Stripe test key: real cards are declined",
            "set the live secret key (sk_live_…) and the live endpoint's webhook secret",
        )  # fmt: skip
    if mode == "live" and not installation.production:
        return Finding(
            "stripe", WARNING, f"a live Stripe key outside production ({settings.environment})",
            "use a test key (sk_test_…) here, or set KINDLY_ENV=production",
        )  # fmt: skip
    if not webhook or not webhook.startswith("whsec_"):
        return Finding(
            "stripe", WARNING if not installation.production else ERROR,
            f"{mode} key, but no webhook signing secret (whsec_…): /webhooks/stripe answers 404",
            "set KINDLY_STRIPE_WEBHOOK_SECRET to the endpoint's signing secret",
        )  # fmt: skip
    return Finding("stripe", OK, f"{mode} mode, with a webhook signing secret")
