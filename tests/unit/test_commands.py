"""Sub-commands are found by module; a broken one does not break the others."""

from __future__ import annotations

import sys

import click
from click.testing import CliRunner

from kindly.commands import register


def test_a_command_module_that_fails_to_import_leaves_the_others_working(tmp_path, monkeypatch):
    import kindly.commands as commands

    package = tmp_path / "extra"
    package.mkdir()
    (package / "good.py").write_text(
        "import click\n@click.command('good')\ndef command():\n    click.echo('fine')\n",
        encoding="utf-8",
    )
    (package / "bad.py").write_text("import kindly.no_such_module\n", encoding="utf-8")
    monkeypatch.setattr(commands, "__path__", [str(package)])
    monkeypatch.setattr(commands, "__name__", "extra")
    monkeypatch.syspath_prepend(str(tmp_path))
    group = click.Group("kindly")
    register(group)
    runner = CliRunner()
    assert runner.invoke(group, ["good"]).output == "fine\n"
    broken = runner.invoke(group, ["bad", "--whatever"])
    assert broken.exit_code == 1
    assert "`kindly bad` is unavailable: ModuleNotFoundError" in broken.output
    sys.modules.pop("extra.good", None)
