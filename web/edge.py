"""What the app believes about a request before any view: its client address and body size."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

UPLOAD_LIMIT = 32 * 1024 * 1024
"""Bytes a portfolio upload may have (every other request keeps the app's 1 MiB limit)."""

UPLOAD_ENDPOINTS = frozenset(
    {"admin.campaign_new", "admin.campaign_upload", "api.portfolio", "admin.campaign_settings",
     "api.bank_statements", "admin.bank_upload"}
)  # fmt: skip
"""Forms that carry a file: portfolios, bank statements, and the settings page's letter logo
(which kindly.campaigns.logo limits to 2 MiB itself)."""


DISPUTE_UPLOAD_LIMIT = 51 * 1024 * 1024
"""Bytes a debtor's dispute form may have: five documents of 10 MB and the form around them
(web.debtor.dispute.UPLOAD_LIMIT; kindly.disputes.files refuses each file past 10 MB)."""


def limit_uploads(app: Flask) -> None:
    """Raise the body limit for portfolio uploads; install before the CSRF hook reads the form."""

    @app.before_request
    def _upload_limit() -> None:
        if request.endpoint in UPLOAD_ENDPOINTS:
            request.max_content_length = UPLOAD_LIMIT
        elif request.endpoint == "public.dispute":
            request.max_content_length = DISPUTE_UPLOAD_LIMIT


def trust_proxies(app: Flask, hops: int) -> None:
    """Take the client address and scheme from the last `hops` proxies' X-Forwarded headers.

    Outermost, so the fast lane, Flask and gunicorn's access log all see the same address.
    X-Forwarded-Host is not trusted: links are built from KINDLY_BASE_URL, never the request.
    """
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
