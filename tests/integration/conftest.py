"""Fixtures the integration tests share."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Debtor
from tests.support.app import front_client, installed, load_campaign, make_settings

PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36"


@pytest.fixture
def buffered(tmp_path, postgres_url, redis_url):
    """The front on PostgreSQL with events buffered in Redis; tests drive the writer."""
    from kindly.site.pagewatch import PageWatch
    from kindly.tracking.eventbuffer import Writer

    for thread in threading.enumerate():  # writers and watches left by earlier tests' apps
        if isinstance(thread, Writer | PageWatch):
            thread.stopping.set()
            thread.join(timeout=5)
    settings = make_settings(
        Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url, KINDLY_REDIS_URL=redis_url
    )
    with installed(settings) as context:
        load_campaign(context)
        client = front_client(context, user_agent=PHONE, TESTING=True, KINDLY_EVENT_WRITER=False)
        with context.db.session() as session:
            token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
        yield context, client, token
