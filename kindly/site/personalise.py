"""From a debtor row to the plain, formatted DebtorView the renderers take."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_decimal
from sqlalchemy.orm import object_session

from kindly.bank import rf
from kindly.campaigns.logo import data_uri
from kindly.campaigns.models import Campaign, Debtor
from kindly.claims import accrual, costs, interest, offers
from kindly.claims.amount import amount_on
from kindly.creditors.profile import CreditorProfile, creditor_for
from kindly.infra.storage import Storage
from kindly.money import format_minor
from kindly.payments import allocation, ledger
from kindly.rules.offers import Terms, terms
from renderer.texts import LANGUAGES
from renderer.view import DebtorView, InterestLine, ItemLine

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
    decision = _decision(debtor)
    return decision.tone if decision is not None else "friendly"


def _decision(debtor: Debtor):
    """The debtor's newest decision through the session the row belongs to, if any."""
    from kindly.rules.store import decision_for

    session = object_session(debtor)
    return decision_for(session, debtor) if session is not None and debtor.id else None


def _offer(debtor: Debtor, balance_minor: int, day: dt.date) -> Terms | None:
    """The settlement offer the debtor may take on `day` for what is open (kindly.claims.offers)."""
    if balance_minor <= 0:
        return None
    return terms(offers.offer_of(_decision(debtor)), balance_minor, debtor.currency, day)


def _logo(key: str, storage: Storage | None) -> str:
    """The creditor's uploaded logo as a data: URI; "" without one (or without storage)."""
    return data_uri(storage, key) if key and storage is not None else ""


def payment_reference(debtor: Debtor) -> str:
    """The reference a transfer should carry, printed in groups of four ('RF47 K3X9 …'); the
    debtor's own reference for a case without a valid RF (a row from before the backfill)."""
    if debtor.payment_reference and rf.is_valid(debtor.payment_reference):
        return rf.printed(debtor.payment_reference)
    return debtor.reference


def percent(rate, babel: Locale) -> str:
    """A rate a year as the debtor writes it ("8,62 %", "8.62 %")."""
    return format_decimal(rate, format="#,##0.00##", locale=babel) + "\u00a0%"


def _day(day: dt.date, babel: Locale) -> str:
    return format_date(day, format="medium", locale=babel).replace(" ", "\u00a0")


def interest_lines(breakdown: interest.Breakdown, money, babel: Locale) -> tuple[InterestLine, ...]:
    """The breakdown's periods, formatted for the page and the letter."""
    several = len(breakdown.pieces) > 1
    return tuple(
        InterestLine(
            # a no-break space inside each date: a narrow screen breaks at the dash only
            period=f"{_day(p.first, babel)} – {_day(p.last, babel)}",
            days=p.days,
            principal=money(p.principal_minor),
            rate=percent(p.rate, babel),
            interest=money(p.interest_minor),
            label=piece.piece.label if several else "",
            assumed=p.beyond_table,
        )
        for piece in breakdown.pieces
        for p in piece.periods
    )


def item_lines(debtor: Debtor, babel: Locale) -> tuple[ItemLine, ...]:
    """The case's items (not closed) as the page and the letter list them."""
    from sqlalchemy.orm import object_session

    from kindly.claims.items import items_of

    session = object_session(debtor)
    if session is None or not debtor.id:
        return ()
    return tuple(
        ItemLine(
            id=item.id,
            item_id=item.item_id,
            date=format_date(item.date, format="medium", locale=babel),
            date_iso=item.date.isoformat(),
            description=item.description or item.item_id,
            amount=format_minor(item.amount_minor, debtor.currency, babel),
            amount_minor=item.amount_minor,
            state=item.state,
            payment_reference=rf.printed(item.payment_reference),
        )
        for item in items_of(session, [debtor.id]).get(debtor.id, [])
    )


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
    from sqlalchemy.orm import object_session

    locale, lang, babel = resolve_locale(debtor, campaign)
    day = today or dt.date.today()
    # The amount as of the day (kindly.claims.amount: with the interest accrued by then, less
    # what a settlement offer taken wrote off) and the interest's breakdown; a debtor not yet
    # stored is only its imported claim.
    session = object_session(debtor) if debtor.id else None
    owed = amount_on(session, debtor, day) if session else None
    claim_minor = owed.total_minor if owed is not None else None
    waived = owed.written_off_minor if owed is not None else 0
    accrued = accrual.breakdowns(session, [debtor], day).get(debtor.id) if session else None
    if balance_minor is None:  # derived from what was paid, by the ledger's one rule
        balance_minor = ledger.balance_after(debtor, paid_minor, claim_minor)
    amount = balance_minor
    site_url = f"{base_url}/s/{debtor.token}"

    def money(minor: int | None) -> str | None:
        return None if minor is None else format_minor(minor, debtor.currency, babel)

    parts = allocation.parts_of(debtor)
    if accrued is not None and accrued.interest_minor:
        # the claim's parts with the interest accrued to the day in its interest part
        parts = parts or {"fees": 0, "interest": 0, "principal": debtor.amount_due_minor}
        parts = {**parts, "interest": parts["interest"] + accrued.interest_minor}
    still = (
        allocation.allocate(parts, paid_minor, allocation.order_of(campaign))
        if parts is not None and paid_minor > 0
        else None
    )
    if still is not None and accrued is not None and accrued.interest_minor:
        # what each payment settled on its day (interest accrued later is open, not paid)
        still = {
            "fees": parts["fees"] - sum(s.fees_minor for s in accrued.settlements),
            "interest": parts["interest"] - sum(s.interest_minor for s in accrued.settlements),
            "principal": sum(piece.open_minor for piece in accrued.pieces),
        }
    terms = accrued.terms if accrued is not None else interest.NONE

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
    overdue = amount > 0 and day > debtor.due_date  # the words then say since when, not "by"
    charged = interest_lines(accrued, money, babel) if accrued is not None else ()
    letter = campaign.settings or {}  # letter options, see kindly.payments.iban
    owed = creditor or creditor_for(None, debtor, campaign)
    deal = _offer(debtor, amount, day)
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
        principal=money(parts["principal"] if charged and parts else debtor.principal_minor),
        interest=money(parts["interest"] if charged and parts else debtor.interest_minor),
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
        offer_amount=money(deal.offered_minor) if deal else "",
        offer_minor=deal.offered_minor if deal else 0,
        offer_saving=money(deal.written_off_minor) if deal else "",
        offer_until=format_date(deal.valid_until, format="long", locale=babel) if deal else "",
        offer_until_iso=deal.valid_until.isoformat() if deal else "",
        written_off=money(waived) if waived else "",
        interest_lines=charged,
        interest_accrued=(money(accrued.interest_minor) or "") if charged else "",
        interest_basis=(
            f"statutory_{terms.party or 'consumer'}" if terms.basis == "statutory" else terms.basis
        )
        if charged
        else "",
        interest_rate=percent(terms.rate, babel) if charged and terms.rate is not None else "",
        amount_as_of=format_date(day, format="long", locale=babel) if charged else "",
        rates_until=(
            format_date(accrued.table_ends, format="long", locale=babel)
            if charged and accrued.beyond_table and accrued.table_ends
            else ""
        ),
        items=item_lines(debtor, babel),
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
