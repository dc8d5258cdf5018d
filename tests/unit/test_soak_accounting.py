"""The soak's own arithmetic (bench.soak): how it reconciles what the client got answered
with what the database stored, how it judges memory, and when its faults happen. A soak
that could not see a lost or a doubled hit would prove nothing."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.soak import FAULTS, Fault, Plan, _errors_by_fault, reconcile, slope


def test_every_answered_hit_stored_once_reconciles():
    answered = Counter({(1, "pixel"): 5, (2, "view"): 3})
    before = Counter({(1, "pixel"): 2})  # stored before the soak began: not the soak's
    after = Counter({(1, "pixel"): 7, (2, "view"): 3})
    lost, doubled, per_kind = reconcile(answered, Counter(), before, after)
    assert (lost, doubled) == (0, 0)
    assert per_kind["pixel"] == [5, 0, 5] and per_kind["view"] == [3, 0, 3]


def test_a_lost_hit_is_found_even_when_another_debtor_has_one_too_many():
    answered = Counter({(1, "click"): 4, (2, "click"): 4})
    unanswered = Counter({(2, "click"): 1})
    after = Counter({(1, "click"): 3, (2, "click"): 5})  # totals match; debtor 1 lost one
    lost, doubled, _ = reconcile(answered, unanswered, Counter(), after)
    assert (lost, doubled) == (1, 0)


def test_an_unanswered_request_may_be_stored_once_but_not_twice():
    answered = Counter({(1, "beacon"): 2})
    unanswered = Counter({(1, "beacon"): 1})
    assert reconcile(answered, unanswered, Counter(), Counter({(1, "beacon"): 3}))[:2] == (0, 0)
    assert reconcile(answered, unanswered, Counter(), Counter({(1, "beacon"): 4}))[:2] == (0, 1)


def test_events_for_a_debtor_the_client_never_hit_count_as_doubled():
    after = Counter({(9, "view"): 2})
    assert reconcile(Counter(), Counter(), Counter(), after)[:2] == (0, 2)


def test_slope_is_in_mib_per_minute():
    flat = [(t, 100.0) for t in range(0, 120, 2)]
    growing = [(t, 100.0 + t / 30) for t in range(0, 120, 2)]  # 2 MiB a minute
    assert slope(flat) == 0
    assert slope(growing) == pytest.approx(2.0)


def test_faults_come_in_order_and_end_well_before_the_soak_does():
    plan = Plan(seconds=300)
    times = plan.fault_times()
    assert [name for _, name in times] == list(FAULTS)
    assert [at for at, _ in times] == sorted(at for at, _ in times)
    assert times[-1][0] + plan.pg_outage < plan.seconds


def test_failed_hits_are_put_down_to_the_fault_whose_window_they_fall_in():
    faults = [Fault("kill-web", 12.0, 0.0), Fault("redis-aof", 24.0, 0.6)]
    errors = [(-3.0, "view", 503), (13.0, "view", "none"), (24.3, "pixel", 500),
              (26.0, "beacon", 500), (50.0, "click", "none")]  # fmt: skip
    assert _errors_by_fault(errors, faults) == (
        "warm-up or capacity run: 503 ×1; kill-web: none ×1; redis-aof: 500 ×2; no fault: none ×1"
    )
