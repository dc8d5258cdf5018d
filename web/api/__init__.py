"""The JSON API under /api/v1: per-user bearer keys, roles as in the dashboard, rate-limited.

The routes are described by openapi.json beside this file (served at /api/v1/openapi.json);
the tests check every response against it. The route modules put their routes on `bp`.
"""

from __future__ import annotations

from pathlib import Path

from flask import Response

from web.api import bank, campaigns, creditors, inbox, jobs, ledger, outcomes, privacy, webhooks
from web.api.common import authenticated, bp, problem

__all__ = [
    "bank", "bp", "campaigns", "creditors", "inbox", "jobs", "ledger", "outcomes", "privacy",
    "webhooks",
]  # fmt: skip

OPENAPI = Path(__file__).with_name("openapi.json")


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of this API (public: it holds no data)."""
    return Response(OPENAPI.read_text(encoding="utf-8"), mimetype="application/json")


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@authenticated()
def unknown(rest: str):
    """Anything else under /api/v1: a key is still required, then 404 in JSON."""
    return problem(404, "no such API route")
