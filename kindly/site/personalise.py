"""From a debtor row to the plain, formatted DebtorView the renderers take."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date

from kindly.campaigns.logo import data_uri, stored_key
from kindly.campaigns.models import Campaign, Debtor
from kindly.infra.storage import Storage
from kindly.money import format_minor
from kindly.payments import allocation, ledger
from renderer.texts import LANGUAGES
from renderer.view import DebtorView

FALLBACK_LOCALE = "en-GB"
POSTCODE_LAST = frozenset({"GB", "IE"})
"""Countries whose addresses end with the postcode on a line of its own."""


def resolve_locale(debtor: Debtor, campaign: Campaign) -> tuple[str, str, Locale]:
    """The debtor's locale (or the campaign's), the text language, and Babel's Locale."""
    for candidate in (debtor.locale, campaign.default_locale, FALLBACK_LOCALE):
        if not candidate:
            continue
        try:
            babel = Locale.parse(candidate.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            continue
        lang = babel.language if babel.language in LANGUAGES else "en"
        return candidate, lang, babel
    raise AssertionError("the fallback locale always parses")


def greeting(lang: str, salutation: str | None, first: str | None, last: str) -> str:
    """A polite opening line in the debtor's language."""
    full = f"{first} {last}".strip() if first else last
    title = (salutation or "").strip()
    if lang == "de":
        if title.lower() == "frau":
            return f"Sehr geehrte Frau {last},"
        if title.lower() == "herr":
            return f"Sehr geehrter Herr {last},"
        return f"Guten Tag {title + ' ' + last if title else full},"
    if lang == "it":
        return f"Gentile {title + ' ' + last if title else full},"
    if lang == "es":
        return f"Estimado/a {title + ' ' + last if title else full}:"
    if lang == "fr":
        return f"Bonjour {title + ' ' + last if title else full},"
    return f"Dear {title + ' ' + last if title else full},"


def _direction(*texts: str) -> str:
    """'rtl' when the first strong character of the name is right-to-left."""
    for text in texts:
        for char in text:
            kind = unicodedata.bidirectional(char)
            if kind in ("R", "AL"):
                return "rtl"
            if kind == "L":
                return "ltr"
    return "ltr"


def decided_tone(debtor: Debtor) -> str:
    """The tone the campaign's rules chose for this debtor ("friendly" until they decide)."""
    from sqlalchemy.orm import object_session

    from kindly.rules.store import decision_for

    session = object_session(debtor)
    decision = decision_for(session, debtor) if session is not None and debtor.id else None
    return decision.tone if decision is not None else "friendly"


def _logo(campaign: Campaign, storage: Storage | None) -> str:
    """The campaign's uploaded logo as a data: URI; "" without one (or with an old path)."""
    key = stored_key((campaign.settings or {}).get("logo"), campaign.slug)
    return data_uri(storage, key) if key and storage is not None else ""


def build_view(
    debtor: Debtor,
    campaign: Campaign,
    *,
    base_url: str,
    balance_minor: int | None = None,
    paid_minor: int = 0,
    today: dt.date | None = None,
    tone: str | None = None,
    storage: Storage | None = None,
) -> DebtorView:
    """Everything the renderers need, formatted for the debtor's locale; the campaign's logo
    (letters and videos) only with the `storage` it is kept in."""
    locale, lang, babel = resolve_locale(debtor, campaign)
    if balance_minor is None:  # derived from what was paid, by the ledger's one rule
        balance_minor = ledger.balance_after(debtor, paid_minor)
    amount = balance_minor
    site_url = f"{base_url}/s/{debtor.token}"

    def money(minor: int | None) -> str | None:
        return None if minor is None else format_minor(minor, debtor.currency, babel)

    lines = [
        " ".join(f"{debtor.salutation or ''} {debtor.first_name or ''} {debtor.last_name}".split())
    ]
    if debtor.street:
        lines.append(debtor.street)
    if (debtor.country or babel.territory) in POSTCODE_LAST:
        # Royal Mail and An Post: the town in capitals, then the postcode on its own line
        lines.extend(part for part in ((debtor.city or "").upper(), debtor.postal_code) if part)
    elif debtor.postal_code or debtor.city:
        lines.append(f"{debtor.postal_code or ''} {debtor.city or ''}".strip())
    if debtor.country and debtor.country != (babel.territory or ""):
        lines.append(Locale.parse(babel).territories.get(debtor.country, debtor.country).upper())

    first = debtor.first_name or ""
    still = allocation.open_parts(debtor, paid_minor) if paid_minor > 0 else None
    letter = campaign.settings or {}  # letter options, see kindly.payments.iban
    return DebtorView(
        tone=tone or decided_tone(debtor),
        locale=locale,
        lang=lang,
        reference=debtor.reference,
        first_name=first,
        last_name=debtor.last_name,
        full_name=f"{first} {debtor.last_name}".strip(),
        greeting=greeting(lang, debtor.salutation, first, debtor.last_name),
        amount=money(amount) or "",
        amount_minor=amount,
        currency=debtor.currency,
        due_date=format_date(debtor.due_date, format="long", locale=babel),
        due_date_iso=debtor.due_date.isoformat(),
        creditor=debtor.creditor or campaign.creditor or "",
        contract=debtor.contract or campaign.contract or "",
        campaign_name=campaign.name,
        site_url=site_url,
        short_url=site_url.split("://", 1)[-1],
        pay_url=f"{site_url}/pay",
        plan_url=f"{site_url}/plan",
        paid=money(paid_minor) if paid_minor > 0 else None,
        principal=money(debtor.principal_minor),
        interest=money(debtor.interest_minor),
        fees=money(debtor.fees_minor),
        principal_open=money(still["principal"]) if still else None,
        interest_open=money(still["interest"]) if still else None,
        fees_open=money(still["fees"]) if still else None,
        address_lines=tuple(lines),
        letter_date=format_date(today or dt.date.today(), format="long", locale=babel),
        brand_color=campaign.brand_color,
        text_direction=_direction(debtor.first_name or "", debtor.last_name),
        letter_url=f"{base_url}/c/{debtor.token}?c=letter",  # a scan counts as a letter click
        payee_name=letter.get("payee_name") or "",
        iban=letter.get("iban") or "",
        bic=letter.get("bic") or "",
        creditor_address=tuple(
            line.strip()
            for line in re.split(r"[\n;]", letter.get("creditor_address") or "")
            if line.strip()
        ),
        contact=letter.get("contact") or "",
        logo=_logo(campaign, storage),
        pdf_variant=letter.get("pdf_variant") or "",
    )
