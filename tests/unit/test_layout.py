"""The card's top level holds: kindly, renderer, web and workers are this repository's and this
distribution's packages, and the code that hashes files finds them wherever they live."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP = ("kindly", "renderer", "web", "workers")


@pytest.mark.parametrize("name", TOP)
def test_each_top_level_name_is_this_repositorys_package(name):
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin).resolve() == ROOT / name / "__init__.py"


@pytest.mark.parametrize("name", TOP)
def test_no_other_installed_distribution_ships_the_same_name(name):
    # `web` is also the import name of web.py on PyPI: only Kindly may provide these names.
    owners = importlib.metadata.packages_distributions().get(name, [])
    assert set(owners) == {"kindly"}, f"{name} is provided by {owners}"


def test_the_card_top_level_is_there():
    for entry in ("renderer", "web", "assets", "templates", "workers", "tests"):
        assert (ROOT / entry).is_dir(), entry
    for entry in ("Dockerfile", "pyproject.toml"):
        assert (ROOT / entry).is_file(), entry
    assert not (ROOT / "kindly" / "core").exists()  # the old flat domain is gone


def test_the_migration_history_has_one_head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from kindly.infra.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == ["0991"]
