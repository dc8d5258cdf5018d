"""One log line per request: its id, the route's rule (never the path: it holds tokens), the
method, status, duration and campaign (kindly.infra.logs writes it as JSON or text).

A WSGI layer outside everything else (the fast lane too), so every answer is counted once;
Flask tells it the rule that matched through the environ (`kindly.route`), and the fast lane
does the same for what it answers itself. gunicorn's access log reads the same key.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, request

from kindly.campaigns.service import SLUG_PATTERN
from kindly.infra import logs, tracing

log = logging.getLogger("kindly.request")

ROUTE = "kindly.route"
"""The environ key holding the matched URL rule, e.g. `/s/<token>`; absent: nothing matched."""
REQUEST_ID = "kindly.request_id"
UNMATCHED = "-"
"""The route of a request no rule matched (a mistyped link's path is not logged)."""
INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
"""An X-Request-ID a trusted proxy set, kept when it looks like an id."""


CAMPAIGN_SLUG = re.compile(SLUG_PATTERN)


def route_of(environ: dict[str, Any]) -> str:
    """The rule that matched this request, or UNMATCHED."""
    return environ.get(ROUTE) or UNMATCHED


def init_app(app: Flask, *, trust_request_id: bool = False) -> None:
    """Write one line per request through `app.wsgi_app` (call it after the other layers)."""

    @app.url_value_preprocessor
    def _note_route(_endpoint: str | None, values: dict[str, Any] | None) -> None:
        # runs before every before_request hook, and for unmatched requests too (no rule)
        if request.url_rule is not None:
            request.environ[ROUTE] = request.url_rule.rule
            fields = logs.current()
            if fields is not None:  # lines written during the request name its rule too
                fields["route"] = request.url_rule.rule
        slug = values.get("slug") if values else None
        # only a campaign slug's shape is named: anything else is what a caller typed into
        # the URL (a name, an email) and never reaches the log
        if isinstance(slug, str) and CAMPAIGN_SLUG.match(slug):
            logs.note_campaign(slug)

    app.wsgi_app = RequestLog(app.wsgi_app, trust_request_id=trust_request_id)


class RequestLog:
    """WSGI middleware writing the request's line once the answer is ready."""

    def __init__(self, inner: Callable, *, trust_request_id: bool = False):
        self.inner = inner
        self.trust_request_id = trust_request_id

    def __getattr__(self, name: str) -> Any:
        # the layer it wraps stays reachable as app.wsgi_app.<name> (the fast lane's watch)
        return getattr(self.inner, name)

    def _request_id(self, environ: dict[str, Any]) -> str:
        incoming = environ.get("HTTP_X_REQUEST_ID", "") if self.trust_request_id else ""
        return incoming if INCOMING_ID.match(incoming) else os.urandom(8).hex()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request_id = environ[REQUEST_ID] = self._request_id(environ)
        status: list[int] = []

        def recording(code: str, headers, exc_info=None):
            status[:] = [int(code.split(None, 1)[0])]
            return start_response(code, headers, exc_info)

        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD")
        parent = {tracing.TRACEPARENT: environ.get("HTTP_TRACEPARENT")}
        with (
            logs.scope(request_id=request_id, method=method) as fields,
            tracing.span(f"{method}", parent, **{"kindly.request_id": request_id}) as span,
        ):
            try:
                return self.inner(environ, recording)
            except BaseException:
                status[:] = [500]
                raise
            finally:
                fields.update(
                    route=route_of(environ),
                    status=status[0] if status else 500,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )
                if span is not None:
                    _describe(span, method, fields)
                log.info("%s %s %s", method, fields["route"], fields["status"], extra=fields)


def _describe(span: Any, method: str | None, fields: dict[str, Any]) -> None:
    """Name the request's span by its rule and give it the log line's fields."""
    span.update_name(f"{method} {fields['route']}")
    span.set_attribute("http.request.method", method or "")
    span.set_attribute("http.route", fields["route"])
    span.set_attribute("http.response.status_code", fields["status"])
    if fields.get("campaign"):
        span.set_attribute("kindly.campaign", fields["campaign"])
    if fields["status"] >= 500:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR))
    fields["trace_id"] = tracing.trace_id()
