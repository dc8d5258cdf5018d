"""The doctor's checks of the message gateways: SMTP (connect and EHLO) and the SMS webhook.

Nothing is sent: SMTP gets EHLO (STARTTLS and a login when the URL asks for them) and QUIT,
the SMS gateway a HEAD request (a POST would send a message).
"""

from __future__ import annotations

import smtplib
import urllib.error
import urllib.request
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kindly.doctor import ERROR, OK, SKIPPED, WARNING, Finding
from kindly.errors import ConfigError, ServiceUnavailable

if TYPE_CHECKING:
    from kindly.doctor import Installation

TIMEOUT_SECONDS = 10.0


def smtp(installation: Installation) -> Finding:
    """The SMTP server answers EHLO, with TLS and a login when KINDLY_SMTP_URL asks for them."""
    from kindly.messaging.email import open_smtp, smtp_address

    url = installation.settings.smtp_url
    if not url:
        return _outbox("smtp", "KINDLY_SMTP_URL", "email", installation)
    host, port = smtp_address(url)
    fix = f"check KINDLY_SMTP_URL and that the server at {host}:{port} accepts this host"
    try:
        with open_smtp(url, timeout=TIMEOUT_SECONDS) as client:
            code, banner = client.ehlo()
            if code != 250:
                return Finding("smtp", ERROR, f"{host}:{port} answers EHLO with {code}", fix)
            name = banner.decode("utf-8", "replace").splitlines()[0] if banner else host
    except ServiceUnavailable as exc:
        return Finding("smtp", ERROR, str(exc), fix)
    except ConfigError as exc:
        return Finding("smtp", ERROR, str(exc), "correct KINDLY_SMTP_URL")
    except smtplib.SMTPAuthenticationError as exc:
        return Finding(
            "smtp", ERROR, f"{host}:{port} refuses the login ({exc.smtp_code})",
            "correct the user and password in KINDLY_SMTP_URL",
        )  # fmt: skip
    except smtplib.SMTPException as exc:
        return Finding("smtp", ERROR, f"{host}:{port}: {exc}", fix)
    how = {"smtp": "STARTTLS", "smtps": "TLS", "smtp+insecure": "no TLS"}[urlsplit(url).scheme]
    return Finding("smtp", OK, f"{name} at {host}:{port} answers EHLO ({how})")


def sms(installation: Installation) -> Finding:
    """The SMS gateway's URL answers over HTTP (any status below 500)."""
    url = installation.settings.sms_webhook_url
    if not url:
        return _outbox("sms", "KINDLY_SMS_WEBHOOK_URL", "SMS", installation)
    return _http_gateway("sms", "KINDLY_SMS_WEBHOOK_URL", url)


def _http_gateway(name: str, variable: str, url: str) -> Finding:
    """HEAD the gateway: any HTTP answer shows it is there; 5xx that it is not well."""
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    fix = f"check {variable} and that the gateway at {where} accepts this host"
    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 - the operator's URL
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Finding(name, ERROR, f"the gateway at {where} does not answer: {reason}", fix)
    except ValueError as exc:
        return Finding(name, ERROR, f"{variable} is not a URL: {exc}", f"correct {variable}")
    if status >= 500:
        return Finding(name, WARNING, f"the gateway at {where} answers HTTP {status}", fix)
    return Finding(name, OK, f"the gateway at {where} answers (HTTP {status} to HEAD)")


def _outbox(name: str, variable: str, what: str, installation: Installation) -> Finding:
    """No gateway: messages go to the outbox folder (the `modes` check judges production)."""
    status = WARNING if installation.production else SKIPPED
    return Finding(
        name, status, f"no {variable}: {what} messages go to the outbox folder",
        f"set {variable} to the gateway" if status == WARNING else "",
    )  # fmt: skip
