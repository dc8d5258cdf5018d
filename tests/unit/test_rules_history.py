"""Past behaviour is read once per batch, and evaluating a debtor touches no database."""

from __future__ import annotations

import datetime as dt
import json
from contextlib import contextmanager

from click.testing import CliRunner
from sqlalchemy import event, select
from sqlalchemy.orm import object_session

from kindly.campaigns.models import Campaign, Debtor
from kindly.rules.evaluate import evaluate
from kindly.rules.experiments import report
from kindly.rules.history import NO_HISTORY, past_behaviour, past_of
from kindly.rules.store import current_rules, decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.tracking import events
from tests.support.app import load_campaign

TODAY = dt.date(2026, 12, 1)
RULES = parse_rules({
    "segments": [
        {"name": "paid-before", "when": {"past_paid": True}, "tone": "friendly"},
        {"name": "returning", "when": {"past_campaigns": {"gte": 1}}, "tone": "firm"},
    ]
})  # fmt: skip


@contextmanager
def statements(engine):
    """Collect the SQL statements the engine runs inside the block."""
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _two_campaigns(ctx) -> None:
    """autumn (60 days older, A-1 paid there) and winter, both with the sample portfolio."""
    load_campaign(ctx, slug="autumn")
    with ctx.db.session() as session:
        autumn = session.scalar(select(Campaign).where(Campaign.slug == "autumn"))
        autumn.created_at -= dt.timedelta(days=60)
        a1 = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        events.record(session, a1, "paid")
    load_campaign(ctx, slug="winter")


def test_evaluate_runs_without_any_session():
    debtor = Debtor(reference="X", last_name="X", currency="EUR", amount_due_minor=10000,
                    due_date=dt.date(2026, 11, 1), attributes={})  # fmt: skip
    assert object_session(debtor) is None
    paid = evaluate(debtor, RULES, TODAY, past={**NO_HISTORY, "past_paid": True})
    fresh = evaluate(debtor, RULES, TODAY, past=NO_HISTORY)
    assert (paid.segment, fresh.segment) == ("paid-before", "default")


def test_evaluate_of_a_stored_debtor_runs_no_query(ctx):
    _two_campaigns(ctx)
    with ctx.db.session() as session:
        winter = session.scalar(select(Campaign).where(Campaign.slug == "winter"))
        debtors = list(session.scalars(select(Debtor).where(Debtor.campaign_id == winter.id)))
        history = past_behaviour(session, winter.id)
        with statements(ctx.db.engine) as seen:
            treatments = {
                d.reference: evaluate(d, RULES, TODAY, past=past_of(history, d)).segment
                for d in debtors
            }
    assert seen == []
    assert treatments == {"A-1": "paid-before", "A-2": "returning", "A-3": "returning"}


def test_decide_reads_the_history_of_the_whole_batch_in_one_query(ctx):
    # Before the split, decide ran 4 reads per debtor (20 statements for these 3 debtors).
    _two_campaigns(ctx)
    with ctx.db.session() as session:
        winter = session.scalar(select(Campaign).where(Campaign.slug == "winter"))
        saved = save_rules(session, winter, RULES)
        with statements(ctx.db.engine) as seen:
            counts = decide(session, winter, saved, TODAY)
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert counts == {"paid-before": 1, "returning": 2}
    assert len(reads) == 3  # the debtors, their decisions so far, and their history


def test_a_case_seen_in_no_earlier_campaign_has_no_history(ctx):
    _two_campaigns(ctx)
    with ctx.db.session() as session:
        autumn = session.scalar(select(Campaign).where(Campaign.slug == "autumn"))
        winter = session.scalar(select(Campaign).where(Campaign.slug == "winter"))
        assert past_behaviour(session, autumn.id) == {}  # nothing came before autumn
        later = past_behaviour(session, winter.id)
    assert sorted(past["past_campaigns"] for past in later.values()) == [1, 1, 1]
    assert sorted(past["past_paid"] for past in later.values()) == [False, False, True]


def test_experiment_report_uses_the_rules_it_is_given(ctx, monkeypatch):
    from kindly.cli import cli

    load_campaign(ctx)
    rules = parse_rules({
        "experiments": [{"name": "tone", "holdout": 0.2, "goal": "paid",
                         "variants": [{"name": "A"}, {"name": "B", "set": {"tone": "firm"}}]}],
    })  # fmt: skip
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        saved = save_rules(session, campaign, rules)
        decide(session, campaign, saved, TODAY)
        data = report(session, campaign, current_rules(session, campaign))
        assert report(session, campaign, parse_rules({})) == []  # no experiments, no rows
    [experiment] = data
    assert (experiment["experiment"], experiment["rule_version"]) == ("tone", 1)
    assert sum(row["assigned"] for row in experiment["variants"]) == 3
    assert sum(row["exposed"] for row in experiment["variants"]) == 0  # nobody looked yet
    monkeypatch.setenv("KINDLY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("KINDLY_SECRET_KEY", "test-secret-key-0123456789")
    result = CliRunner().invoke(cli, ["experiments", "winter", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["experiments"] == json.loads(json.dumps(data))
