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
SETTINGS = {
    "creditor_address": "Demo-Allee 1, 10115 Berlin (demo data)",
    "contact": "demo@example.org · +49 30 0000000 (demo data)",
}
"""The demo campaign's settings: the facts its launch check asks for, clearly demo data."""
CREDITORS = {
    "de": "Stadtwerke Beispielstadt GmbH",
    "en": "Northern Water Ltd",
    "it": "Acqua Esempio S.p.A.",
    "es": "Aguas de Ejemplo S.A.",
    "fr": "Énergie Exemple SA",
}
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
                    "due_date": (today + dt.timedelta(days=rng.randrange(10, 30))).isoformat(),
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


def _euros(cents: int) -> str:
    """Minor units as a decimal string with two places (never through float)."""
    return str(Decimal(cents).scaleb(-2).quantize(Decimal("0.01")))
