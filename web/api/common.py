"""What every /api/v1 module shares: the blueprint, JSON errors, bearer keys with a rate
limit, and the campaign a key may reach."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, abort, g, jsonify, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from kindly.accounts.scopes import access_of, find_campaign
from kindly.accounts.users import can, key_holder
from kindly.campaigns.models import Campaign
from web.context import context
from web.security import csrf_exempt

bp = Blueprint("api", __name__, url_prefix="/api/v1")

RATE_LIMIT = 120
"""Requests per key per minute (per web process)."""
MAX_PAGE = 1000

_windows: dict[str, deque[float]] = {}
_lock = threading.Lock()


def forget_rate_limits() -> None:
    """Start every key's one-minute window afresh (tests that make many requests)."""
    with _lock:
        _windows.clear()


def problem(status: int, message: str, **extra: Any) -> Response:
    """A JSON error body: {"error": message, ...}."""
    response = jsonify({"error": message, **extra})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="kindly"'
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return problem(exc.code or 500, exc.description or exc.name)


def _limited(key: str) -> bool:
    """A sliding one-minute window per key."""
    now = time.monotonic()
    with _lock:
        window = _windows.setdefault(key, deque())
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) >= RATE_LIMIT:
            return True
        window.append(now)
        return False


def authenticated(action: str = "read") -> Callable:
    """Require a valid, unrevoked bearer key whose user's role may do `action`."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            header = request.headers.get("Authorization", "")
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                return problem(401, "an API key is required: Authorization: Bearer <key>")
            secret = secret.strip()
            with context().db.session() as db:
                held = key_holder(db, secret)
                user = held[0] if held else None
                if held is not None:
                    g.api_access = access_of(*held)
                    db.expunge(user)
            if user is None:
                return problem(401, "the API key is unknown or revoked")
            if _limited(secret):
                response = problem(429, f"more than {RATE_LIMIT} requests a minute")
                response.headers["Retry-After"] = "60"
                return response
            if not can(user, action):
                return problem(403, f"the role {user.role!r} may not do this")
            g.api_user = user
            return view(*args, **kwargs)

        return csrf_exempt(wrapper)  # a bearer key, never a cookie: no CSRF to fear

    return decorate


def campaign_or_404(db: Session, slug: str) -> Campaign:
    """The campaign if it exists and the key's scope reaches it, else the API's 404."""
    campaign = find_campaign(db, slug, g.api_access)
    if campaign is None:
        abort(404, description=f"no campaign {slug!r}")
    return campaign


def iso(value: dt.datetime) -> str:
    """An ISO 8601 timestamp; a naive one is taken as UTC."""
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A query argument as an integer in [low, high], else the API's 400."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        abort(400, description=f"{name} must be an integer from {low} to {high}")
    return int(raw)
