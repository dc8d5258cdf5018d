"""Past behaviour in one query reads the same on SQLite and PostgreSQL (JSON and EXISTS)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.context import Context
from kindly.payments.models import Payment
from kindly.rules.history import past_behaviour
from kindly.tracking import events
from tests.support.app import load_campaign, make_settings

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_each_kind_of_past_behaviour_is_found(database, request, tmp_path):
    env = {"KINDLY_DATA_DIR": str(tmp_path / "var")}
    if database == "postgresql":
        env["KINDLY_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    ctx = Context(make_settings(tmp_path / "var", **env))
    ctx.db.migrate()
    load_campaign(ctx, slug="autumn")
    with ctx.db.session() as session:
        autumn = session.scalar(select(Campaign).where(Campaign.slug == "autumn"))
        autumn.created_at -= dt.timedelta(days=60)
        a1, a2, a3 = session.scalars(select(Debtor).order_by(Debtor.reference)).all()
        session.add(Payment(campaign_id=autumn.id, debtor_id=a1.id, provider="sandbox",
                            provider_ref="sbx_1", amount_minor=100, currency=a1.currency,
                            status="succeeded"))  # fmt: skip
        events.record(session, a2, "contact", data={"topic": "dispute", "message": "not mine"})
        events.record(session, a3, "plan_agreed")
        events.record(session, a3, "contact", data={"topic": "question"})
    winter_id = load_campaign(ctx, slug="winter")
    with ctx.db.session() as session:
        refs = {i: r for i, r in session.execute(select(Debtor.id, Debtor.reference))}
        found = {refs[i]: past for i, past in past_behaviour(session, winter_id).items()}
        only = past_behaviour(session, winter_id, [i for i, r in refs.items() if r == "A-3"])
    assert found == {
        "A-1": {"past_campaigns": 1, "past_paid": True, "past_plan": False, "past_disputed": False},
        "A-2": {"past_campaigns": 1, "past_paid": False, "past_plan": False, "past_disputed": True},
        "A-3": {"past_campaigns": 1, "past_paid": False, "past_plan": True, "past_disputed": False},
    }
    assert [refs[i] for i in only] == ["A-3"]
    ctx.db.engine.dispose()
