"""SMS: counting GSM-7 / UCS-2 segments, and delivery through an HTTP gateway or the outbox."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kindly.errors import ServiceUnavailable

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet: one septet each."""
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
"""Reached through the escape code: two septets each, never split across parts."""


@dataclass(frozen=True)
class SmsCount:
    """How a text travels: its encoding, its length in units, and how many parts it takes."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: int


_PLAIN = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2013": "-",
                        "\u2014": "-", "\u2019": "'", "\u2018": "'", "\u201c": '"',
                        "\u201d": '"', "\u2026": "..."})  # fmt: skip
"""Typography that would force the whole text into UCS-2, and its plain equivalent."""


def plain(text: str) -> str:
    """The text with no-break spaces, dashes and curly quotes made GSM-7 friendly."""
    return text.translate(_PLAIN)


def is_gsm7(text: str) -> bool:
    """Whether every character fits the GSM-7 alphabet (with its extension table)."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def count(text: str) -> SmsCount:
    """Segments as a phone network counts them: 160/153 septets (GSM-7) or 70/67 (UCS-2)."""
    if is_gsm7(text):
        costs = [2 if c in GSM7_EXTENSION else 1 for c in text]
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        costs = [2 if ord(c) > 0xFFFF else 1 for c in text]  # surrogate pairs stay together
        single, multi, encoding = 70, 67, "UCS-2"
    units = sum(costs)
    if units <= single:
        return SmsCount(encoding, units, 1 if units else 0)
    parts, room = 1, multi
    for cost in costs:
        if cost > room:
            parts, room = parts + 1, multi
        room -= cost
    return SmsCount(encoding, units, parts)


@dataclass(frozen=True)
class Sms:
    """One text message to one phone number."""

    to: str
    text: str
    reference: str  # the idempotency key the gateway may use to drop duplicates

    @property
    def parts(self) -> int:
        """How many segments it is billed as."""
        return count(self.text).parts


def send_sms(sms: Sms, webhook_url: str | None, outbox: Path) -> str:
    """POST the message as JSON to the gateway, or write it to the outbox; returns an id."""
    payload = {"to": sms.to, "text": sms.text, "reference": sms.reference,
               "encoding": count(sms.text).encoding, "parts": sms.parts}  # fmt: skip
    if not webhook_url:
        outbox.mkdir(parents=True, exist_ok=True)
        path = outbox / f"{sms.reference}.sms.json"
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
        return sms.reference
    request = urllib.request.Request(  # noqa: S310 - the operator configures the URL
        webhook_url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": sms.reference},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise ServiceUnavailable(f"SMS gateway answered {exc.code}") from None
        raise ValueError(f"SMS gateway refused the message: {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise ServiceUnavailable(f"SMS gateway unreachable: {exc}") from None
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        answer = {}
    return str(answer.get("id") or sms.reference) if isinstance(answer, dict) else sms.reference
