"""Bank statements: entries imported and matched per second against as many open cases.

A generated portfolio of N debtors (bench_import's) goes into a fresh PostgreSQL database;
a real camt.053 statement of N credit entries (tests/support/bankfiles) pays them in the mix
banks deliver: most quote the RF reference (structured or typed into the text, in any case
and spacing), some only the debtor's own reference, some only the payer's name and the
amount, and a few are strangers' that wait for review. Figures cover reading nothing but the
parsed statement: matching, storing the file, writing entries, payments, `paid` events and
allocations, and the commit. Parsing the XML is measured on its own line. The baseline in the
same run books the same entries the naive way, one ORM object and one query per entry.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = tuple(int(s) for s in os.environ.get("KINDLY_BENCH_BANK_SIZES", "10000,100000").split(","))
GOAL = 20_000
BASELINE = 10_000
"""Entries the naive baseline books (it runs at a few hundred a second)."""
REPEAT = int(os.environ.get("KINDLY_BENCH_BANK_REPEAT", "3"))
"""Runs per size; the fastest counts."""


def statement(size: int, slug: str) -> bytes:
    """A camt.053 of `size` credit entries paying the generated debtors of `slug`."""
    from bench.bench_import import PEOPLE
    from kindly.bank.rf import printed, rf_for
    from tests.support.bankfiles import Payment, camt053

    rows = []
    for i in range(size):
        *_, first, last, _, _, _, _, currency = PEOPLE[i % 5]
        due = (4_000 + i % 170_000) + i % 400 + 500
        amount = f"{due / 100:.2f}"
        reference = rf_for(slug, f"K-{i:07d}")
        iban = f"DE{10 + i % 89:02d}{i:018d}"
        kind = i % 20
        name = f"{first} {last}"
        if kind < 12:  # structured creditor reference
            row = Payment(name, iban, amount, currency, reference=reference)
        elif kind < 15:  # typed into the text, lower case with spaces
            row = Payment(name, iban, amount, currency, f"ref {printed(reference).lower()}")
        elif kind < 18:  # the debtor's own reference only
            row = Payment(name, iban, amount, currency, f"Rechnung K-{i:07d} danke")
        elif kind < 19:  # a stranger: waits for review
            row = Payment(f"Stranger {i}", iban, "12.34", currency, f"Miete {i}")
        else:  # name and amount only (names repeat every fifth debtor: most wait)
            row = Payment(f"{last}, {first}", iban, amount, currency, "Zahlung")
        rows.append(row)
    # each size on an account of its own: entries without a bank reference are told apart by
    # account, day, amount, payer and text, and the sizes' first entries share the rest
    account = f"DE{size % 89 + 10:02d}{size:018d}"
    return camt053(rows, account=account, statement_id=f"BENCH-{slug}")


def naive(db, statements) -> float:
    """The baseline: per entry, one query for the case and ORM objects flushed one by one."""
    from sqlalchemy import or_, select

    from kindly.bank.entries import identities
    from kindly.bank.rf import find
    from kindly.campaigns.models import Debtor
    from kindly.payments.models import Payment
    from kindly.reconciliation.models import BankEntry, BankStatement

    entries = [e for s in statements for e in s.entries]
    started = time.perf_counter()
    with db.session() as session:
        head = BankStatement(format="camt", storage_key="-", sha256="naive", imported_by="bench",
                             entries=0, matched=0, unmatched=0, ignored=0, returned=0,
                             already_imported=0)  # fmt: skip
        session.add(head)
        session.flush()
        for key, entry in zip(identities(entries), entries, strict=True):
            refs = ([entry.creditor_reference] if entry.creditor_reference else []) + find(
                entry.remittance
            )
            words = entry.remittance.split()
            debtor = session.scalar(
                select(Debtor)
                .where(or_(Debtor.payment_reference.in_(refs), Debtor.reference.in_(words)))
                .limit(1)
            )
            row = BankEntry(statement_id=head.id, identity="naive:" + key, amount_minor=entry.amount_minor,
                            currency=entry.currency, credit=entry.credit, bank_status=entry.status,
                            remittance=entry.remittance, is_return=False, origin="",
                            state="matched" if debtor else "unmatched")  # fmt: skip
            session.add(row)
            if debtor is not None:
                session.add(Payment(campaign_id=debtor.campaign_id, debtor_id=debtor.id, provider="naive",
                                    provider_ref=key, amount_minor=entry.amount_minor, currency=entry.currency,
                                    status="succeeded", kind="payment"))  # fmt: skip
            session.flush()
    return time.perf_counter() - started


def measure() -> dict[str, tuple[int, float, dict]]:
    """{label: (entries, seconds, counts)} for each size, the parse and the baseline; each
    import figure is the best of REPEAT runs, each on a fresh database (a shared machine's
    other work only ever makes a run slower)."""
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import select

    import kindly.models  # noqa: F401  (every table, so relationships resolve)
    from bench.bench_import import _database, portfolio_csv
    from kindly.bank import detect
    from kindly.campaigns.models import Campaign
    from kindly.campaigns.portfolio import import_portfolio, read_portfolio
    from kindly.infra.storage import LocalStorage
    from kindly.reconciliation.importer import import_parsed

    storage = LocalStorage(Path(tempfile.mkdtemp(prefix="kindly-bench-bank-")))
    figures: dict[str, tuple[int, float, dict]] = {}

    def best(label: str, size: int, seconds: float, counts: dict) -> None:
        if label not in figures or seconds < figures[label][1]:
            figures[label] = (size, seconds, counts)

    for size in SIZES:
        slug = f"bank-{size}"
        rows = read_portfolio(portfolio_csv(size).encode(), "p.csv")
        data = statement(size, slug)
        started = time.perf_counter()
        parsed = detect.parse(data, "s.xml")
        best(f"parse {size}", size, time.perf_counter() - started, {})
        for attempt in range(REPEAT):
            db, drop = _database()
            try:
                with db.session() as session:
                    campaign = Campaign(slug=slug, name=slug)
                    session.add(campaign)
                    session.flush()
                    import_portfolio(session, campaign, rows)
                if size == BASELINE and attempt == 0:
                    best(f"naive {size}", size, naive(db, parsed), {})
                started = time.perf_counter()
                with db.session() as session:
                    campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
                    result = import_parsed(
                        session, storage, data, "s.xml", parsed, campaign=campaign, by="bench"
                    )
                best(f"import {size}", size, time.perf_counter() - started, result.as_dict())
                started = time.perf_counter()
                with db.session() as session:
                    again = import_parsed(
                        session, storage, data + b" ", "s2.xml", parsed, by="bench"
                    )
                assert again.already_imported == size
                best(f"again {size}", size, time.perf_counter() - started, again.as_dict())
            finally:
                drop()
    return figures


def run() -> str:
    """The Markdown section for BENCHMARKS.md."""
    f = measure()
    rate = {k: n / s for k, (n, s, _) in f.items()}
    small, large = SIZES[0], SIZES[-1]
    base = rate.get(f"naive {BASELINE}")
    lines = [
        "## Bank statements (PostgreSQL)",
        "",
        f"A generated portfolio of N open cases and a real camt.053 of N credit entries paying "
        "them (60 % structured RF reference, 15 % RF typed into the text in lower case with "
        "spaces, 15 % the debtor's own reference, 5 % name and amount only, 5 % strangers), "
        "matched against every case of the campaign in a fresh database. Figures are "
        "`import_parsed` plus the commit: matching, the stored file, entries, payments, `paid` "
        "events and allocations; parsing the XML is shown apart. The baseline books the same "
        f"entries with one query and ORM objects per entry, at {BASELINE:,}, in the same run. "
        f"Each import figure is the best of {REPEAT} runs on a fresh database. "
        f"Goal: ≥ {GOAL:,} entries/s.",
        "",
        "| what | entries | seconds | entries/s | × baseline | matched | waiting |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    labels = [
        ("naive", "baseline: one query and ORM objects per entry"),
        ("import", "**import: match and book in bulk**"),
        ("again", "the same entries again (all already imported)"),
        ("parse", "parsing the camt.053 alone"),
    ]
    for key, text in labels:
        for size in SIZES:
            label = f"{key} {size}"
            if label not in f:
                continue
            n, seconds, counts = f[label]
            ratio = f"{rate[label] / base:.1f}" if base and key != "parse" else ""
            lines.append(
                f"| {text} | {n:,} | {seconds:.2f} | {rate[label]:,.0f} | {ratio} | "
                f"{counts.get('matched', '')} | {counts.get('unmatched', '')} |"
            )
    lines.append("")
    if small != large:
        scale = f[f"import {large}"][1] / f[f"import {small}"][1]
        lines.append(
            f"Linearity: {large // small}× the entries took {scale:.1f}× the time "
            f"(goal ≤ {1.1 * large / small:.0f}×)."
        )
    # the goal names 100,000 entries against 100,000 open cases: judged at the largest size
    at_goal = rate[f"import {large}"]
    met = "met" if large >= 100_000 and at_goal >= GOAL else "**not met**"
    whole = ", ".join(
        f"{s:,}: {s / (f[f'import {s}'][1] + f[f'parse {s}'][1]):,.0f}" for s in SIZES
    )
    lines += [
        f"Goal ≥ {GOAL:,} entries/s at 100,000 entries: {met} ({at_goal:,.0f} entries/s at "
        f"{large:,}; {min(rate[f'import {s}'] for s in SIZES):,.0f} at the smallest size). "
        f"With parsing the file counted in, entries/s: {whole}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
