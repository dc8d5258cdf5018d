"""Sample DebtorViews for renderer tests: realistic, in several locales and scripts."""

from __future__ import annotations

from dataclasses import replace

from renderer.view import DebtorView

_BASE = DebtorView(
    locale="de-DE",
    lang="de",
    reference="K-2026-000123",
    first_name="Jürgen",
    last_name="Müller-Lüdenscheidt",
    full_name="Jürgen Müller-Lüdenscheidt",
    greeting="Sehr geehrter Herr Müller-Lüdenscheidt,",
    amount="1.234,56\xa0€",
    amount_minor=123456,
    currency="EUR",
    due_date="15. Dezember 2026",
    due_date_iso="2026-12-15",
    creditor="Stadtwerke Beispielstadt GmbH",
    contract="Stromliefervertrag Nr. 4711 vom 01.02.2024",
    campaign_name="Winter 2026",
    site_url="http://127.0.0.1:5000/s/Qm9ndXNUb2tlbkZvclRlc3RzT25seTEyMzQ1Ng",
    short_url="127.0.0.1:5000/s/Qm9ndXNUb2tlbkZvclRlc3RzT25seTEyMzQ1Ng",
    pay_url="http://127.0.0.1:5000/s/Qm9ndXNUb2tlbkZvclRlc3RzT25seTEyMzQ1Ng/pay",
    plan_url="http://127.0.0.1:5000/s/Qm9ndXNUb2tlbkZvclRlc3RzT25seTEyMzQ1Ng/plan",
    principal="1.100,00\xa0€",
    interest="84,56\xa0€",
    fees="50,00\xa0€",
    address_lines=("Herrn Jürgen Müller-Lüdenscheidt", "Hauptstraße 5", "10115 Berlin"),
    letter_date="22. November 2026",
)


def make_view(**overrides) -> DebtorView:
    """A German debtor by default; pass fields to change any of them."""
    return replace(_BASE, **overrides)


def english_view() -> DebtorView:
    """An English debtor with an apostrophe in the name."""
    return make_view(
        locale="en-GB",
        lang="en",
        first_name="Siobhán",
        last_name="O'Brien",
        full_name="Siobhán O'Brien",
        greeting="Dear Ms O'Brien,",
        amount="£89.90",
        amount_minor=8990,
        currency="GBP",
        due_date="15 December 2026",
        principal=None,
        interest=None,
        fees=None,
        address_lines=("Ms Siobhán O'Brien", "12 Baker Street", "London NW1 6XE", "United Kingdom"),
        letter_date="22 November 2026",
    )


def hostile_view() -> DebtorView:
    """A name that must be shown as text, never run."""
    return make_view(
        first_name="<script>alert(1)</script>",
        last_name="Smith & Sons",
        full_name="<script>alert(1)</script> Smith & Sons",
        greeting="Dear <script>alert(1)</script> Smith & Sons,",
        locale="en-GB",
        lang="en",
    )


def rtl_emoji_view() -> DebtorView:
    """Arabic script and an emoji in the name."""
    return make_view(
        first_name="ليلى",
        last_name="حداد 🌟",
        full_name="ليلى حداد 🌟",
        greeting="Dear ليلى حداد 🌟,",
        locale="en-GB",
        lang="en",
        text_direction="ltr",
    )
