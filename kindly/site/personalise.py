"""From a debtor row to the plain, formatted DebtorView the renderers take."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date

from kindly.bank import rf
from kindly.campaigns.logo import data_uri
from kindly.campaigns.models import Campaign, Debtor
from kindly.claims import costs
from kindly.creditors.profile import CreditorProfile, creditor_for
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


FEMALE = frozenset(
    {
        "frau",
        "fr",
        "mrs",
        "ms",
        "miss",
        "mme",
        "madame",
        "mlle",
        "sigra",
        "signora",
        "sra",
        "senora",
        "señora",
        "srta",
        "doña",
        "dona",
    }
)
"""Salutations that address a woman, lower-cased without dots or spaces ("Sig.ra" → "sigra")."""
MALE = frozenset(
    {"herr", "hr", "mr", "m", "monsieur", "sig", "signor", "signore", "sr", "senor", "señor", "don"}
)
"""Salutations that address a man, in the same form."""
ENGLISH_TITLES = {"mrs": "Mrs", "ms": "Ms", "miss": "Miss", "mr": "Mr"}
"""English titles kept as the debtor gave them (British style, without a dot)."""


def gender_of(salutation: str | None) -> str | None:
    """'f' or 'm' when the salutation says so (Frau, Mrs, Sig.ra, Sra., Mme …), else None."""
    word = re.sub(r"[.\s]", "", (salutation or "").casefold())
    return "f" if word in FEMALE else "m" if word in MALE else None


def greeting(lang: str, salutation: str | None, first: str | None, last: str) -> str:
    """A polite opening line in the debtor's language that agrees with their salutation."""
    full = f"{first} {last}".strip() if first else last
    title = (salutation or "").strip()
    gender = gender_of(title)
    if gender is not None:
        female = gender == "f"
        if lang == "de":
            return f"Sehr geehrte Frau {last}," if female else f"Sehr geehrter Herr {last},"
        if lang == "it":
            return f"Gentile Signora {last}," if female else f"Gentile Signor {last},"
        if lang == "es":
            return f"Estimada Sra. {last}:" if female else f"Estimado Sr. {last}:"
        if lang == "fr":
            return f"Madame {last}," if female else f"Monsieur {last},"
        word = re.sub(r"[.\s]", "", title.casefold())
        return f"Dear {ENGLISH_TITLES.get(word, 'Ms' if female else 'Mr')} {last},"
    # another title (Dr., Mx, Prof.) is kept before the last name; no title: the full name
    name = f"{title} {last}" if title else full
    if lang == "de":
        return f"Guten Tag {name},"
    if lang == "it":
        return f"Gentile {name},"
    if lang == "es":
        return f"Estimado/a {name}:"
    if lang == "fr":
        return f"Bonjour {name},"
    return f"Dear {name},"


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


def _logo(key: str, storage: Storage | None) -> str:
    """The creditor's uploaded logo as a data: URI; "" without one (or without storage)."""
    return data_uri(storage, key) if key and storage is not None else ""


def payment_reference(debtor: Debtor) -> str:
    """The reference a transfer should carry, printed in groups of four ('RF47 K3X9 …'); the
    debtor's own reference for a case without a valid RF (a row from before the backfill)."""
    if debtor.payment_reference and rf.is_valid(debtor.payment_reference):
        return rf.printed(debtor.payment_reference)
    return debtor.reference


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
    creditor: CreditorProfile | None = None,
) -> DebtorView:
    """Everything the renderers need, formatted for the debtor's locale; the creditor's logo
    (letters and videos) only with the `storage` it is kept in. The creditor is the debtor's
    own (kindly.creditors.profile), resolved here unless a caller passes it."""
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
    day = today or dt.date.today()
    overdue = amount > 0 and day > debtor.due_date  # the words then say since when, not "by"
    still = allocation.open_parts(debtor, paid_minor) if paid_minor > 0 else None
    letter = campaign.settings or {}  # letter options, see kindly.payments.iban
    owed = creditor or creditor_for(None, debtor, campaign)
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
        creditor=owed.name,
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
        letter_date=format_date(day, format="long", locale=babel),
        brand_color=owed.brand_color,
        text_direction=_direction(debtor.first_name or "", debtor.last_name),
        letter_url=f"{base_url}/c/{debtor.token}?c=letter",  # a scan counts as a letter click
        payee_name=owed.payee_name,
        iban=owed.iban,
        bic=owed.bic,
        creditor_address=owed.address,
        contact=owed.contact,
        authority=owed.authority,
        logo=_logo(owed.logo, storage),
        pdf_variant=letter.get("pdf_variant") or "",
        overdue=overdue,
        payment_reference=payment_reference(debtor),
        costs=_costs(debtor, babel),
    )


def _costs(debtor: Debtor, babel: Locale) -> tuple[tuple[str, str, str], ...]:
    """The case's costs by type and basis, formatted (none for a debtor not in a session)."""
    from sqlalchemy.orm import object_session

    session = object_session(debtor) if debtor.id else None
    if session is None:
        return ()
    return tuple(
        (line.cost_type, format_minor(line.amount_minor, line.currency, babel), line.basis)
        for line in costs.costs_of(session, debtor)
    )
