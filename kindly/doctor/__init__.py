"""`kindly doctor`: checks an installation and says how to fix each problem it finds.

Every check returns one `Finding`: a status, one line saying what was found, and the fix.
Checks never change anything an operator relies on: no migration, no bucket created, no
message sent (the storage and Redis probes write one object or key and remove it again).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from kindly.errors import ConfigError, ServiceUnavailable
from kindly.infra.config import Settings, load_settings
from kindly.infra.db import Database

OK, WARNING, ERROR, SKIPPED = "ok", "warning", "error", "skipped"
STATUSES = (OK, WARNING, ERROR, SKIPPED)
"""skipped: the check does not apply here (no Redis configured) or could not run because a
check it depends on failed (the migrations when the database is unreachable)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    """The outcome of one check: what was found, and what to do about it."""

    check: str
    status: str
    finding: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        """The finding as plain JSON-ready data."""
        return asdict(self)


Check = Callable[["Installation"], Finding]


class Installation:
    """What the checks look at: the settings, the environment, and the database once."""

    def __init__(self, settings: Settings, env: Mapping[str, str]):
        self.settings = settings
        self.env = env
        self._database = None
        self.database_error: str | None = None

    @property
    def production(self) -> bool:
        """Whether this is a production installation (KINDLY_ENV=production)."""
        return self.settings.environment == "production"

    def database(self):
        """The database, connected once; None (with `database_error`) when it cannot be."""
        if self._database is None and self.database_error is None:
            database = Database(self.settings.database_url)
            try:
                database.check()
            except ServiceUnavailable as exc:
                database.dispose()
                self.database_error = str(exc)
            else:
                self._database = database
        return self._database

    def close(self) -> None:
        """Release the database connections."""
        if self._database is not None:
            self._database.dispose()


def checks() -> tuple[Check, ...]:
    """Every check, in the order the report lists them."""
    from kindly.doctor import fonts, gateways, host, modes, services

    return (
        modes.production,
        modes.modes,
        modes.stripe,
        services.database,
        services.migrations,
        services.clock,
        services.redis,
        services.storage,
        gateways.smtp,
        gateways.sms,
        host.harfbuzz,
        fonts.fonts,
        host.ffmpeg,
    )


def examine(env: Mapping[str, str] | None = None) -> list[Finding]:
    """Run every check against the installation `env` (default: this process's) describes."""
    env = os.environ if env is None else env
    try:
        settings = load_settings(env)
    except ConfigError as exc:
        return [
            Finding("configuration", ERROR, _private(str(exc)), "correct the variable it names")
        ]
    installation = Installation(settings, env)
    findings = [Finding("configuration", OK, f"settings read ({settings.environment})")]
    try:
        for check in checks():
            findings.append(_run(check, installation))
    finally:
        installation.close()
    return findings


PASSWORD_IN_URL = re.compile(r"(://[^/@\s:]*):[^@\s/]*@")
STRIPE_KEY = re.compile(r"\b(sk|rk|pk|whsec)_(?:(live|test)_)?[A-Za-z0-9]+")


def _private(text: str) -> str:
    """The text without a URL's password or a Stripe key (findings are printed and shipped)."""
    text = PASSWORD_IN_URL.sub(r"\1:***@", text)
    return STRIPE_KEY.sub(lambda m: f"{m[1]}_{m[2] + '_' if m[2] else ''}…", text)


def _run(check: Check, installation: Installation) -> Finding:
    """One check; a check that breaks is an error of its own, not the end of the report."""
    name = check.__name__
    try:
        finding = check(installation)
    except Exception as exc:
        log.debug("check %s failed", name, exc_info=True)
        first_line = (str(exc).strip().splitlines() or [""])[0]
        finding = Finding(
            name, ERROR, f"the check itself failed: {type(exc).__name__}: {first_line}",
            "run `kindly -v doctor` for the details and report it if it is not your setup",
        )  # fmt: skip
    return Finding(finding.check, finding.status, _private(finding.finding), finding.fix)


def failed(findings: list[Finding]) -> bool:
    """Whether any finding is an error (the command then exits 1; warnings do not)."""
    return any(finding.status == ERROR for finding in findings)
