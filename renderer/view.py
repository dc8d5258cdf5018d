"""The plain, already formatted data every renderer takes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class InterestLine:
    """One period of interest as the page and the letter show it (kindly.claims.interest)."""

    period: str  # "16 May 2024 – 30 June 2024"
    days: int
    principal: str  # the principal that bore interest in the period
    rate: str  # percent a year, e.g. "8.62 %"
    interest: str
    label: str = ""  # the piece (an item) when the claim has several, else ""
    assumed: bool = False  # a base rate past the published table: its last rate


@dataclass(frozen=True, slots=True)
class ItemLine:
    """One item of a case (an invoice), formatted: the page, the letter and the export list
    them; the page's Select & Pay offers the open ones."""

    id: int  # what the Select & Pay form names
    item_id: str  # the creditor's id for it
    date: str  # formatted for the locale
    date_iso: str
    description: str
    amount: str  # formatted, what the item claims
    amount_minor: int
    state: str  # open | paid | disputed
    payment_reference: str  # its own RF reference, printed in groups of four


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
    # Issue 19: a settlement offer the debtor may take today (kindly.claims.offers): pay
    # `offer_amount` in one go by `offer_until` (inclusive) and the rest is written off. Empty
    # when there is none or it expired: a view built after that day has no offer, so stored
    # pages, letters and videos that showed it are stale and built again without it.
    offer_amount: str = ""
    offer_minor: int = 0
    offer_saving: str = ""  # what the debtor is spared
    offer_until: str = ""  # formatted for the locale
    offer_until_iso: str = ""
    written_off: str = ""  # what a settlement offer taken waived (kindly.claims.writeoffs)
    # Issue 19: interest that accrues (kindly.claims.interest). `amount` is then the amount as
    # of `amount_as_of` (the day the view was built, formatted), the lines the breakdown of
    # the interest in it; all empty when the campaign charges no interest.
    interest_lines: tuple[InterestLine, ...] = ()
    interest_accrued: str = ""  # the interest of all lines
    interest_basis: str = ""  # statutory_consumer | statutory_business | contractual
    interest_rate: str = ""  # contractual: the rate a year, formatted ("7,5 %")
    amount_as_of: str = ""
    rates_until: str = ""  # a line assumed the last base rate: the table's last day
    # Issue 19: the case's items (several invoices), by date; empty for a case given as one
    # amount. Closed items are not shown.
    items: tuple[ItemLine, ...] = ()
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
    missed_to_end: bool = False  # plan: its first missed instalment moves to the end once
    promise_amount: str = ""  # promise: what and when
    promise_date: str = ""
    promise_today: bool = False
    hold_until: str = ""  # breathing space or a manager's hold: the day it ends
    reply_by: str = "page"  # disputed: how the answer reaches the debtor (email|sms|letter|page)
    dispute_state: str = ""  # the latest dispute shown: open | upheld | rejected ("" none)
    dispute_reason: str = ""  # its reason (kindly.disputes.models.REASONS)
    dispute_answer_by: str = ""  # open: the day an answer is promised by
    dispute_outcome: str = ""  # resolved: corrected | closed | rejected
    dispute_answer: str = ""  # resolved: what the person who decided wrote to the debtor
    dispute_amount: str = ""  # corrected: the claim as it is now
    survey: str = ""  # the one question to ask now: "paid" or "plan" (kindly.feedback); "": none
