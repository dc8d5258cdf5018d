"""Refunds on PostgreSQL: the migration goes down and up, runs at the same moment list each
credit once, and exports at the same moment pay and book each refund once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import func, inspect, select

from kindly.campaigns.models import Debtor
from kindly.claims import balance as claims_balance
from kindly.creditors.service import set_creditor
from kindly.infra.db import MIGRATIONS
from kindly.payments.models import Payment
from kindly.reconciliation.importer import import_statement
from kindly.refunds import sepa, service
from kindly.refunds.models import Refund
from tests.support import bankfiles as bf
from tests.support.app import installed, load_campaign, make_settings
from tests.unit.test_refunds import ERIKA_IBAN, PORTFOLIO, STADTWERKE


def _alembic(ctx, action, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with ctx.db.engine.begin() as conn:
        config.attributes["connection"] = conn
        action(config, revision)


def _at_once(ctx, work: Callable, n: int = 4) -> list:
    start, results, errors = threading.Barrier(n), [], []

    def run() -> None:
        try:
            with ctx.db.session() as session:
                start.wait()
                results.append(work(session))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def test_refunds_are_listed_paid_and_booked_once_however_many_run_at_once(tmp_path, postgres_url):
    settings = make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url)
    with installed(settings) as ctx:
        _alembic(ctx, command.downgrade, "0994")  # before the bank and refund tables
        assert "refund" not in inspect(ctx.db.engine).get_table_names()
        _alembic(ctx, command.upgrade, "head")
        load_campaign(ctx, "winter", PORTFOLIO)
        with ctx.db.session() as session:
            set_creditor(session, "Stadtwerke Beispielstadt GmbH", STADTWERKE)
            set_creditor(session, "Acqua Roma S.p.A.", {"iban": "IT60X0542811101000000123456"})
            debtors = list(session.scalars(select(Debtor).order_by(Debtor.id)))
            statement = bf.camt053([
                bf.Payment(d.last_name, ERIKA_IBAN, str(d.amount_due_minor / 100 + 10),
                           reference=d.payment_reference, bank_ref=f"B-{d.id}")
                for d in debtors
            ])  # fmt: skip
            import_statement(session, ctx.storage, statement, "dec.xml")

        _at_once(ctx, service.sync)
        with ctx.db.session() as session:
            rows = session.scalars(select(Refund).order_by(Refund.id)).all()
            assert [(r.amount_minor, r.status) for r in rows] == [(1000, "due")] * len(debtors)
            for refund in rows:
                service.approve(session, refund, user=None, via="cli")

        results = _at_once(ctx, lambda session: sepa.export(session, user=None, via="cli"))
        files = [f for result in results for f in result.files]
        assert sorted(f.export.account_iban for f in files) == [
            "DE89370400440532013000", "IT60X0542811101000000123456"]  # fmt: skip
        assert sum(len(f.refund_ids) for f in files) == len(debtors)
        with ctx.db.session() as session:
            booked = session.scalar(select(func.count(Payment.id)).where(Payment.kind == "refund"))
            assert booked == len(debtors)
            for debtor in session.scalars(select(Debtor)):
                assert claims_balance.credit_minor(session, debtor) == 0
            assert service.sync(session) == 0
