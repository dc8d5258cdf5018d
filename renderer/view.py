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
    logo: str = ""  # the creditor's logo as a data:image/png URI (kindly.campaigns.logo), or ""
    pdf_variant: str = ""  # "" or a WeasyPrint variant such as "pdf/a-3b" or "pdf/ua-1"
