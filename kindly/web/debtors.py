"""Shared helpers for views that act for one debtor named by the token in the URL."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import abort, current_app, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.core import events
from kindly.core.context import Context
from kindly.core.models import Debtor

TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


def context() -> Context:
    """The app's long-lived objects."""
    return current_app.extensions["kindly"]


def find_debtor(session: Session, token: str) -> Debtor:
    """The debtor the token names, or a 404 that tells nothing."""
    if not TOKEN.match(token):
        abort(404)
    debtor = session.scalar(select(Debtor).where(Debtor.token == token))
    if debtor is None:
        abort(404)
    return debtor


@dataclass(frozen=True)
class Hit:
    """Who asked and through which channel, as far as the request tells."""

    agent: str
    channel: str | None


def hit() -> Hit:
    """Classify the current request."""
    channel = request.args.get("c")
    return Hit(events.classify(request.headers), channel if channel in events.CHANNELS else None)


def count(session: Session, debtor: Debtor, type_: str, **data: str) -> None:
    """Record one event for this request (HEAD requests look, they don't count)."""
    if request.method == "HEAD":
        return
    current = hit()
    events.record(session, debtor, type_, channel=current.channel, agent=current.agent, data=data)
