"""Bank statements on the real PostgreSQL: the bulk path (COPY, ANY(array)) books what the
rules found exactly once, and migration 0997 gives existing debtors their payment reference."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import func, select, text

from kindly.bank.rf import is_valid, rf_for
from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio import import_portfolio, read_portfolio
from kindly.cases.read import case_of, cases_for
from kindly.claims import balance as claims_balance
from kindly.context import Context
from kindly.infra.db import MIGRATIONS
from kindly.payments.models import Instalment, Payment, Plan
from kindly.reconciliation import review
from kindly.reconciliation.importer import import_statement
from kindly.reconciliation.models import BankAllocation, BankEntry
from kindly.site import microsite
from kindly.tracking.models import Event
from tests.support import bankfiles as bf
from tests.support.app import installed, make_settings

IBAN = "DE02120300000000202051"
COUNT = 300


def portfolio(count: int) -> str:
    rows = ["reference,first_name,last_name,currency,amount_due,due_date"]
    rows += [f"K-{i:05d},Vorname{i},Nachname{i},EUR,{50 + i}.00,2026-11-15" for i in range(count)]
    return "\n".join(rows) + "\n"


@pytest.fixture
def pg(tmp_path, postgres_url):
    with installed(make_settings(tmp_path / "var", KINDLY_DATABASE_URL=postgres_url)) as ctx:
        with ctx.db.session() as session:
            campaign = Campaign(slug="winter", name="Winter")
            session.add(campaign)
            session.flush()
            import_portfolio(session, campaign, read_portfolio(portfolio(COUNT).encode(), "p.csv"))
        yield ctx


def test_every_rule_books_once_through_copy_and_a_second_import_changes_nothing(pg):
    rows = []
    for i in range(COUNT):
        amount = f"{50 + i}.00"
        if i % 4 == 0:
            rows.append(
                bf.Payment(f"P {i}", IBAN, amount, reference=rf_for("winter", f"K-{i:05d}"))
            )
        elif i % 4 == 1:
            rows.append(bf.Payment(f"P {i}", IBAN, amount, remittance=f"Rg. K-{i:05d} danke"))
        elif i % 4 == 2:
            rows.append(bf.Payment(f"Nachname{i}, Vorname{i}", IBAN, amount, remittance="Zahlung"))
        else:
            rows.append(bf.Payment(f"Stranger {i}", IBAN, "1.00", remittance="?"))
    data = bf.camt053(rows, version="02")
    with pg.db.session() as session:
        result = import_statement(session, pg.storage, data, "s.xml")
    assert (result.matched, result.unmatched) == (225, 75)
    assert result.by_rule == {"rf": 75, "reference": 75, "name_amount": 75}
    with pg.db.session() as session:
        debtors = session.scalars(select(Debtor).order_by(Debtor.reference)).all()
        states = cases_for(session, debtors)
        assert sum(1 for c in states.values() if c.state == "paid") == 225
        assert session.scalar(select(func.count(Event.id)).where(Event.type == "paid")) == 225
        assert session.scalar(select(func.count(BankAllocation.id))) == 225
        ids = session.scalars(select(BankEntry.id).order_by(BankEntry.id)).all()
        assert ids == list(range(ids[0], ids[0] + COUNT))  # drawn from the table's sequence
    with pg.db.session() as session:
        twice = import_statement(session, pg.storage, data + b"\n", "copy.xml")
    assert (twice.already_imported, twice.matched, twice.duplicate) == (COUNT, 0, False)
    with pg.db.session() as session:
        assert session.scalar(select(func.count(BankEntry.id))) == COUNT
        # a row a later single-row insert makes does not collide with the copied ids
        (entry,) = review.waiting(session, limit=1)
        review.assign(session, entry.id, session.scalar(select(Debtor).limit(1)), user=None,
                      via="cli")  # fmt: skip


def test_a_plan_a_return_and_a_credit_on_postgresql(pg):
    with pg.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "K-00010"))  # 60.00
        plan = Plan(campaign_id=debtor.campaign_id, debtor_id=debtor.id, currency="EUR",
                    total_minor=6000, frequency="monthly", count=2, status="active", misses=0)  # fmt: skip
        session.add(plan)
        session.flush()
        for seq in (1, 2):
            session.add(Instalment(plan_id=plan.id, seq=seq, due_date=dt.date(2026, 12, seq),
                                   amount_minor=3000, status="due", attempts=0))  # fmt: skip
        payref = debtor.payment_reference
    pay = bf.Payment("X", IBAN, "30.00", reference=payref, end_to_end="E2E-1", bank_ref="B1")
    more = bf.Payment("X", IBAN, "45.00", reference=payref, end_to_end="E2E-2", bank_ref="B2")
    with pg.db.session() as session:
        import_statement(session, pg.storage, bf.camt053([pay, more]), "a.xml")
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "K-00010"))
        assert [i.status for i in session.get(Plan, plan.id).instalments] == ["paid", "paid"]
        assert claims_balance.credit_minor(session, debtor) == 1500
        assert case_of(session, debtor).state == "paid"
        token = debtor.token
    # the page's one read (a raw psycopg cursor on PostgreSQL) sees the latest transfer
    assert microsite.read_live_state(pg.db, token).transfer == (4500, bf.BOOKED)
    back = bf.Payment("X", IBAN, "45.00", credit=False, return_reason="MD06", end_to_end="E2E-2",
                      bank_ref="B3")  # fmt: skip
    with pg.db.session() as session:
        result = import_statement(session, pg.storage, bf.mt940([back], statement_id="R"), "r.sta")
        assert result.returned == 1
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "K-00010"))
        assert (
            claims_balance.balance_minor(session, debtor),
            claims_balance.credit_minor(session, debtor),
        ) == (
            3000,
            0,
        )
        assert case_of(session, debtor).state != "paid"
        kinds = sorted(session.scalars(select(Payment.kind).where(Payment.debtor_id == debtor.id)))
        assert kinds == ["payment", "payment", "return"]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_migration_0997_gives_existing_debtors_their_payment_reference(request, tmp_path, dialect):
    env = {}
    if dialect == "postgresql":
        env["KINDLY_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    context = Context(make_settings(Path(tmp_path / "var"), **env))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with context.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0992")
    with context.db.engine.begin() as connection:
        connection.execute(text("INSERT INTO campaign (id, slug, name, default_locale, brand_color,"
                                " settings, created_at) VALUES (1, 'old', 'Old', 'de-DE',"
                                " '#000000', '{}', CURRENT_TIMESTAMP)"))  # fmt: skip
        for number, reference in enumerate(("A-1", "A 1", "B/2"), 1):
            connection.execute(
                text("INSERT INTO debtor (id, campaign_id, reference, token, last_name, currency,"
                     " amount_due_minor, due_date, attributes, segment, variant, channel,"
                     " created_at, updated_at) VALUES (:id, 1, :ref, :token, 'X', 'EUR', 100,"
                     " '2026-12-01', '{}', 'default', 'A', 'email', CURRENT_TIMESTAMP,"
                     " CURRENT_TIMESTAMP)"),
                {"id": number, "ref": reference, "token": f"token-{number}"},
            )  # fmt: skip
    context.db.migrate()
    with context.db.session() as session:
        found = dict(session.execute(select(Debtor.reference, Debtor.payment_reference)).all())
    assert found == {ref: rf_for("old", ref) for ref in ("A-1", "A 1", "B/2")}
    assert all(is_valid(value) for value in found.values())
    context.db.dispose()


def test_two_imports_of_overlapping_statements_at_once_book_each_entry_once(pg):
    import threading

    pays = [bf.Payment(f"P {i}", IBAN, "5.00", reference=rf_for("winter", f"K-{i:05d}"),
                       bank_ref=f"REF-{i}") for i in range(40)]  # fmt: skip
    files = [bf.camt053(pays[:30], statement_id="A"), bf.mt940(pays[10:], statement_id="B")]
    results, errors = [], []

    def run(data: bytes, name: str) -> None:
        try:
            with pg.db.session() as session:
                results.append(import_statement(session, pg.storage, data, name))
        except Exception as error:  # every failure is reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(d, f"f{n}")) for n, d in enumerate(files)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.already_imported for r in results) == [0, 20]
    with pg.db.session() as session:
        assert session.scalar(select(func.count(Payment.id))) == 40
        assert session.scalar(select(func.sum(Payment.amount_minor))) == 40 * 500


def test_chunks_written_by_the_writer_thread_tie_each_entry_to_its_own_case(pg, monkeypatch):
    """Chunks of 7 over 300 entries: every allocation joins the entry, payment, event and case
    that belong together, whatever chunk each fell into."""
    monkeypatch.setattr("kindly.reconciliation.writer.CHUNK", 7)
    rows = [
        bf.Payment(f"P {i}", IBAN, f"{50 + i}.00", reference=rf_for("winter", f"K-{i:05d}"))
        if i % 3
        else bf.Payment(f"Stranger {i}", IBAN, "1.00", remittance="?")
        for i in range(COUNT)
    ]
    with pg.db.session() as session:
        result = import_statement(session, pg.storage, bf.camt053(rows), "s.xml")
    assert (result.matched, result.unmatched) == (200, 100)
    with pg.db.session() as session:
        joined = session.execute(
            select(BankEntry.amount_minor, BankEntry.state, Payment.amount_minor, Debtor.reference,
                   Payment.debtor_id, BankAllocation.debtor_id, Payment.provider_ref,
                   BankEntry.identity)
            .join(BankAllocation, BankAllocation.entry_id == BankEntry.id)
            .join(Payment, Payment.id == BankAllocation.payment_id)
            .join(Debtor, Debtor.id == Payment.debtor_id)
        ).all()  # fmt: skip
        assert len(joined) == 200
        for entry_minor, state, paid_minor, reference, debtor, allocated, ref, identity in joined:
            assert state == "matched" and entry_minor == paid_minor and ref == identity
            assert debtor == allocated and entry_minor == (50 + int(reference[2:])) * 100
        keys = set(session.scalars(select(Event.idempotency_key).where(Event.type == "paid")))
        assert keys == {f"paid:bank:{ref}" for *_, ref, _ in joined}


def test_a_failure_in_the_writer_thread_leaves_nothing_behind(pg, monkeypatch):
    import kindly.reconciliation.writer as writer

    monkeypatch.setattr(writer, "CHUNK", 10)
    calls = []

    def failing(connection, columns):
        calls.append(columns["count"])
        if len(calls) == 3:
            raise RuntimeError("the server went away")
        return real(connection, columns)

    real = writer.write_arrays
    monkeypatch.setattr(writer, "write_arrays", failing)
    rows = [bf.Payment(f"P {i}", IBAN, f"{50 + i}.00", reference=rf_for("winter", f"K-{i:05d}"))
            for i in range(60)]  # fmt: skip
    with pytest.raises(RuntimeError, match="went away"), pg.db.session() as session:
        import_statement(session, pg.storage, bf.camt053(rows), "s.xml")
    assert len(calls) == 3  # the chunks after the failed one were never written
    with pg.db.session() as session:
        assert session.scalar(select(func.count(BankEntry.id))) == 0
        assert session.scalar(select(func.count(Payment.id))) == 0
        assert session.scalar(select(func.count(Event.id)).where(Event.type == "paid")) == 0


def test_a_campaign_deleted_takes_its_payments_and_events_through_its_debtors(pg):
    """Migration 1001 dropped the campaign keys of payment and event: the debtor's key still
    cascades, so nothing of a deleted campaign stays behind."""
    rows = [bf.Payment(f"P {i}", IBAN, f"{50 + i}.00", reference=rf_for("winter", f"K-{i:05d}"))
            for i in range(20)]  # fmt: skip
    with pg.db.session() as session:
        assert import_statement(session, pg.storage, bf.camt053(rows), "s.xml").matched == 20
    with pg.db.session() as session:
        session.execute(text("DELETE FROM campaign WHERE slug = 'winter'"))
    with pg.db.session() as session:
        assert session.scalar(select(func.count(Payment.id))) == 0
        assert session.scalar(select(func.count(Event.id))) == 0
        assert session.scalar(select(func.count(BankAllocation.id))) == 0


def test_array_literals_reach_the_server_as_they_were(postgres_url):
    import psycopg

    from kindly.reconciliation.bulk import array_literal

    texts = ["plain", 'a "quoted" one', "back\\slash", "{braces}, commas", "NULL", "", None, "ü ß"]
    days = [dt.date(2026, 12, 1), None]
    with psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute(
            "SELECT %s::text::text[], %s::text::date[], %s::text::bigint[]",
            (array_literal(texts), array_literal(days), array_literal([1, -2, 3])),
        ).fetchone()
    assert row == (texts, days, [1, -2, 3])
