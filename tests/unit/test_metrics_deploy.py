"""The Grafana dashboard and the alert rules in deploy/ import, and read only real metrics.

tests/unit/test_metrics.py scrapes the names after a real render, send and payment and checks
these files against that scrape; here they are checked against the definitions, and their
shape against what Grafana and Prometheus need to load them.
"""

from __future__ import annotations

import json
import re

import pytest

from kindly.infra.metrics import ALL_SPECS
from tests.support.promql import (
    DASHBOARD,
    alert_rules,
    dashboard_queries,
    metric_names,
    used_names,
)

DEFINED = {sample for spec in ALL_SPECS for sample in spec.samples}


def test_every_metric_the_dashboard_and_the_rules_use_is_defined():
    used = used_names()
    unknown = {name: sorted(where) for name, where in used.items() if name not in DEFINED}
    assert unknown == {}
    # and together they show or watch every family Kindly exports
    families = {spec.name for spec in ALL_SPECS}
    shown = {name.removesuffix(end) for name in used for end in ("_bucket", "_count", "_sum", "")
             if name.removesuffix(end) in families}  # fmt: skip
    assert families - shown == set()


def test_promql_names_are_read_apart_from_functions_labels_and_ranges():
    expr = ('histogram_quantile(0.95, sum by (le, route) (rate(kindly_http_request_duration_'
            'seconds_bucket{route=~"/s/.*", status!="rate"}[$__rate_interval])))'
            " / on (route) group_left max by (route) (kindly_rq_queue_jobs offset 1h) > 1e3")  # fmt: skip
    assert metric_names(expr) == {
        "kindly_http_request_duration_seconds_bucket",
        "kindly_rq_queue_jobs",
    }
    with pytest.raises(ValueError, match="unknown PromQL function 'rte'"):
        metric_names("rte(kindly_sends_total[5m])")
    with pytest.raises(ValueError, match="unbalanced"):
        metric_names("sum(rate(kindly_sends_total[5m])")


def test_the_dashboard_has_the_shape_grafana_imports():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= set(grid) and grid["x"] + grid["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
    assert len(dashboard_queries()) >= 15


def test_the_alert_rules_have_the_shape_prometheus_loads():
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
    # what an operator must be woken for
    watched = " ".join(rule["expr"] for rule in rules)
    for needed in ('kindly_rq_queue_jobs{queue="video"}', "kindly_sends_total",
                   "kindly_event_lag_seconds", "kindly_webhook_deliveries_total",
                   'kindly_http_requests_total{status=~"5.."}'):  # fmt: skip
        assert needed in watched
