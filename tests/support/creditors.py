"""Complete creditor profiles for the sample portfolio's three creditors (tests.support.app)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kindly.creditors.service import set_creditor

PROFILES = {
    "Stadtwerke Beispielstadt GmbH": {
        "legal_form": "GmbH", "address": ["Am Markt 1", "12345 Beispielstadt", "Deutschland"],
        "email_sender_name": "Stadtwerke Beispielstadt", "email_address": "forderung@stadtwerke.example",
        "phone": "+49 30 1234567", "iban": "DE89 3704 0044 0532 0130 00", "bic": "COBADEFFXXX",
        "supervisory_authority": "Landgericht Beispielstadt, Registrierung Inkasso",
        "brand_color": "#0b6e4f",
    },
    "Northern Water Ltd": {
        "legal_form": "Ltd", "address": ["1 Quay Street", "MANCHESTER", "M3 3JE"],
        "email_sender_name": "Northern Water", "email_address": "billing@northernwater.example",
        "phone": "+44 161 496 0000", "iban": "GB29 NWBK 6016 1331 9268 19", "bic": "NWBKGB2L",
        "brand_color": "#1d3557",
    },
    "Acqua Roma S.p.A.": {
        "legal_form": "S.p.A.", "address": ["Via del Corso 1", "00186 Roma RM"],
        "email_sender_name": "Acqua Roma", "email_address": "crediti@acquaroma.example",
        "phone": "+39 06 1234 5678", "iban": "IT60 X054 2811 1010 0000 0123 456",
        "bic": "BPMOIT22XXX", "brand_color": "#005f73",
    },
}  # fmt: skip
"""Each creditor with its own address, phone, email and account: none shares a value."""


def complete_creditors(session: Session) -> None:
    """Give each creditor of the sample portfolio a complete profile."""
    for name, values in PROFILES.items():
        set_creditor(session, name, values)
