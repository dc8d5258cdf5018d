"""The payment mode on the web: the sandbox's routes only in sandbox mode, and a TEST
banner on every page when the sandbox runs in production (KINDLY_PAYMENTS)."""

from __future__ import annotations

from flask import Flask
from markupsafe import Markup

from kindly.infra.config import Settings


def init_app(app: Flask, settings: Settings) -> None:
    """Register the sandbox checkout only when it is the mode; mark pages TEST when asked."""
    if settings.payments_sandbox:
        from web.debtor import sandbox

        app.register_blueprint(sandbox.bp)
    if settings.test_banner:
        app.context_processor(lambda: {"test_banner": True})


def mark_test(html: str, text: str) -> str:
    """A stored page with the TEST banner first in its body (the layout's own markup)."""
    banner = Markup('<div class="test-banner" role="alert" data-test-banner>{}</div>').format(text)
    head, body, rest = html.partition("<body>")
    if not body:
        return str(banner) + html
    return head + body + "\n" + str(banner) + rest
