"""Fixtures: settings on the embedded defaults, the Flask app, and the real services."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from kindly.accounts import users
from kindly.context import Context
from kindly.infra.config import Settings
from tests.support import logscan, services
from tests.support.app import (
    PHONE_UA,
    installed,
    make_settings,
)

QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
"""argon2id at its smallest cost: the same kind of hash and the same checks, in microseconds
instead of the ~0.2 s of CPU (and 64 MiB) each takes with the production parameters."""


@pytest.fixture(autouse=True)
def quick_passwords(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests sign in hundreds of times: they hash and verify passwords at the smallest
    argon2id cost. Integration and e2e tests keep the production parameters."""
    if request.node.get_closest_marker("integration") or request.node.get_closest_marker("e2e"):
        return
    monkeypatch.setattr(users, "_hasher", QUICK_HASHER)
    monkeypatch.setattr(users, "_DUMMY_HASH", _quick_dummy_hash())


@cache
def _quick_dummy_hash() -> str:
    return QUICK_HASHER.hash("no such user, no such password")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The embedded defaults: SQLite, a local folder, jobs in-process, sandbox payments."""
    return make_settings(tmp_path / "var")


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    """A migrated context installed as the process's current one."""
    with installed(settings) as context:
        yield context


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


SERVICE_FIXTURES = frozenset(
    {"postgres_server", "postgres_url", "redis_url", "s3_endpoint", "s3_bucket"}
)
"""Fixtures that need a running service: a test using one is an integration test."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test by what it needs, wherever it lives: `e2e` drives Chromium,
    `integration` needs PostgreSQL, Redis or an S3 endpoint (`make test-unit` runs neither)."""
    for item in items:
        folders = set(Path(str(item.path)).parts)
        if "e2e" in folders:
            item.add_marker(pytest.mark.e2e)
        if {"integration", "reliability"} & folders or SERVICE_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.integration)


# ---- the log scan: no personal value of the suite's own fixtures in any log line ----------


def pytest_configure(config: pytest.Config) -> None:
    """Set up the log scan (tests/support/logscan.py) in this process: the session's folder
    (made by the controller, inherited by xdist workers), this process's handler on the root
    logger at production's INFO level, and the watch on every row written."""
    import logging
    import tempfile

    folder = os.environ.get(logscan.FOLDER_VARIABLE)
    if folder is None:
        folder = tempfile.mkdtemp(prefix="kindly-logscan-")
        os.environ[logscan.FOLDER_VARIABLE] = folder  # xdist workers and subprocesses inherit it
        config.stash[_SCAN_OWNER] = Path(folder)
    name = logscan.worker_name()
    registry = logscan.Registry(Path(folder) / f"{name}.values")
    logscan.hold_inserted_values(registry)
    logscan.hold_copied_debtors(registry)
    root = logging.getLogger()
    root.addHandler(logscan.ScanHandler(Path(folder) / f"{name}.log"))
    root.setLevel(logging.INFO)
    config.stash[_SCAN_FOLDER] = Path(folder)


_SCAN_FOLDER = pytest.StashKey[Path]()
_SCAN_OWNER = pytest.StashKey[Path]()
_SCAN_FOUND = pytest.StashKey[list]()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Each process adds the log files its tests wrote; the controller checks everything and
    fails the run on a line holding a personal value."""
    import shutil

    config = session.config
    folder = config.stash.get(_SCAN_FOLDER, None)
    if folder is None:
        return
    factory = getattr(config, "_tmp_path_factory", None)
    runs_tests = hasattr(config, "workerinput") or getattr(config.option, "dist", "no") == "no"
    if factory is not None and runs_tests:  # (an xdist controller's basetemp holds the workers')
        logscan.append_files(folder / f"{logscan.worker_name()}.log", [factory.getbasetemp()])
    if config.stash.get(_SCAN_OWNER, None) is None:
        return  # a worker: the controller checks once every worker has finished
    found = logscan.findings(folder)
    config.stash[_SCAN_FOUND] = found
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """Name each log line that leaked a fixture's personal value."""
    found = config.stash.get(_SCAN_FOUND, None)
    if found:
        terminalreporter.section("log scan: personal data in the logs", red=True)
        for line in found:
            terminalreporter.write_line(line)
        folder = config.stash[_SCAN_FOLDER]
        terminalreporter.write_line(f"(every line and value kept in {folder})")
