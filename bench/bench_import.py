"""Portfolio import: rows per second, validation plus writing, into a fresh PostgreSQL database.

The baseline in the same run is the former one-ORM-object-per-debtor path
(`import_portfolio(..., write="orm")`); the bulk path writes with COPY. Each figure covers
`import_portfolio` and the commit (validation and writing, the file already parsed); parsing
the CSV is measured on its own line.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("KINDLY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
SIZES = (10_000, 100_000)
GOAL = 20_000

PEOPLE = [
    ("de-DE", "Frau", "Anna", "Müller", "Hauptstraße 5", "10115", "Berlin", "DE", "EUR"),
    ("en-GB", "Ms", "Siobhán", "O'Brien", "12 Baker Street", "NW1 6XE", "London", "GB", "GBP"),
    ("it-IT", "", "Giulia", "D'Angelo", "Via Roma 10", "00184", "Roma", "IT", "EUR"),
    ("fr-FR", "Mme", "Hélène", "Lefèvre", "12 rue de Rivoli", "75004", "Paris", "FR", "EUR"),
    ("es-ES", "Sra.", "María José", "Núñez", "Calle Mayor 8", "28013", "Madrid", "ES", "EUR"),
]
HEADER = (
    "reference,salutation,first_name,last_name,email,phone,locale,currency,amount_due,principal,"
    "interest,fees,due_date,creditor,contract,street,postal_code,city,country,birth_date,risk"
)


def portfolio_csv(count: int, *, cents_extra: int = 0) -> str:
    """A realistic CSV of `count` distinct valid debtors (one extra attribute column)."""
    lines = [HEADER]
    for i in range(count):
        locale, salutation, first, last, street, postal, city, country, currency = PEOPLE[i % 5]
        principal, interest, fees = 4_000 + i % 170_000, i % 400 + cents_extra, 500
        due = principal + interest + fees
        lines.append(
            f'K-{i:07d},{salutation},{first},"{last}",d{i}@example.org,+49151{i:08d},{locale},'
            f"{currency},{due / 100:.2f},{principal / 100:.2f},{interest / 100:.2f},"
            f'{fees / 100:.2f},2027-01-{1 + i % 28:02d},Beispiel GmbH,Contract {i},"{street}",'
            f"{postal},{city},{country},19{50 + i % 50}-0{1 + i % 9}-1{i % 10},"
            f"{('low', 'mid', 'high')[i % 3]}"
        )
    return "\n".join(lines) + "\n"


def _database():
    """A fresh, migrated database; returns (url, drop)."""
    import psycopg

    from kindly.infra.db import Database

    name = f"kindly_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN_URL.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    db = Database(url)
    db.migrate()

    def drop() -> None:
        db.engine.dispose()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return db, drop


def timed_import(db, slug: str, rows, write: str) -> tuple[float, int, int]:
    """Seconds for validate + write + commit; (seconds, created, updated)."""
    from sqlalchemy import select

    from kindly.campaigns.models import Campaign
    from kindly.campaigns.portfolio import import_portfolio

    with db.session() as session:
        if session.scalar(select(Campaign).where(Campaign.slug == slug)) is None:
            session.add(Campaign(slug=slug, name=slug))
    started = time.perf_counter()
    with db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
        result, _ = import_portfolio(session, campaign, rows, write=write)
    return time.perf_counter() - started, result.created, result.updated


def measure() -> dict[str, tuple[int, float]]:
    """{label: (rows, seconds)} for each path and size."""
    sys.path.insert(0, str(ROOT))
    from kindly.campaigns.portfolio import read_portfolio, validate_rows

    db, drop = _database()
    figures: dict[str, tuple[int, float]] = {}
    try:
        for size in SIZES:
            data = portfolio_csv(size).encode()
            started = time.perf_counter()
            rows = read_portfolio(data, "p.csv")
            figures[f"parse {size}"] = (size, time.perf_counter() - started)
            started = time.perf_counter()
            validate_rows(rows)
            figures[f"validate {size}"] = (size, time.perf_counter() - started)
            if size == SIZES[0]:  # the baseline takes a minute per 100k rows: once is enough
                seconds, created, _ = timed_import(db, f"orm-{size}", rows, "orm")
                assert created == size
                figures[f"orm new {size}"] = (size, seconds)
            seconds, created, _ = timed_import(db, f"bulk-{size}", rows, "bulk")
            assert created == size
            figures[f"bulk new {size}"] = (size, seconds)
            changed = read_portfolio(portfolio_csv(size, cents_extra=1).encode(), "p.csv")
            if size == SIZES[0]:
                seconds, _, updated = timed_import(db, f"orm-{size}", changed, "orm")
                assert updated == size
                figures[f"orm update {size}"] = (size, seconds)
            seconds, _, updated = timed_import(db, f"bulk-{size}", changed, "bulk")
            assert updated == size
            figures[f"bulk update {size}"] = (size, seconds)
            seconds, _, updated = timed_import(db, f"bulk-{size}", changed, "bulk")
            figures[f"bulk same {size}"] = (size, seconds)
    finally:
        drop()
    return figures


def run() -> str:
    """The Markdown section for BENCHMARKS.md."""
    f = measure()
    rate = {k: rows / seconds for k, (rows, seconds) in f.items()}
    small, large = SIZES
    base_new, base_upd = rate[f"orm new {small}"], rate[f"orm update {small}"]
    lines = [
        "## Portfolio import (PostgreSQL)",
        "",
        f"Generated CSV portfolios of {small:,} and {large:,} distinct debtors (20 columns plus "
        "one attribute), written into a fresh PostgreSQL database in one transaction each. "
        "Figures are `import_portfolio` plus the commit: validation and writing; parsing the "
        "CSV is shown apart. The baseline is the former path, one ORM object per debtor "
        f'(`write="orm"`), measured at {small:,} rows in the same run. Goal: '
        f"≥ {GOAL:,} rows/s.",
        "",
        "| what | rows | seconds | rows/s | × ORM baseline |",
        "|---|---:|---:|---:|---:|",
    ]
    labels = [
        ("orm new", "ORM, one object per debtor: new debtors", base_new),
        ("orm update", "ORM: re-import, every row changed", base_upd),
        ("bulk new", "**bulk (COPY): new debtors**", base_new),
        ("bulk update", "bulk: re-import, every row changed (COPY + UPDATE FROM)", base_upd),
        ("bulk same", "bulk: re-import, nothing changed", base_upd),
        ("validate", "validation alone", None),
        ("parse", "parsing the CSV alone", None),
    ]
    for key, text, baseline in labels:
        for size in SIZES:
            label = f"{key} {size}"
            if label not in f:
                continue
            rows, seconds = f[label]
            ratio = f"{rate[label] / baseline:.1f}" if baseline else ""
            lines.append(f"| {text} | {rows:,} | {seconds:.2f} | {rate[label]:,.0f} | {ratio} |")
    scale = f[f"bulk new {large}"][1] / f[f"bulk new {small}"][1]
    met = "met" if min(rate[f"bulk new {s}"] for s in SIZES) >= GOAL else "**not met**"
    lines += [
        "",
        f"Linearity: {large // small}× the rows took {scale:.1f}× the time for new debtors "
        f"({f[f'bulk update {large}'][1] / f[f'bulk update {small}'][1]:.1f}× for updates). "
        f"Goal ≥ {GOAL:,} rows/s: {met} "
        f"({min(rate[f'bulk new {s}'] for s in SIZES):,.0f} rows/s at worst for new debtors).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
