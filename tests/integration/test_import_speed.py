"""The bulk import on PostgreSQL (COPY) writes what the one-object-at-a-time path wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio import PortfolioRejected, import_portfolio, read_portfolio
from kindly.context import Context
from tests.support.app import PORTFOLIO, make_settings

pytestmark = pytest.mark.integration
WITH_ATTRIBUTE = "".join(
    line + (",risk\n" if number == 0 else ",low\n")
    for number, line in enumerate(PORTFOLIO.splitlines())
)


@pytest.fixture
def pg(tmp_path, postgres_url) -> Context:
    context = Context(make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url))
    context.db.migrate()
    return context


def campaign(session, slug: str) -> Campaign:
    found = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if found is None:
        found = Campaign(slug=slug, name=slug)
        session.add(found)
        session.flush()
    return found


def snapshot(context: Context, slug: str) -> dict[str, tuple]:
    with context.db.session() as session:
        debtors = session.scalars(
            select(Debtor).join(Campaign).where(Campaign.slug == slug).order_by(Debtor.reference)
        )
        return {
            d.reference: (
                d.first_name, d.last_name, d.email, d.phone, d.locale, d.currency,
                d.amount_due_minor, d.principal_minor, d.due_date, d.country, d.attributes,
                d.segment, d.variant, d.channel, d.created_at is not None,
            )
            for d in debtors
        }  # fmt: skip


def test_bulk_and_orm_write_the_same_debtors(pg):
    for slug, write in (("bulk", "bulk"), ("orm", "orm")):
        with pg.db.session() as session:
            result, _ = import_portfolio(
                session, campaign(session, slug), read_portfolio(WITH_ATTRIBUTE.encode(), "p.csv"),
                write=write,
            )  # fmt: skip
            assert (result.created, result.updated) == (3, 0)
    assert snapshot(pg, "bulk") == snapshot(pg, "orm")
    assert snapshot(pg, "bulk")["A-1"][10] == {"risk": "low"}


def test_reimport_keeps_tokens_replaces_attributes_and_adds_new_rows(pg):
    with pg.db.session() as session:
        import_portfolio(
            session, campaign(session, "w"), read_portfolio(WITH_ATTRIBUTE.encode(), "p.csv")
        )
    with pg.db.session() as session:
        tokens = dict(session.execute(select(Debtor.reference, Debtor.token)).all())
        stamps = dict(session.execute(select(Debtor.reference, Debtor.updated_at)).all())
    changed = (
        WITH_ATTRIBUTE.replace(
            "1234.56,1100.00,84.56,50.00", "1300.00,1100.00,150.00,50.00"
        ).replace(",DE,low", ",DE,high")
        + "A-4,,Neu,Neumann,,,de-DE,EUR,10.00,,,,2027-02-01,,,,,,DE,\n"
    )
    with pg.db.session() as session:
        c = campaign(session, "w")
        loaded = session.scalar(
            select(Debtor).where(Debtor.reference == "A-1")
        )  # held by the caller
        result, _ = import_portfolio(session, c, read_portfolio(changed.encode(), "p.csv"))
        assert (result.created, result.updated) == (1, 3)
        assert loaded.amount_due_minor == 130000  # the session's copy is not stale
    after = snapshot(pg, "w")
    assert after["A-1"][6] == 130000
    assert after["A-1"][10] == {"risk": "high"}  # attributes replaced
    assert after["A-4"][10] == {"risk": ""}
    with pg.db.session() as session:
        now = dict(session.execute(select(Debtor.reference, Debtor.token)).all())
        stamped = dict(session.execute(select(Debtor.reference, Debtor.updated_at)).all())
    assert {k: now[k] for k in tokens} == tokens
    assert len(set(now.values())) == 4
    assert stamped["A-1"] > stamps["A-1"]  # changed rows are updated …
    assert stamped["A-2"] == stamps["A-2"]  # … unchanged ones are left alone


def test_a_failure_after_the_copy_writes_nothing(pg):
    with pg.db.session() as session:
        import_portfolio(
            session, campaign(session, "w"), read_portfolio(PORTFOLIO.encode(), "p.csv")
        )
    bigger = PORTFOLIO + "A-4,,Neu,Neumann,,,de-DE,EUR,10.00,,,,2027-02-01,,,,,,DE\n"
    with pytest.raises(RuntimeError), pg.db.session() as session:
        import_portfolio(session, campaign(session, "w"), read_portfolio(bigger.encode(), "p.csv"))
        raise RuntimeError("the caller fails later in the same transaction")
    with pg.db.session() as session:
        assert session.scalar(select(func.count(Debtor.id))) == 3
    bad = bigger.replace("10.00", "10,00")
    with pytest.raises(PortfolioRejected), pg.db.session() as session:
        import_portfolio(session, campaign(session, "w"), read_portfolio(bad.encode(), "p.csv"))
    assert len(snapshot(pg, "w")) == 3


def test_a_large_file_round_trips(pg):
    from bench.bench_import import portfolio_csv

    rows = read_portfolio(portfolio_csv(3000).encode(), "p.csv")
    with pg.db.session() as session:
        result, _ = import_portfolio(session, campaign(session, "big"), rows)
    assert result.created == 3000
    with pg.db.session() as session:
        result, _ = import_portfolio(session, campaign(session, "big"), rows)
    assert (result.created, result.updated) == (0, 3000)
    with pg.db.session() as session:
        assert session.scalar(select(func.count(Debtor.id))) == 3000
        assert session.scalar(select(func.count(func.distinct(Debtor.token)))) == 3000
