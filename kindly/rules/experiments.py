"""Experiment outcomes read from the database: who got which variant, who was exposed to it
and when, and who reached the goal after that.

The statistics themselves are in `kindly.rules.stats`; the rules are passed in, so this
module never reads the rules store (the store calls `learning_weights`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign
from kindly.infra.db import as_utc
from kindly.money import from_minor
from kindly.payments.models import Payment
from kindly.rules.document import Rules
from kindly.rules.models import Decision, RuleSet
from kindly.rules.stats import (
    CONTROL,
    SRM_ALPHA,
    chance_to_beat,
    difference_interval,
    holm,
    sample_ratio,
    thompson_weights,
    two_proportion_test,
    wilson,
)
from kindly.tracking.models import Event

EXPOSURES = ("viewed", "opened")
"""Events that show the debtor saw what their variant changes: the page (a view a person's
browser proved) or the message (an open, when a person's mail client showed it)."""


def experiment_start(
    session: Session, campaign: Campaign, name: str, version: int
) -> dt.datetime | None:
    """When the experiment began: the saving of the earliest rule version, in the unbroken
    run of versions up to `version` that all hold it; None when `version` does not."""
    rows = session.execute(
        select(RuleSet.created_at, RuleSet.document)
        .where(RuleSet.campaign_id == campaign.id, RuleSet.version <= version)
        .order_by(RuleSet.version.desc())
    )
    start = None
    for created_at, document in rows:
        if name not in {e.get("name") for e in (document or {}).get("experiments", [])}:
            break
        start = as_utc(created_at)
    return start


def exposures(
    session: Session, campaign: Campaign, members: dict[int, str], start: dt.datetime | None
) -> dict[int, dt.datetime]:
    """Debtor id -> the moment of exposure: the first human view of the page or open of a
    message that carried the debtor's variant (the event's variant is the one assigned), at
    or after the experiment's start. Debtors never exposed are left out.

    Derived from the event log, which is only ever appended to: each debtor has one moment
    per experiment, and it never moves once a view is recorded.
    """
    if start is None or not members:
        return {}
    rows = session.execute(
        select(Event.debtor_id, Event.variant, func.min(Event.occurred_at))
        .where(
            Event.campaign_id == campaign.id,
            Event.type.in_(EXPOSURES),
            Event.agent == "human",
            Event.occurred_at >= start,
        )
        .group_by(Event.debtor_id, Event.variant)
    )
    exposed: dict[int, dt.datetime] = {}
    for debtor_id, variant, first in rows:
        if members.get(debtor_id) == variant:
            exposed[debtor_id] = as_utc(first)
    return exposed


def _groups(
    session: Session, campaign: Campaign, experiment: str, goal: str, rule_version: int | None,
    version: int, money: dict[str, dict[str, int]] | None = None,
) -> dict[str, tuple[int, int, int]]:  # fmt: skip
    """variant -> (exposed debtors who reached the goal after their exposure, debtors exposed,
    debtors assigned). `version`: the rules whose experiment run gives the start. `money`,
    when given, is filled with variant -> currency -> net minor units the exposed debtors
    paid at or after their exposure (the money a variant collected)."""
    query = select(Decision.variant, Decision.debtor_id).where(
        Decision.campaign_id == campaign.id, Decision.experiment == experiment
    )
    if rule_version is not None:
        query = query.where(Decision.rule_version == rule_version)
    members: dict[int, str] = {}
    for variant, debtor_id in session.execute(query.order_by(Decision.rule_version)):
        members[debtor_id] = variant  # the newest version's assignment wins
    exposed = exposures(session, campaign, members, experiment_start(
        session, campaign, experiment, version))  # fmt: skip
    goal_query = select(Event.debtor_id, func.max(Event.occurred_at)).where(
        Event.campaign_id == campaign.id, Event.type == ("paid" if goal == "collected" else goal)
    )
    if goal == "clicked":
        goal_query = goal_query.where(Event.agent == "human")  # link scanners are not people
    latest = {
        debtor_id: as_utc(at) for debtor_id, at in session.execute(
            goal_query.group_by(Event.debtor_id))
    }  # fmt: skip
    groups: dict[str, list[int]] = {}
    for debtor_id, variant in members.items():
        tally = groups.setdefault(variant, [0, 0, 0])
        tally[2] += 1
        moment = exposed.get(debtor_id)
        if moment is None:
            continue  # assigned, never shown their variant: not in the comparison
        tally[1] += 1
        tally[0] += debtor_id in latest and latest[debtor_id] >= moment
    if money is not None:
        rows = session.execute(
            select(
                Payment.debtor_id, Payment.currency, Payment.amount_minor, Payment.updated_at
            ).where(Payment.campaign_id == campaign.id, Payment.status == "succeeded")
        )
        for debtor_id, currency, amount, at in rows:
            moment = exposed.get(debtor_id)
            if moment is not None and as_utc(at) >= moment:
                purse = money.setdefault(members[debtor_id], {})
                purse[currency] = purse.get(currency, 0) + int(amount)
    return {name: (x, n, assigned) for name, (x, n, assigned) in groups.items()}


def learning_weights(
    session: Session, campaign: Campaign, rules: Rules
) -> dict[str, dict[str, float]]:
    """Per Thompson-allocated experiment, the shares new debtors are assigned with now."""
    weights: dict[str, dict[str, float]] = {}
    for experiment in rules.experiments:
        allocation = experiment.get("allocation", {})
        if allocation.get("method") != "thompson":
            continue
        goal = experiment.get("goal", "paid")
        groups = _groups(session, campaign, experiment["name"], goal, None, rules.version)
        counts = {name: (x, n) for name, (x, n, _) in groups.items()}
        names = [v["name"] for v in experiment["variants"]]
        result = thompson_weights(
            {name: counts.get(name, (0, 0)) for name in names},
            min_share=allocation.get("min_share", 0.1),
            min_sample=allocation.get("min_sample", 200),
            seed=f"{campaign.id}:{experiment['name']}:{sum(n for _, n in counts.values())}",
        )
        if result is not None:
            weights[experiment["name"]] = result
    return weights


def report(
    session: Session, campaign: Campaign, rules: Rules, *, goal: str | None = None
) -> list[dict[str, Any]]:
    """Per experiment of `rules` (the ones in force): each variant's rate against control.

    Control is the holdout when there is one, else the first variant. A debtor assigned
    under the current rule version counts from their exposure (`exposures`: the first human
    view of their variant's page or message after the experiment began), and reaches the goal
    only with an outcome at or after that moment; debtors never exposed are reported as
    assigned, outside the rates. The sample-ratio check compares the assigned groups.
    """
    out = []
    for experiment in rules.experiments:
        chosen_goal = goal or experiment.get("goal", "paid")
        money: dict[str, dict[str, int]] = {}
        groups = _groups(
            session, campaign, experiment["name"], chosen_goal, rules.version, rules.version, money
        )
        holdout = experiment.get("holdout", 0)
        names = ([CONTROL] if holdout else []) + [v["name"] for v in experiment["variants"]]
        control = names[0]
        x0, n0, _ = groups.get(control, (0, 0, 0))
        rows = []
        for name in names:
            x, n, assigned = groups.get(name, (0, 0, 0))
            lo, hi = wilson(x, n)
            purse = sorted(money.get(name, {}).items())  # currency -> minor units collected
            row: dict[str, Any] = {
                "variant": name, "control": name == control, "assigned": assigned,
                "exposed": n, "conversions": x, "rate": x / n if n else None, "rate_ci": [lo, hi],
                "collected": {c: str(from_minor(m, c)) for c, m in purse},
                "collected_per_exposed": {
                    c: str((from_minor(m, c) / n).quantize(from_minor(1, c))) if n else None
                    for c, m in purse
                },
            }  # fmt: skip
            if name != control and n and n0:
                d, d_lo, d_hi = difference_interval(x0, n0, x, n)
                z, p = two_proportion_test(x0, n0, x, n)
                row.update(difference=d, difference_ci=[d_lo, d_hi], z=z, p_value=p,
                           chance_to_beat=chance_to_beat(x0, n0, x, n))  # fmt: skip
            rows.append(row)
        compared = [r for r in rows if "p_value" in r]
        for row, adjusted in zip(compared, holm([r["p_value"] for r in compared]), strict=True):
            row["p_holm"] = adjusted
        shares = {CONTROL: holdout} if holdout else {}
        total_weight = sum(v.get("weight", 1) for v in experiment["variants"])
        for v in experiment["variants"]:
            shares[v["name"]] = (1 - holdout) * v.get("weight", 1) / total_weight
        srm: dict[str, Any] | None = None
        if experiment.get("allocation", {}).get("method", "fixed") == "fixed":
            statistic, p = sample_ratio({r["variant"]: r["assigned"] for r in rows}, shares)
            srm = {"chi2": statistic, "p_value": p, "mismatch": p < SRM_ALPHA}
        start = experiment_start(session, campaign, experiment["name"], rules.version)
        out.append({
            "experiment": experiment["name"], "goal": chosen_goal, "rule_version": rules.version,
            "started_at": start.isoformat() if start else None,
            "segments": experiment.get("segments"), "expected_shares": shares,
            "sample_ratio": srm, "variants": rows,
        })  # fmt: skip
    return out
