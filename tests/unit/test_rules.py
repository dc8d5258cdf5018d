"""Rules: validation a person can act on, segments from any column, stored decisions."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio import import_portfolio, read_portfolio
from kindly.rules.document import RulesError
from kindly.rules.evaluate import evaluate
from kindly.rules.history import NO_HISTORY
from kindly.rules.models import Decision
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules

TODAY = dt.date(2026, 12, 1)

RULES = {
    "bands": {
        "age_band": {"field": "age", "edges": [26, 65], "labels": ["young", "adult", "senior"]},
        "amount_band": {
            "field": "amount",
            "edges": [100, 1000],
            "labels": ["small", "medium", "large"],
        },
    },
    "defaults": {"tone": "neutral", "channels": ["email", "sms", "letter"]},
    "segments": [
        {
            "name": "student",
            "when": {"age_band": "young"},
            "tone": "friendly",
            "channels": ["sms", "email"],
        },
        {
            "name": "long-overdue",
            "when": {"days_past_due": {"gte": 90}, "amount_band": "large"},
            "tone": "firm",
            "payment_methods": ["bank_transfer", "plan"],
        },
        {"name": "risky", "when": {"risk_score": {"gt": 700}}, "channels": ["letter"]},
    ],
    "experiments": [
        {
            "name": "tone-test",
            "segments": ["default"],
            "holdout": 0.1,
            "variants": [{"name": "A"}, {"name": "B", "set": {"tone": "friendly"}}],
        }
    ],
}

HEADER = "reference,last_name,currency,amount_due,due_date,birth_date,risk_score\n"
ROWS = [
    "S-1,Young,EUR,50.00,2026-11-01,2004-03-02,",  # 22 years old
    "L-1,Late,EUR,2500.00,2026-08-01,1970-01-01,",  # 122 days overdue, large
    "R-1,Risk,EUR,300.00,2026-11-20,1970-01-01,812",  # attribute column
    "D-1,Plain,EUR,300.00,2026-11-20,1970-01-01,100",
]


def debtor(**fields) -> Debtor:
    values = dict(reference="X", last_name="X", currency="EUR", amount_due_minor=10000,
                  due_date=dt.date(2026, 11, 1), attributes={})  # fmt: skip
    values.update(fields)
    return Debtor(**values)


def test_every_problem_is_listed_with_its_path():
    broken = {
        "defaults": {"tone": "angry", "channels": ["email", "fax"]},
        "bands": {"age_band": {"field": "age", "edges": [26, 65], "labels": ["a", "b"]}},
        "segments": [
            {"name": "x", "when": {"age": {"older_than": 3}}, "send_window": {"start": "21:00",
                                                                            "end": "09:00"}},
            {"name": "x", "when": {"amount": {"gt": 5}}},
        ],
        "experiments": [{"name": "t", "segments": ["nope"], "variants": [{"name": "A"}]}],
        "colour": "blue",
    }  # fmt: skip
    with pytest.raises(RulesError) as caught:
        parse_rules(json.dumps(broken))
    errors = caught.value.errors
    expected = [
        "colour: unknown key",
        'defaults.tone: "angry" is not one of friendly, neutral, firm',
        'defaults.channels: "fax" is not one of email, sms, letter',
        "bands.age_band.labels: 2 edge(s) make 3 bands, but 2 label(s) are given",
        "segments[0] (x).when.age: unknown operator 'older_than'",
        "segments[0] (x).send_window: start 21:00 must be before end 09:00",
        "segments[1].name: 'x' is used twice",
        'experiments[0] (t).segments: no segment named "nope"',
    ]
    for message in expected:
        assert any(e.startswith(message) for e in errors), (message, errors)
    assert len(errors) == 9  # plus: one variant and no holdout compares nothing


def test_bad_json_names_the_line():
    with pytest.raises(RulesError, match="line 2 column"):
        parse_rules('{\n  "defaults": {,}\n}')


def test_segments_come_from_bands_days_past_due_and_any_column():
    rules = parse_rules(RULES)
    rows = read_portfolio((HEADER + "\n".join(ROWS)).encode(), "p.csv")
    assert rows  # the attribute column is kept for rules
    young = evaluate(debtor(birth_date=dt.date(2004, 3, 2)), rules, TODAY, past=NO_HISTORY)
    late = evaluate(debtor(amount_due_minor=250000, due_date=dt.date(2026, 8, 1),
                           birth_date=dt.date(1970, 1, 1)),
                    rules, TODAY, past=NO_HISTORY)  # fmt: skip
    risky = evaluate(debtor(attributes={"risk_score": "812"}), rules, TODAY, past=NO_HISTORY)
    plain = evaluate(debtor(attributes={"risk_score": "100"}), rules, TODAY, past=NO_HISTORY)
    assert (young.segment, young.tone, young.channels) == ("student", "friendly", ["sms", "email"])
    assert (late.segment, late.tone) == ("long-overdue", "firm")
    assert late.settings["payment_methods"] == ["bank_transfer", "plan"]
    assert (risky.segment, risky.channels) == ("risky", ["letter"])
    assert plain.segment == "default" and plain.experiment == "tone-test"
    assert plain.variant in ("control", "A", "B")
    assert plain.tone == ("friendly" if plain.variant == "B" else "neutral")


def _import(session, campaign, rows):
    import_portfolio(
        session, campaign, read_portfolio((HEADER + "\n".join(rows)).encode(), "p.csv")
    )


def test_decisions_are_stored_with_the_rule_version_and_survive_reimport(ctx):
    many = ROWS + [f"D-{i},Name,EUR,300.00,2026-11-20,1970-01-01,100" for i in range(2, 60)]
    with ctx.db.session() as session:
        campaign = Campaign(slug="w", name="W")
        session.add(campaign)
        session.flush()
        _import(session, campaign, many)
        rules = save_rules(session, campaign, parse_rules(RULES))
        decide(session, campaign, rules, TODAY)
        first = {d.reference: d.variant for d in session.scalars(select(Debtor))}
    # re-import in reverse order into a fresh campaign: hash assignment does not care
    with ctx.db.session() as session:
        other = Campaign(slug="w2", name="W2")
        session.add(other)
        session.flush()
        _import(session, other, list(reversed(many)))
        decide(session, other, save_rules(session, other, parse_rules(RULES)), TODAY)
        second = {
            d.reference: d.variant
            for d in session.scalars(select(Debtor).where(Debtor.campaign_id == other.id))
        }
        stored = session.scalar(
            select(Decision).join(Debtor, Debtor.id == Decision.debtor_id)
            .where(Debtor.reference == "L-1", Decision.campaign_id == other.id)
        )  # fmt: skip
    assert first == second
    assert len(set(first.values())) == 3  # control, A and B all occur
    assert (stored.rule_version, stored.segment, stored.tone) == (1, "long-overdue", "firm")
    assert stored.channels == ["email", "sms", "letter"]
    assert stored.treatment["payment_methods"] == ["bank_transfer", "plan"]


def test_unchanged_rules_keep_their_version(ctx):
    with ctx.db.session() as session:
        campaign = Campaign(slug="w", name="W")
        session.add(campaign)
        session.flush()
        assert save_rules(session, campaign, parse_rules(RULES)).version == 1
        assert save_rules(session, campaign, parse_rules(json.dumps(RULES))).version == 1
        assert (
            save_rules(session, campaign, parse_rules({"defaults": {"tone": "firm"}})).version == 2
        )


def test_kindly_segments_json_counts_before_sending(ctx, tmp_path, monkeypatch):
    from kindly.cli import cli

    monkeypatch.setenv("KINDLY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("KINDLY_SECRET_KEY", "test-secret-key-0123456789")
    with ctx.db.session() as session:
        campaign = Campaign(slug="w", name="W")
        session.add(campaign)
        session.flush()
        _import(session, campaign, ROWS)
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps({**RULES, "experiments": []}), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["segments", "w", "--json", "--rules", str(rules_file),
                                 "--at", "2026-12-01"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    counts = {row["segment"]: row["debtors"] for row in data["segments"]}
    assert counts == {"student": 1, "long-overdue": 1, "risky": 1, "default": 1}
    assert data["total"] == 4 and data["warnings"] == []

    saved = runner.invoke(cli, ["rules", "w", "--set", str(rules_file)])
    assert saved.exit_code == 0, saved.output
    assert "rules version 1 in force" in saved.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaults": {"tone": "angry"}}', encoding="utf-8")
    refused = runner.invoke(cli, ["rules", "w", "--set", str(bad)])
    assert refused.exit_code != 0 and "defaults.tone" in str(refused.exception)
