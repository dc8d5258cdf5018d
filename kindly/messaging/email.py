"""Email: HTML and plain-text parts from templates, tracked links, and SMTP or outbox delivery."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from kindly.campaigns.models import Campaign
from kindly.errors import ConfigError, ServiceUnavailable
from kindly.infra.config import Settings
from kindly.infra.paths import TEMPLATES
from renderer.texts import load_texts, one_stop
from renderer.view import DebtorView


@dataclass(frozen=True)
class Links:
    """The tracked links of one message (click redirects, open pixel, unsubscribe)."""

    site: str
    pay: str
    plan: str
    pixel: str
    unsubscribe: str
    offer: str = ""  # the settlement offer's page (shown only while an offer is in force)


def links(base_url: str, token: str, channel: str, *, unsubscribe: str) -> Links:
    """Links through the tracking routes, so opens and clicks are counted per channel; the
    unsubscribe link carries its own credential (kindly.messaging.unsublink), never
    the page token."""
    click = f"{base_url}/c/{token}?c={channel}&to="
    return Links(
        site=click + "site", pay=click + "pay", plan=click + "plan",
        pixel=f"{base_url}/o/{token}.gif", unsubscribe=f"{base_url}/u/{unsubscribe}?c={channel}",
        offer=click + "offer",
    )  # fmt: skip


@lru_cache(maxsize=1)
def _environment() -> Environment:
    """One Jinja environment for the email family (HTML escaped, text not)."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES / "email"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def texts_for(view: DebtorView) -> dict[str, str]:
    """The email texts in the debtor's language with the tone's variants resolved."""
    raw = one_stop(load_texts("email").for_lang(view.lang), creditor=view.creditor)
    values = {"creditor": view.creditor, "amount": view.amount, "due_date": view.due_date,
              "reference": view.reference, "offer_amount": view.offer_amount,
              "offer_until": view.offer_until}  # fmt: skip
    out = {}
    for key, text in raw.items():
        out[key] = text.format(**values)
    for key in ("subject", "intro", "closing"):
        out[key] = out[f"{key}_{view.tone}"]
        if view.overdue and f"{key}_{view.tone}_overdue" in out:
            out[key] = out[f"{key}_{view.tone}_overdue"]  # since when, and: pay now
    out["due_label"] = out["overdue_label"] if view.overdue else out["due_label"]
    return out


def compose_email(
    view: DebtorView,
    to: str,
    *,
    sender: str,
    reply_to: str | None,
    link: Links,
    message_id: str,
) -> EmailMessage:
    """A multipart/alternative message with List-Unsubscribe for one-click opt-out (RFC 8058)."""
    texts = texts_for(view)
    context = {"view": view, "t": texts, "links": link}
    env = _environment()
    message = EmailMessage()
    message["Subject"] = texts["subject"]
    message["From"] = sender
    message["To"] = formataddr((view.full_name, to))
    if reply_to:
        message["Reply-To"] = reply_to
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = f"<{link.unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = view.locale
    message.set_content(env.get_template("message.txt").render(context))
    message.add_alternative(env.get_template("message.html").render(context), subtype="html")
    return message


def _start_tls(client: smtplib.SMTP, host: str, port: int) -> None:
    """Upgrade to TLS, or refuse to send: the message carries the debtor's link and amount."""
    client.ehlo()
    if not client.has_extn("starttls"):
        raise ConfigError(
            f"the SMTP server at {host}:{port} does not offer STARTTLS: use smtps://, or "
            "smtp+insecure:// for a relay on a trusted network"
        )
    client.starttls(context=ssl.create_default_context())
    client.ehlo()


def new_message_id(key: str, base_url: str) -> str:
    """A Message-ID naming the send, so a duplicate is recognisable downstream."""
    domain = urlsplit(base_url).hostname or "kindly.invalid"
    return make_msgid(idstring=key, domain=domain)


SMTP_SCHEMES = ("smtp", "smtps", "smtp+insecure")
"""smtp:// upgrades with STARTTLS (required), smtps:// is TLS from the first byte, and
smtp+insecure:// sends in clear: only for a relay on the same host or a trusted network."""


def send_email(message: EmailMessage, smtp_url: str | None, outbox: Path, key: str) -> None:
    """Deliver over SMTP (smtp:// with STARTTLS, smtps://, smtp+insecure://) or write an .eml
    to the outbox."""
    if not smtp_url:
        outbox.mkdir(parents=True, exist_ok=True)
        (outbox / f"{key}.eml").write_bytes(bytes(message))
        return
    client = open_smtp(smtp_url)
    try:
        with client:
            client.send_message(message)
    except OSError as exc:
        if not _unreachable(exc):
            raise
        host, port = smtp_address(smtp_url)
        raise ServiceUnavailable(f"SMTP server unreachable at {host}:{port}: {exc}") from None


def _unreachable(exc: BaseException) -> bool:
    """Whether an SMTP failure means the server is away (the send may work later), not that
    it answered with a refusal (smtplib's errors are all OSErrors)."""
    return isinstance(exc, OSError) and not isinstance(
        exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException
    )


def smtp_address(smtp_url: str) -> tuple[str, int]:
    """The host and port a KINDLY_SMTP_URL names (25, or 465 for smtps://, by default)."""
    url = urlsplit(smtp_url)
    return url.hostname or "localhost", url.port or (465 if url.scheme == "smtps" else 25)


def open_smtp(smtp_url: str, timeout: float = 30) -> smtplib.SMTP:
    """A client connected to the KINDLY_SMTP_URL server: upgraded with STARTTLS for smtp://,
    logged in when the URL has a user; ServiceUnavailable when the server cannot be reached."""
    url = urlsplit(smtp_url)
    if url.scheme not in SMTP_SCHEMES:
        raise ConfigError("KINDLY_SMTP_URL must start with smtp://, smtps:// or smtp+insecure://")
    if parse_qs(url.query).get("starttls", ["1"])[0].lower() in ("0", "false", "no", "off"):
        raise ConfigError("KINDLY_SMTP_URL: to send without TLS, say so with smtp+insecure://")
    host, port = smtp_address(smtp_url)
    client: smtplib.SMTP | None = None
    try:
        if url.scheme == "smtps":
            client = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        if url.scheme == "smtp":
            _start_tls(client, host, port)
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
    except BaseException as exc:
        if client is not None:
            client.close()
        if _unreachable(exc):
            raise ServiceUnavailable(f"SMTP server unreachable at {host}:{port}: {exc}") from None
        raise
    return client


def sender(campaign: Campaign, settings: Settings, name: str) -> str:
    """The From header: the debtor's creditor's sender name at the campaign's `email_from`
    address (else no-reply at the site's host); the address stays ours, so SPF and DKIM hold."""
    configured = parseaddr((campaign.settings or {}).get("email_from") or "")[1]
    host = urlsplit(settings.base_url).hostname or "localhost"
    domain = host if "." in host and not host.replace(".", "").isdigit() else "localhost"
    return formataddr((name or campaign.name, configured or f"no-reply@{domain}"))
