"""Generated debtors for `kindly demo`: clearly demo data, in several locales and scripts."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from kindly.campaigns.portfolio import SourceRow

PEOPLE = [
    ("de-DE", "Frau", "Anna", "Müller", "Hauptstraße 5", "10115", "Berlin", "DE", "EUR"),
    ("de-DE", "Herr", "Jürgen", "Weiß", "Lindenallee 12", "50667", "Köln", "DE", "EUR"),
    ("de-DE", "", "Özlem", "Yılmaz", "Goethestraße 3", "80336", "München", "DE", "EUR"),
    ("en-GB", "Ms", "Siobhán", "O'Brien", "12 Baker Street", "NW1 6XE", "London", "GB", "GBP"),
    ("en-GB", "Mr", "Kwame", "Mensah", "4 Deansgate", "M3 2BW", "Manchester", "GB", "GBP"),
    ("en-GB", "Dr", "Priya", "Raman", "7 Royal Mile", "EH1 1RE", "Edinburgh", "GB", "GBP"),
    ("it-IT", "Sig.ra", "Giulia", "D'Angelo", "Via Roma 10", "00184", "Roma", "IT", "EUR"),
    (
        "it-IT",
        "Sig.",
        "Niccolò",
        "Bianchi",
        "Corso Buenos Aires 33",
        "20124",
        "Milano",
        "IT",
        "EUR",
    ),
    ("it-IT", "", "Chiara", "Esposito", "Via Toledo 256", "80134", "Napoli", "IT", "EUR"),
    ("es-ES", "Sra.", "María José", "Núñez", "Calle Mayor 8", "28013", "Madrid", "ES", "EUR"),
    ("fr-FR", "Mme", "Hélène", "Lefèvre", "12 rue de Rivoli", "75004", "Paris", "FR", "EUR"),
    (
        "de-DE",
        "Frau",
        "Leyla",
        "Haddad",
        "Bahnhofstraße 1",
        "60329",
        "Frankfurt am Main",
        "DE",
        "EUR",
    ),
]
FUTURE_INDEX = 1
"""The one demo debtor whose due date is still ahead."""
MANAGER = "demo-manager@example.org"
"""The demo's cockpit user: a manager of the demo campaign only, with a one-time password."""
CREDITORS = {
    "de": "Stadtwerke Beispielstadt GmbH",
    "en": "Northern Water Ltd",
    "it": "Acqua Esempio S.p.A.",
    "es": "Aguas de Ejemplo S.A.",
    "fr": "Énergie Exemple SA",
}
CREDITOR_PROFILES = {
    "Stadtwerke Beispielstadt GmbH": {
        "legal_form": "GmbH", "address": ["Am Markt 1", "12345 Beispielstadt"],
        "email_sender_name": "Stadtwerke Beispielstadt",
        "email_address": "forderungen@stadtwerke.example.org",
        "phone": "+49 30 901820", "iban": "DE89370400440532013000", "bic": "COBADEFFXXX",
        "brand_color": "#0b6e4f",
    },
    "Northern Water Ltd": {
        "legal_form": "Ltd", "address": ["1 Quay Street", "MANCHESTER", "M3 3JE"],
        "email_sender_name": "Northern Water",
        "email_address": "billing@northernwater.example.org",
        "phone": "+44 161 496 0000", "iban": "GB29NWBK60161331926819", "bic": "NWBKGB2L",
        "brand_color": "#1d3557",
    },
    "Acqua Esempio S.p.A.": {
        "legal_form": "S.p.A.", "address": ["Via del Corso 1", "00186 Roma RM"],
        "email_sender_name": "Acqua Esempio",
        "email_address": "crediti@acquaesempio.example.org",
        "phone": "+39 06 1234 5678", "iban": "IT60X0542811101000000123456", "bic": "BPMOIT22XXX",
        "brand_color": "#005f73",
    },
    "Aguas de Ejemplo S.A.": {
        "legal_form": "S.A.", "address": ["Calle de Alcalá 1", "28014 Madrid"],
        "email_sender_name": "Aguas de Ejemplo",
        "email_address": "cobros@aguasdeejemplo.example.org",
        "phone": "+34 910 000 000", "iban": "ES9121000418450200051332", "bic": "CAIXESBBXXX",
        "brand_color": "#7b2d26",
    },
    "Énergie Exemple SA": {
        "legal_form": "SA", "address": ["1 place de la Bourse", "75002 Paris"],
        "email_sender_name": "Énergie Exemple",
        "email_address": "recouvrement@energie-exemple.example.org",
        "phone": "+33 1 99 00 00 00", "iban": "FR1420041010050500013M02606", "bic": "PSSTFRPPPAR",
        "brand_color": "#3a0ca3",
    },
}  # fmt: skip
"""A complete profile for each creditor of the demo (kindly.creditors): fictional addresses,
numbers in ranges kept for drama and examples, the banks' published sample IBANs."""
CONTRACTS = {
    "de": "Stromliefervertrag Nr. {n} vom 01.02.2024",
    "en": "Energy supply contract no. {n} of 1 February 2024",
    "it": "Contratto di fornitura n. {n} del 01/02/2024",
    "es": "Contrato de suministro n.º {n} de 01/02/2024",
    "fr": "Contrat de fourniture n° {n} du 01/02/2024",
}


def demo_rows(count: int, *, seed: int = 7, today: dt.date | None = None) -> list[SourceRow]:
    """`count` portfolio rows, the same every time for the same seed."""
    rng = random.Random(seed)
    today = today or dt.date.today()
    rows = []
    for index in range(count):
        locale, salutation, first, last, street, postal, city, country, currency = PEOPLE[
            index % len(PEOPLE)
        ]
        principal = rng.randrange(4_000, 180_000)
        interest = rng.randrange(0, principal // 10)
        fees = rng.choice([0, 500, 1_000, 2_500])
        lang = locale[:2]
        rows.append(
            SourceRow(
                index + 2,
                {
                    "reference": f"DEMO-{index + 1:04d}",
                    "salutation": salutation,
                    "first_name": first,
                    "last_name": last,
                    "email": f"demo{index + 1}@example.org",
                    "phone": f"+4915100000{index:03d}",
                    "locale": locale,
                    "currency": currency,
                    "amount_due": _euros(principal + interest + fees),
                    "principal": _euros(principal),
                    "interest": _euros(interest),
                    "fees": _euros(fees),
                    "due_date": _due(today, index, rng.randrange(3, 60)).isoformat(),
                    "creditor": CREDITORS[lang],
                    "contract": CONTRACTS[lang].format(n=40_000 + index),
                    "street": street,
                    "postal_code": postal,
                    "city": city,
                    "country": country,
                },
            )
        )
    return rows


def _due(today: dt.date, index: int, days: int) -> dt.date:
    """The real world: claims reach collection after their due date, some weeks ago; one
    (the second debtor) is still to fall due, to show both wordings."""
    return today + dt.timedelta(days=days) if index == FUTURE_INDEX else today - dt.timedelta(days)


def _euros(cents: int) -> str:
    """Minor units as a decimal string with two places (never through float)."""
    return str(Decimal(cents).scaleb(-2).quantize(Decimal("0.01")))
