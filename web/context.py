"""The one way a request reaches the process's Context: the app it runs in holds it."""

from __future__ import annotations

from flask import current_app

from kindly.context import Context


def context() -> Context:
    """The app's long-lived objects (database, storage, settings)."""
    return current_app.extensions["kindly"]
