"""Helm's own template engine and linter for the chart's tests, run in a child process.

helm-python-sdk loads Helm's Go SDK as a shared library, with the Go runtime's threads and
signal handlers. The test process later forks RQ work horses and servers, so Helm runs in a
short-lived child instead and answers in JSON; the same values are rendered once per run.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "kindly"

_CHILD = """
import json, sys
import helm_python as helm

request = json.load(sys.stdin)
try:
    if request["op"] == "render":
        with helm.Chart.load(request["chart"]) as chart:
            result = chart.render(request["values"], name=request["release"],
                                  namespace="kindly", is_install=True)
    else:
        result = helm.lint(request["chart"], request["values"], strict=True,
                           kube_version=request["kube_version"])
except helm.HelmError as exc:
    json.dump({"error": type(exc).__name__, "message": str(exc)}, sys.stdout)
else:
    json.dump({"result": result}, sys.stdout)
"""


class HelmError(Exception):
    """Helm refused the chart or its values; `kind` is helm-python-sdk's error class name."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class HelmRenderError(HelmError):
    """A template failed (a `fail` or `required` in the chart, a bad expression)."""


class HelmValuesError(HelmError):
    """The values do not meet values.schema.json."""


def _ask(request: dict[str, Any]) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer = json.loads(done.stdout)
    if "error" in answer:
        kind = {"HelmRenderError": HelmRenderError, "HelmValuesError": HelmValuesError}
        raise kind.get(answer["error"], HelmError)(answer["error"], answer["message"])
    return answer["result"]


@functools.cache
def _render(values_json: str, release: str) -> dict[str, str]:
    request = {"op": "render", "chart": str(CHART), "values": json.loads(values_json)}
    return _ask(request | {"release": release})


def render(values: dict[str, Any] | None, *, release: str = "kindly") -> dict[str, str]:
    """The chart's files as `helm template RELEASE deploy/helm/kindly -f values` writes them."""
    return dict(_render(json.dumps(values, sort_keys=True), release))


def lint(values: dict[str, Any] | None, *, kube_version: str) -> dict[str, Any]:
    """`helm lint --strict --kube-version …` as data: messages with a severity (2 warning,
    3 error) and errors."""
    return _ask({"op": "lint", "chart": str(CHART), "values": values, "kube_version": kube_version})
