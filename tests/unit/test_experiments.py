"""Experiment statistics against worked examples, and assignment that stays put."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from kindly.rules.stats import (
    assign,
    chance_to_beat,
    chi_square_p,
    difference_interval,
    holm,
    sample_ratio,
    thompson_weights,
    two_proportion_test,
    wilson,
)


def test_wilson_interval_matches_the_textbook_values():
    assert wilson(120, 1000) == pytest.approx((0.10130, 0.14161), abs=5e-5)
    # Newcombe (1998), table I: 81/263 → 0.2553 to 0.3662
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-4)
    assert wilson(0, 10)[0] == 0.0 and wilson(0, 0) == (0.0, 1.0)


def test_difference_interval_is_newcombes_hybrid_score():
    # Newcombe (1998), example (a): 56/70 − 48/80 = 0.2000, 95 % CI 0.0524 to 0.3339
    d, lo, hi = difference_interval(48, 80, 56, 70)
    assert (d, lo, hi) == pytest.approx((0.2, 0.0524, 0.3339), abs=5e-4)


def test_two_proportion_z_test_120_vs_145_of_1000():
    z, p = two_proportion_test(120, 1000, 145, 1000)
    assert z == pytest.approx(1.6489, abs=1e-3)
    assert p == pytest.approx(0.0992, abs=1e-3)
    assert two_proportion_test(0, 10, 0, 10) == (0.0, 1.0)


def test_chance_to_beat_control_is_about_95_percent():
    assert chance_to_beat(120, 1000, 145, 1000) == pytest.approx(0.95, abs=0.005)
    assert chance_to_beat(145, 1000, 120, 1000) == pytest.approx(0.05, abs=0.005)
    assert chance_to_beat(50, 100, 50, 100) == pytest.approx(0.5, abs=1e-9)


def test_chi_square_tail_matches_tables():
    assert chi_square_p(3.841459, 1) == pytest.approx(0.05, abs=1e-6)
    assert chi_square_p(5.991465, 2) == pytest.approx(0.05, abs=1e-6)
    assert chi_square_p(10.827566, 1) == pytest.approx(0.001, abs=1e-7)
    assert chi_square_p(0.5, 3) == pytest.approx(0.918891, abs=1e-5)


def test_sample_ratio_mismatch_is_flagged_only_when_real():
    _, fine = sample_ratio({"A": 5030, "B": 4970}, {"A": 0.5, "B": 0.5})
    statistic, bad = sample_ratio({"A": 5300, "B": 4700}, {"A": 0.5, "B": 0.5})
    assert fine > 0.5
    assert statistic == pytest.approx(36.0) and bad < 0.001


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5]) == [0.5]


def test_assignment_follows_weights_and_holdout():
    groups = Counter(assign(f"R-{i}", "tone", {"A": 3, "B": 1}, holdout=0.2) for i in range(20000))
    assert groups["control"] / 20000 == pytest.approx(0.2, abs=0.01)
    assert groups["A"] / 20000 == pytest.approx(0.6, abs=0.015)
    assert groups["B"] / 20000 == pytest.approx(0.2, abs=0.01)
    # the same debtor in the same experiment always lands in the same group
    assert {assign("R-7", "tone", {"A": 3, "B": 1}, holdout=0.2) for _ in range(5)} == {
        assign("R-7", "tone", {"A": 3, "B": 1}, holdout=0.2)
    }


def test_thompson_waits_for_the_minimum_sample_and_keeps_a_floor():
    assert thompson_weights({"A": (5, 100), "B": (20, 100)}, min_share=0.1,
                            min_sample=200, seed="s") is None  # fmt: skip
    weights = thompson_weights(
        {"A": (20, 400), "B": (60, 400)}, min_share=0.1, min_sample=200, seed="s"
    )
    assert weights is not None and math.isclose(sum(weights.values()), 1.0)
    assert weights["B"] > 0.85 and weights["A"] >= 0.1
    assert weights == thompson_weights(
        {"A": (20, 400), "B": (60, 400)}, min_share=0.1, min_sample=200, seed="s"
    )


def test_one_wilson_interval_everywhere_and_the_whole_range_when_nobody_was_observed():
    from web.admin import campaigns, charts

    assert wilson(0, 0) == (0.0, 1.0)  # as documented: no data rules out no share
    assert campaigns.wilson is wilson  # the dashboard's chart uses the same function
    assert not hasattr(charts, "wilson")
