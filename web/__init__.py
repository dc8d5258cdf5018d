"""The Flask front: create_app builds it; nothing connects at import."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from kindly.context import Context
from kindly.errors import ServiceUnavailable
from kindly.infra import tracing
from kindly.infra.config import Settings, check_production, load_settings
from kindly.infra.paths import ASSETS, TEMPLATES
from kindly.infra.redact import install, redact
from renderer.texts import load_texts

log = logging.getLogger(__name__)
LANGUAGES = ("de", "en", "it", "es", "fr")


def create_app(settings: Settings | None = None, context: Context | None = None) -> Flask:
    """Build the app for these settings (default: the context's, else from the environment);
    given a context, the app uses it instead of building its own."""
    if settings is None:
        settings = context.settings if context is not None else load_settings()
    check_production(settings)
    install(log)  # the app's log (Flask's app.logger too) never carries a token
    tracing.configure(settings.otlp_endpoint, "kindly-web")  # off without an endpoint
    app = Flask(
        __name__,
        template_folder=str(TEMPLATES),
        static_folder=str(ASSETS),
        static_url_path="/assets",
    )
    https = settings.base_url.startswith("https://")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        SESSION_COOKIE_NAME="kindly_session",
        MAX_CONTENT_LENGTH=1024 * 1024,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
        KINDLY_FAST_LANE=settings.fast_lane,
    )
    app.extensions["kindly"] = context if context is not None else Context(settings)

    from web import (
        admin,
        api,
        debtor,
        edge,
        inbound,
        messages,
        request_metrics,
        requestlog,
        security,
    )  # fmt: skip
    from web.debtor import findcase, items, leeway, pay, paymode, track

    request_metrics.init_app(app)  # first: its clock starts before every other hook
    edge.limit_uploads(app)  # before the CSRF hook, which reads the form
    security.init_app(
        app,
        s3_endpoint=settings.s3_public_endpoint_url or settings.s3_endpoint_url,
        https=https,
        s3_storage=settings.storage_url.startswith("s3:"),
    )
    app.register_blueprint(debtor.bp)
    app.register_blueprint(pay.bp)
    app.register_blueprint(leeway.bp)
    app.register_blueprint(items.bp)
    app.register_blueprint(messages.bp)
    app.register_blueprint(track.bp)
    paymode.init_app(app, settings)  # the sandbox's routes exist only in sandbox mode
    app.register_blueprint(inbound.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)

    if settings.redis_url or settings.journal is not None:
        start_writer = _start_event_writer(app)
        from web.debtor.fastlane import FastLane

        app.wsgi_app = FastLane(app, app.wsgi_app, start_writer)
    edge.trust_proxies(app, settings.trusted_proxies)
    # outermost: one line per request, the fast lane's answers included
    requestlog.init_app(app, trust_request_id=settings.trusted_proxies > 0)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        if request.path.startswith("/api/"):  # refused before the API's own handler: JSON too
            return api.problem(code, exc.description or exc.name)
        if code == 404 and findcase.is_link_path(request.path):
            return findcase.lost_link_page()  # a mistyped link: offer the way back
        key = "not_found" if code in (404, 405) else "error"
        if code == 400:
            key = "error"
        return _message_page(key, code)

    @app.errorhandler(ServiceUnavailable)
    def unavailable(exc: ServiceUnavailable):
        log.error("service unavailable: %s", exc)
        return _message_page("error", 503)

    from sqlalchemy.exc import OperationalError

    @app.errorhandler(OperationalError)
    def database_unreachable(exc: OperationalError):
        # The database is down or restarting: one line in the log, not a traceback per hit,
        # and a 503 that Stripe and the gateways retry.
        log.error("database unavailable on %s %s: %s", request.method, request.endpoint,
                  str(exc.orig or exc).splitlines()[0])  # fmt: skip
        page, code = _message_page("error", 503)
        return page, code, {"Retry-After": "30"}

    @app.errorhandler(Exception)
    def crash(exc: Exception):
        log.exception("unhandled error on %s %s (%s)", request.method, request.endpoint,
                      redact(request.path))  # fmt: skip
        return _message_page("error", 500)

    return app


def _start_event_writer(app: Flask) -> Callable[[], None]:
    """Drain the event stream into the database from a thread of this process, and ship the
    event journal from another (when there is one and KINDLY_JOURNAL_SHIPPER is on), started
    on the first request (after gunicorn has forked), unless the app is told not to. Returns
    the starter, for requests that don't pass through Flask (web.debtor.fastlane)."""
    import threading

    lock = threading.Lock()

    @app.before_request
    def _writer() -> None:
        if (
            app.config.get("KINDLY_EVENT_WRITER", True) is False
            or "kindly_writer" in app.extensions
        ):
            return
        with lock:
            if "kindly_writer" not in app.extensions:
                from kindly.tracking.eventbuffer import Writer

                ctx = app.extensions["kindly"]
                writer = None
                if ctx.event_buffer is not None:
                    writer = Writer(ctx.event_buffer, ctx.db)
                    writer.start()
                if ctx.settings.journal is not None and ctx.settings.journal_shipper:
                    from kindly.tracking.shipper import ShipperThread

                    shipper = ShipperThread(ctx.settings.journal, ctx.db)
                    shipper.start()
                    app.extensions["kindly_shipper"] = shipper
                app.extensions["kindly_writer"] = writer

    return _writer


def _message_page(key: str, code: int):
    """A friendly page in the visitor's language: never a traceback, never a detail."""
    lang = request.accept_languages.best_match(LANGUAGES) or "en"
    texts = load_texts("site").for_lang(lang)
    return (
        render_template("web/message.html", t=texts, lang=lang, title=texts[f"{key}_title"],
                        message=texts[key]),
        code,
    )  # fmt: skip
