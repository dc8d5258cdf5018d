"""The plain, already formatted data every renderer takes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DebtorView:
    """Everything a renderer needs to know about one debtor, formatted for their locale.

    Strings are plain text (never trusted as HTML); templates escape them.
    """

    locale: str  # BCP 47 as given, e.g. "de-DE"
    lang: str  # the language the texts are in: "de", "en", "it", "es" or "fr"
    reference: str
    first_name: str
    last_name: str
    full_name: str  # "Anna Müller"
    greeting: str  # the complete salutation line, e.g. "Sehr geehrte Frau Müller,"
    amount: str  # formatted with Babel, e.g. "1.234,56 €"
    amount_minor: int  # the same amount in the currency's minor units
    currency: str  # ISO 4217
    due_date: str  # formatted for the locale, e.g. "15. Dezember 2026"
    due_date_iso: str  # "2026-12-15"
    creditor: str
    contract: str
    campaign_name: str
    site_url: str  # the microsite link for this debtor (token URL)
    short_url: str  # the same link without scheme, for print and video
    pay_url: str
    plan_url: str
    paid: str | None = None  # what has been paid so far, when anything has
    principal: str | None = None
    interest: str | None = None
    fees: str | None = None
    # What is still open of each part once something was paid (None: nothing paid, or the
    # claim is not broken down); payments settle the parts in the campaign's order (§ 367 BGB).
    principal_open: str | None = None
    interest_open: str | None = None
    fees_open: str | None = None
    address_lines: tuple[str, ...] = ()  # postal address, one line each, for letters
    letter_date: str = ""  # today's date formatted for the locale
    brand_color: str = "#1f5f8b"
    text_direction: str = "ltr"  # "rtl" when the debtor's name or locale asks for it
    tone: str = "friendly"  # "friendly", "neutral" or "firm": chosen per debtor by the rules
    extra: dict[str, str] = field(default_factory=dict)
    # Letters (issue 4): the link in the letter's QR code, counted as a letter visit, and the
    # campaign's letter options (validated by kindly.payments.iban.validate_letter_settings).
    letter_url: str = ""  # falls back to site_url when empty
    payee_name: str = ""  # account holder for the payment QR code (EUR claims only)
    iban: str = ""
    bic: str = ""
    creditor_address: tuple[str, ...] = ()  # the creditor's postal address, one line each
    contact: str = ""  # how to reach the creditor besides the microsite (phone, email)
    authority: str = ""  # the supervisory authority the creditor names, when one applies
    logo: str = ""  # the creditor's logo as a data:image/png URI (kindly.campaigns.logo), or ""
    pdf_variant: str = ""  # "" or a WeasyPrint variant such as "pdf/a-3b" or "pdf/ua-1"
    # Issue 17: a claim past its due date says since when it is due and asks to pay now,
    # never "please pay by" a day that has passed (decided on the day the view is built).
    # (a flag, not a count of days: artifacts fingerprint the view, and a count would make
    # every overdue letter and video stale each morning)
    overdue: bool = False  # something is owed and the due date has passed
    # Issue 18: the structured creditor reference (ISO 11649) a transfer should carry, printed
    # in groups of four ("RF47 K3X9 2M4Q 7B1Z D"); the debtor's own reference when the case
    # has none yet. Renderers fall back to `reference` when it is empty.
    payment_reference: str = ""
    # Issue 19: costs booked at cadence steps, by type and legal basis (RDG § 13a): (type,
    # amount formatted, basis) each; the type is a key of kindly.rules.costrules.COST_TYPES,
    # named by each family's texts (`cost_<type>`), the basis the creditor's own words.
    costs: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CaseView:
    """The case's state as the page's first screen shows it, already formatted (see
    kindly.cases for the states). The default is an open case that asks for the balance."""

    state: str = "open"
    asks: bool = True  # the page may ask for the whole balance now
    next_amount: str = ""  # plan: the next instalment still to pay, and its day
    next_date: str = ""
    next_due_now: bool = False  # that day has come (or a collection failed): pay it now
    paid_count: int = 0  # plan: instalments paid, of `count`
    count: int = 0
    method_saved: bool = False  # plan: a payment method is saved for the next instalments
    promise_amount: str = ""  # promise: what and when
    promise_date: str = ""
    promise_today: bool = False
    hold_until: str = ""  # breathing space or a manager's hold: the day it ends
    reply_by: str = "page"  # disputed: how the answer reaches the debtor (email|sms|letter|page)
