"""Experiments: deterministic assignment, honest statistics, and learning allocation.

Everything is computed with the standard library. The formulas, with the worked examples the
tests check them against:

- **Assignment**: u = first 8 bytes of SHA-256("<experiment>:<reference>") / 2**64, uniform
  in [0, 1). u < holdout → "control"; otherwise u is rescaled to [0, 1) and walks the
  cumulative weights. Depends only on (reference, experiment): stable across re-imports.
- **Wilson score interval** for x successes in n: with p = x/n and z = 1.959964 (95 %),
  centre = (p + z²/2n) / (1 + z²/n), half = z/(1 + z²/n) · √(p(1−p)/n + z²/4n²).
  Example: 120/1000 → [0.1013, 0.1416].
- **Difference to control** p₁ − p₀ with Newcombe's hybrid score interval (his method 10),
  built from the two Wilson intervals (l, u): [d − √((p₁−l₁)² + (u₀−p₀)²),
  d + √((u₁−p₁)² + (p₀−l₀)²)]. Newcombe (1998): 56/70 vs 48/80 → 0.2000 [0.0524, 0.3339].
- **Two-proportion z-test** (pooled): p̄ = (x₀+x₁)/(n₀+n₁), z = (p₁−p₀)/√(p̄(1−p̄)(1/n₀+1/n₁)),
  two-sided p = erfc(|z|/√2). Example: 145/1000 vs 120/1000 → z = 1.649, p = 0.0992.
- **Chance to beat control** with Beta(1+x, 1+n−x) posteriors, exactly (Evan Miller's sum):
  P(p₁ > p₀) = Σ_{i=0}^{α₁−1} B(α₀+i, β₀+β₁) / ((β₁+i) B(1+i, β₁) B(α₀, β₀)).
  Example: 145/1000 vs 120/1000 → 0.95.
- **Sample-ratio mismatch**: Pearson χ² of the observed group sizes against the configured
  shares, k−1 degrees of freedom, p = Q((k−1)/2, χ²/2) (regularised upper incomplete gamma);
  a warning when p < 0.001. Example: χ² = 3.841 with 1 df → p = 0.05.
- **Holm correction** over the variants compared with control: sort the m p-values, multiply
  the i-th smallest by (m − i + 1), carry the running maximum, cap at 1.
  Example: [0.01, 0.04, 0.03, 0.005] → [0.03, 0.06, 0.06, 0.02].
- **Thompson sampling** (optional): once every variant has `min_sample` debtors, new debtors
  are allocated by each variant's posterior chance of being best (Monte Carlo with a seeded
  generator, so a rerun agrees), never below `min_share` per variant.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign
from kindly.rules.models import Decision
from kindly.tracking.models import Event

Z95 = 1.959963984540054
"""The two-sided 95 % normal quantile."""
SRM_ALPHA = 0.001
"""Sample-ratio mismatch is flagged below this p-value."""
CONTROL = "control"


# ---- assignment ------------------------------------------------------------------------------


def unit_hash(reference: str, experiment: str) -> float:
    """A number in [0, 1) fixed by (experiment, reference) alone."""
    digest = hashlib.sha256(f"{experiment}:{reference}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(
    reference: str, experiment: str, weights: dict[str, float], *, holdout: float = 0.0
) -> str:
    """The variant (or "control" for the holdout) a debtor gets in an experiment."""
    u = unit_hash(reference, experiment)
    if u < holdout:
        return CONTROL
    u = (u - holdout) / (1 - holdout)
    total = sum(weights.values())
    running = 0.0
    for name, weight in weights.items():
        running += weight / total
        if u < running:
            return name
    return next(reversed(weights))  # rounding left u above the last boundary


# ---- statistics ------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion; (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(
    x0: int, n0: int, x1: int, n1: int, z: float = Z95
) -> tuple[float, float, float]:
    """p₁ − p₀ and Newcombe's hybrid score interval around it."""
    p0, p1 = x0 / n0, x1 / n1
    l0, u0 = wilson(x0, n0, z)
    l1, u1 = wilson(x1, n1, z)
    d = p1 - p0
    return d, d - math.hypot(p1 - l1, u0 - p0), d + math.hypot(u1 - p1, p0 - l0)


def two_proportion_test(x0: int, n0: int, x1: int, n1: int) -> tuple[float, float]:
    """z and the two-sided p-value of the pooled two-proportion z-test."""
    pooled = (x0 + x1) / (n0 + n1)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    if se == 0:
        return 0.0, 1.0
    z = (x1 / n1 - x0 / n0) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def chance_to_beat(x0: int, n0: int, x1: int, n1: int) -> float:
    """P(p₁ > p₀) under uniform priors, exact for whole counts."""
    a0, b0 = 1 + x0, 1 + n0 - x0
    a1, b1 = 1 + x1, 1 + n1 - x1
    base = _log_beta(a0, b0)
    total = 0.0
    for i in range(a1):
        total += math.exp(
            _log_beta(a0 + i, b0 + b1) - math.log(b1 + i) - _log_beta(1 + i, b1) - base
        )
    return min(1.0, max(0.0, total))


def _gamma_q(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) (series below a+1, continued fraction above)."""
    if x <= 0:
        return 1.0
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        k = a
        for _ in range(1000):
            k += 1
            term *= x / k
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def chi_square_p(statistic: float, df: int) -> float:
    """The upper-tail p-value of a χ² statistic with df degrees of freedom."""
    return _gamma_q(df / 2, statistic / 2)


def sample_ratio(observed: dict[str, int], shares: dict[str, float]) -> tuple[float, float]:
    """Pearson χ² of the group sizes against the expected shares, and its p-value."""
    total = sum(observed.get(name, 0) for name in shares)
    share_sum = sum(shares.values())
    if total == 0 or len(shares) < 2:
        return 0.0, 1.0
    statistic = 0.0
    for name, share in shares.items():
        expected = total * share / share_sum
        statistic += (observed.get(name, 0) - expected) ** 2 / expected
    return statistic, chi_square_p(statistic, len(shares) - 1)


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def thompson_weights(
    counts: dict[str, tuple[int, int]],
    *,
    min_share: float,
    min_sample: int,
    seed: str,
    draws: int = 4000,
) -> dict[str, float] | None:
    """Allocation shares from each variant's posterior chance of being best, or None
    while any variant has fewer than min_sample debtors. counts: name -> (successes, n)."""
    if not counts or any(n < min_sample for _, n in counts.values()):
        return None
    rng = random.Random(seed)  # seeded: the same data always gives the same allocation
    wins = dict.fromkeys(counts, 0)
    for _ in range(draws):
        samples = {name: rng.betavariate(1 + x, 1 + n - x) for name, (x, n) in counts.items()}
        wins[max(samples, key=samples.__getitem__)] += 1
    floor = min(min_share, 1 / len(counts))
    free = 1 - floor * len(counts)
    return {name: floor + free * won / draws for name, won in wins.items()}


# ---- reading outcomes ------------------------------------------------------------------------


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


def learning_weights(session: Session, campaign: Campaign, rules) -> dict[str, dict[str, float]]:
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
    session: Session, campaign: Campaign, *, goal: str | None = None
) -> list[dict[str, Any]]:
    """Per experiment of the rules in force: each variant's rate and its comparison to control.

    Control is the holdout when there is one, else the first variant. Rates count debtors
    assigned under the current rule version (intention to treat) who reached the goal.
    """
    from kindly.rules.engine import current_rules

    rules = current_rules(session, campaign)
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
