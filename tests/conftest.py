"""Fixtures: settings on the embedded defaults, the Flask app, and the real services."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kindly import context as context_module
from kindly.campaigns.models import Campaign
from kindly.campaigns.portfolio import import_portfolio, read_portfolio
from kindly.context import Context
from kindly.infra.config import Settings, load_settings
from tests import services

PORTFOLIO = """reference,salutation,first_name,last_name,email,phone,locale,currency,amount_due,principal,interest,fees,due_date,creditor,contract,street,postal_code,city,country
A-1,Frau,Anna,Müller,anna@example.org,+4915112345678,de-DE,EUR,1234.56,1100.00,84.56,50.00,2026-12-15,Stadtwerke Beispielstadt GmbH,Stromliefervertrag 4711,Hauptstraße 5,10115,Berlin,DE
A-2,Ms,Siobhán,O'Brien,siobhan@example.org,,en-GB,GBP,89.90,,,,2026-12-20,Northern Water Ltd,Account 99,12 Baker Street,NW1 6XE,London,GB
A-3,,Giulia,D'Angelo,,,it-IT,EUR,42.00,,,,2027-01-10,Acqua Roma S.p.A.,Contratto 7,Via Roma 10,00184,Roma,IT
"""


def make_settings(data_dir: Path, **env: str) -> Settings:
    """Settings as the process would read them, on a private data folder."""
    values = {"KINDLY_DATA_DIR": str(data_dir), "KINDLY_SECRET_KEY": "test-secret-key-0123456789"}
    values.update(env)
    return load_settings(values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The embedded defaults: SQLite, a local folder, jobs in-process, sandbox payments."""
    return make_settings(tmp_path / "var")


PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)
"""A browser's User-Agent (machines are counted apart)."""


@contextmanager
def installed(settings: Settings) -> Iterator[Context]:
    """A migrated context with its storage ready, the process's current one in the block."""
    context = Context(settings)
    context.db.migrate()
    context.storage.ensure()
    context_module.use(context)
    try:
        yield context
    finally:
        context_module.use(None)


def front_client(context: Context, *, user_agent: str = PHONE_UA, **config):
    """A test client of the Flask app on this context (`config` goes to app.config)."""
    from web import create_app

    application = create_app(context.settings, context=context)
    application.config.update(config)
    test_client = application.test_client()
    test_client.environ_base["HTTP_USER_AGENT"] = user_agent
    return test_client


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    """A migrated context installed as the process's current one."""
    with installed(settings) as context:
        yield context


def load_campaign(context: Context, slug: str = "winter", text: str = PORTFOLIO) -> int:
    """Create a campaign with the sample portfolio; return its id."""
    with context.db.session() as session:
        campaign = Campaign(slug=slug, name=slug.title(), default_locale="de-DE")
        session.add(campaign)
        session.flush()
        import_portfolio(session, campaign, read_portfolio(text.encode(), "p.csv"))
        return campaign.id


@pytest.fixture
def app(ctx: Context):
    """The Flask app on the test context's settings."""
    from web import create_app

    application = create_app(ctx.settings, context=ctx)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    """A test client with a browser-like User-Agent (machines are counted apart)."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_USER_AGENT"] = PHONE_UA
    return test_client


# ---- real services -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    import psycopg

    services.ensure_postgres()
    admin_url = os.environ.get("KINDLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"kindly_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """The session's database, emptied before each test."""
    import psycopg

    plain = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    yield postgres_server


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of this test session's own, flushed before and after the test.

    The number follows the process id, so two test sessions on one machine (developers
    running suites side by side) do not flush each other's queues.
    """
    from redis import Redis

    services.ensure_redis()
    url = f"redis://127.0.0.1:6379/{1 + os.getpid() % 11}"
    client = Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server over HTTP on a free port."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port = services.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A new empty bucket name for this test (created by storage.ensure())."""
    return f"kindly-{uuid.uuid4().hex[:12]}"
