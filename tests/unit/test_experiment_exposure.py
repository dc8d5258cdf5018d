"""Experiments count a debtor from their exposure (a person's first view of their variant after
the experiment began) and only outcomes from then on: in the report, the cockpit and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from kindly.campaigns.models import Campaign, Debtor
from kindly.rules.experiments import exposures, report
from kindly.rules.models import Decision, RuleSet
from kindly.rules.store import current_rules, decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.tracking import events
from kindly.tracking.models import Event
from tests.support.app import load_campaign
from tests.unit.test_admin import make_user, sign_in

RULES = parse_rules({
    "experiments": [{"name": "tone", "goal": "paid",
                     "variants": [{"name": "A"}, {"name": "B", "set": {"tone": "firm"}}]}],
})  # fmt: skip
START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def event_at(session, debtor: Debtor, type_: str, at: dt.datetime, agent: str = "human") -> None:
    """Record an event as if it happened at `at` (with the debtor's variant then)."""
    events.record(session, debtor, type_, channel="web", agent=agent)
    session.flush()
    newest = session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
    session.execute(update(Event).where(Event.id == newest).values(occurred_at=at))


def experiment_started_with_everyone_in_b(ctx) -> None:
    """The three sample debtors assigned B of "tone", which began at START."""
    load_campaign(ctx)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        saved = save_rules(session, campaign, RULES)
        decide(session, campaign, saved, START.date())
        session.execute(update(RuleSet).values(created_at=START))
        session.execute(update(Decision).values(variant="B"))  # the split is not under test
        session.execute(update(Debtor).values(variant="B"))


def build_history(ctx) -> None:
    """A-1: assigned B, never seen by a person, paid anyway (by transfer, say);
    A-2: saw B after the start, paid after that; A-3: paid before the experiment existed, saw
    B later."""
    experiment_started_with_everyone_in_b(ctx)
    with ctx.db.session() as session:
        debtors = {d.reference: d for d in session.scalars(select(Debtor))}
        a1, a2, a3 = debtors["A-1"], debtors["A-2"], debtors["A-3"]
        event_at(session, a1, "viewed", START - DAY)  # before the experiment: no exposure
        event_at(session, a1, "viewed", START + DAY, agent="unverified")  # a scanner, maybe
        event_at(session, a1, "paid", START + 2 * DAY)
        event_at(session, a2, "viewed", START + DAY)
        event_at(session, a2, "viewed", START + 3 * DAY)  # a second look moves nothing
        event_at(session, a2, "paid", START + 2 * DAY)
        event_at(session, a3, "paid", START - 3 * DAY)
        event_at(session, a3, "viewed", START + DAY)


def variant_b(ctx) -> dict:
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        [experiment] = report(session, campaign, current_rules(session, campaign))
    assert experiment["started_at"] == START.isoformat()
    return next(row for row in experiment["variants"] if row["variant"] == "B")


def test_only_exposed_debtors_and_outcomes_after_exposure_count(ctx):
    build_history(ctx)
    row = variant_b(ctx)
    # A-1 never saw B: out; A-3's payment came before the experiment: exposed, not converted
    assert (row["conversions"], row.get("exposed"), row.get("assigned")) == (1, 2, 3)
    assert row["rate"] == pytest.approx(0.5)


def test_exposure_is_the_first_human_view_of_the_assigned_variant(ctx):
    build_history(ctx)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        refs = {d.id: d.reference for d in session.scalars(select(Debtor))}
        members = {debtor_id: "B" for debtor_id in refs}
        moments = {refs[i]: at for i, at in exposures(session, campaign, members, START).items()}
        assert moments == {"A-2": START + DAY, "A-3": START + DAY}
        # a view that carried another variant does not expose a debtor to this one
        assert exposures(session, campaign, dict.fromkeys(refs, "A"), START) == {}


def test_a_payment_after_exposure_counts_and_one_before_does_not(ctx):
    experiment_started_with_everyone_in_b(ctx)
    with ctx.db.session() as session:
        a2 = session.scalar(select(Debtor).where(Debtor.reference == "A-2"))
        event_at(session, a2, "paid", START + DAY)
        event_at(session, a2, "viewed", START + 2 * DAY)  # paid first, looked afterwards
    assert (variant_b(ctx)["conversions"], variant_b(ctx)["exposed"]) == (0, 1)
    with ctx.db.session() as session:
        a2 = session.scalar(select(Debtor).where(Debtor.reference == "A-2"))
        event_at(session, a2, "paid", START + 3 * DAY)  # the rest, after seeing B
    assert (variant_b(ctx)["conversions"], variant_b(ctx)["exposed"]) == (1, 1)


def test_the_cockpit_and_the_command_show_exposed_counts(client, ctx, monkeypatch):
    from kindly.cli import cli

    build_history(ctx)
    make_user(ctx)
    assert sign_in(client).status_code == 303
    html = client.get("/admin/campaigns/winter").get_data(as_text=True)
    assert "Exposed" in html and "Reached goal after exposure" in html
    row = re.search(r'<th scope="row">B</th>\s*<td class="num exposed">(\d+)</td>'
                    r'<td class="num assigned">(\d+)</td><td class="num conversions">(\d+)<',
                    html)  # fmt: skip
    assert row is not None and row.groups() == ("2", "3", "1")
    monkeypatch.setenv("KINDLY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("KINDLY_SECRET_KEY", "test-secret-key-0123456789")
    text = CliRunner().invoke(cli, ["experiments", "winter"])
    assert text.exit_code == 0, text.output
    assert "reached/exposed" in text.output
    assert re.search(r"^  B\s+1/2\s+50\.0%.*\(3\)$", text.output, re.M), text.output
    data = json.loads(CliRunner().invoke(cli, ["experiments", "winter", "--json"]).output)
    [b] = [v for v in data["experiments"][0]["variants"] if v["variant"] == "B"]
    assert (b["exposed"], b["assigned"], b["conversions"]) == (2, 3, 1)
