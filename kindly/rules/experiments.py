"""Experiment outcomes read from the database: who got which variant, and who reached the goal.

The statistics themselves are in `kindly.rules.stats`; the rules are passed in, so this
module never reads the rules store (the store calls `learning_weights`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign
from kindly.rules.document import Rules
from kindly.rules.models import Decision
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


def _groups(
    session: Session, campaign: Campaign, experiment: str, goal: str, rule_version: int | None
) -> dict[str, tuple[int, int]]:
    """variant -> (debtors who reached the goal, debtors assigned)."""
    query = select(Decision.variant, Decision.debtor_id).where(
        Decision.campaign_id == campaign.id, Decision.experiment == experiment
    )
    if rule_version is not None:
        query = query.where(Decision.rule_version == rule_version)
    members: dict[int, str] = {}
    for variant, debtor_id in session.execute(query.order_by(Decision.rule_version)):
        members[debtor_id] = variant  # the newest version's assignment wins
    goal_query = select(func.distinct(Event.debtor_id)).where(
        Event.campaign_id == campaign.id, Event.type == goal
    )
    if goal == "clicked":
        goal_query = goal_query.where(Event.agent == "human")  # link scanners are not people
    reached = set(session.scalars(goal_query))
    groups: dict[str, list[int]] = {}
    for debtor_id, variant in members.items():
        tally = groups.setdefault(variant, [0, 0])
        tally[0] += debtor_id in reached
        tally[1] += 1
    return {name: (x, n) for name, (x, n) in groups.items()}


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
        counts = _groups(session, campaign, experiment["name"], goal, None)
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

    Control is the holdout when there is one, else the first variant. Rates count debtors
    assigned under the current rule version (intention to treat) who reached the goal.
    """
    out = []
    for experiment in rules.experiments:
        chosen_goal = goal or experiment.get("goal", "paid")
        groups = _groups(session, campaign, experiment["name"], chosen_goal, rules.version)
        holdout = experiment.get("holdout", 0)
        names = ([CONTROL] if holdout else []) + [v["name"] for v in experiment["variants"]]
        control = names[0]
        x0, n0 = groups.get(control, (0, 0))
        rows = []
        for name in names:
            x, n = groups.get(name, (0, 0))
            lo, hi = wilson(x, n)
            row: dict[str, Any] = {
                "variant": name, "control": name == control, "debtors": n, "conversions": x,
                "rate": x / n if n else None, "rate_ci": [lo, hi],
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
            statistic, p = sample_ratio({r["variant"]: r["debtors"] for r in rows}, shares)
            srm = {"chi2": statistic, "p_value": p, "mismatch": p < SRM_ALPHA}
        out.append({
            "experiment": experiment["name"], "goal": chosen_goal, "rule_version": rules.version,
            "segments": experiment.get("segments"), "expected_shares": shares,
            "sample_ratio": srm, "variants": rows,
        })  # fmt: skip
    return out
