"""CSRF protection for forms and the security headers of every response."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, request, session
from flask.sessions import SecureCookieSessionInterface

from kindly.infra.constant_time import same

CSRF_FIELD = "csrf_token"
PRIVATE = ("/s/", "/sandbox/", "/o/", "/c/", "/u/", "/api/")
"""Paths whose answers no cache may keep."""


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _check_csrf() -> None:
    if request.method in ("GET", "HEAD", "OPTIONS") or request.routing_exception is not None:
        return  # nothing is changed by a request no route takes: it gets its 404 or 405
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "csrf_exempt", False):
        return
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get("csrf", "")
    if not sent or not expected or not same(sent, expected):
        abort(400, description="csrf")


def csrf_exempt(view):
    """Mark a view that authenticates its requests otherwise (a signed webhook)."""
    view.csrf_exempt = True
    return view


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per key instead
    of on every request (Flask opens the session of every request, tracking hits included)."""

    def __init__(self) -> None:
        self._serializer: tuple[tuple, object] | None = None

    def get_signing_serializer(self, app: Flask):
        """The serializer for the app's current keys, reused while they stay the same."""
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = self._serializer
        if cached is None or cached[0] != keys:
            cached = self._serializer = (keys, super().get_signing_serializer(app))
        return cached[1]


PERMISSIONS = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=(), fullscreen=(self)"
)
"""No page of Kindly's needs a sensor, the camera or the Payment Request API (Stripe Checkout
is a redirect); the video player may go full screen."""


def init_app(
    app: Flask, *, s3_endpoint: str | None, https: bool = False, s3_storage: bool = True
) -> None:
    """Install CSRF checks, the session interface and security headers."""
    app.session_interface = SessionInterface()
    media = ["'self'"]
    if s3_endpoint:
        parts = urlsplit(s3_endpoint)
        media.append(f"{parts.scheme}://{parts.netloc}")
    elif s3_storage:
        media.append("https://*.amazonaws.com")  # AWS itself: presigned links name the bucket
    policy = "; ".join(
        [
            "default-src 'none'",
            "style-src 'self'",
            "img-src 'self' data:",
            "media-src " + " ".join(media),
            "script-src 'self'",
            "connect-src 'self'",
            "form-action 'self' https://checkout.stripe.com",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )

    @app.before_request
    def _csrf() -> None:
        _check_csrf()

    common = [
        ("Content-Security-Policy", policy),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("X-Robots-Tag", "noindex, nofollow"),
        ("Permissions-Policy", PERMISSIONS),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if https:
        # only over https: an http origin cannot promise it, and browsers ignore it there
        common.append(("Strict-Transport-Security", "max-age=31536000"))
    # the exact headers of a debtor route's response, for web.fastlane
    app.extensions["kindly_headers"] = [*common, ("Cache-Control", "no-store")]

    @app.after_request
    def _headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy)
        for name, value in common[1:]:
            headers[name] = value
        if request.path.startswith(PRIVATE):
            headers["Cache-Control"] = "no-store"
        return response

    app.jinja_env.globals["csrf_token"] = csrf_token
