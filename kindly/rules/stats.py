"""Experiment statistics: deterministic assignment, intervals, tests and allocation shares.

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
