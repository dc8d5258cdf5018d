"""Requests counted by route, method and status, with their latency (kindly.infra.metrics).

The route is the Flask URL rule ("/s/<token>"), never the path, which holds tokens. The
counting lives in hooks of its own, apart from the app's other request hooks. The metrics
themselves are served on their own port (KINDLY_METRICS_PORT, web.server), never here:
the public app answers /metrics with a 404.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from kindly.infra import metrics

UNMATCHED = "unmatched"
"""The route of a request no URL rule matched (a 404 or a 405)."""


def init_app(app: Flask) -> None:
    """Count every request Flask answers; the clock starts before the app's other hooks."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_count)


def _start() -> None:
    g.kindly_started = time.perf_counter()


def _count(response: Response) -> Response:
    started = g.get("kindly_started")
    rule = request.url_rule
    metrics.observe_request(
        rule.rule if rule is not None else UNMATCHED,
        request.method,
        response.status_code,
        time.perf_counter() - started if started is not None else None,
    )
    return response
