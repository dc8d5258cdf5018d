"""Fixtures the integration tests share."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from kindly.core import context as context_module
from kindly.core.context import Context
from kindly.core.models import Debtor
from tests.conftest import load_campaign, make_settings

PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36"


@pytest.fixture
def buffered(tmp_path, postgres_url, redis_url):
    """The front on PostgreSQL with events buffered in Redis; tests drive the writer."""
    from kindly.core.eventbuffer import Writer
    from kindly.web import create_app

    for thread in threading.enumerate():  # writers left running by earlier tests' apps
        if isinstance(thread, Writer):
            thread.stopping.set()
            thread.join(timeout=5)
    settings = make_settings(
        Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url, KINDLY_REDIS_URL=redis_url
    )
    context = Context(settings)
    context.db.migrate()
    context.storage.ensure()
    context_module.use(context)
    load_campaign(context)
    app = create_app(settings)
    app.extensions["kindly"] = context
    app.config.update(TESTING=True, KINDLY_EVENT_WRITER=False)
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = PHONE
    with context.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
    yield context, client, token
    context_module.use(None)
