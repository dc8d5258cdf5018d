"""`kindly migrate`: the deploy's one-shot step (the Helm chart's pre-upgrade Job) migrates
an empty database to the newest revision, is a no-op on a current one, and says which."""

from __future__ import annotations

import os
import sqlite3

from alembic.config import Config
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from kindly.cli import cli
from kindly.errors import ServiceUnavailable
from kindly.infra.db import MIGRATIONS


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def _env(tmp_path, **extra: str) -> dict[str, str | None]:
    """A development environment of its own: every inherited KINDLY_* setting unset."""
    unset = {name: None for name in os.environ if name.startswith("KINDLY_")}
    return unset | {"KINDLY_DATA_DIR": str(tmp_path / "var")} | extra


def test_migrate_brings_an_empty_database_to_the_head_and_says_so(tmp_path):
    result = CliRunner().invoke(cli, ["migrate"], env=_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output == f"database schema at revision {_head()}\n"
    with sqlite3.connect(tmp_path / "var" / "kindly.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        assert {"alembic_version", "campaign", "debtor"} <= tables
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(_head(),)]

    again = CliRunner().invoke(cli, ["migrate"], env=_env(tmp_path))  # the next upgrade's Job
    assert again.exit_code == 0 and again.output == result.output


def test_migrate_fails_with_one_line_when_the_database_is_unreachable(tmp_path):
    url = "postgresql+psycopg://kindly:hunter2-not-logged@127.0.0.1:9/kindly"
    result = CliRunner().invoke(cli, ["migrate"], env=_env(tmp_path, KINDLY_DATABASE_URL=url))
    assert isinstance(result.exception, ServiceUnavailable)
    message = str(result.exception)
    assert message.startswith("database unreachable") and "hunter2" not in message
