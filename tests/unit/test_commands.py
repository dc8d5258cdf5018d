"""Every `kindly` command is registered by name, and every command module is wired in."""

from __future__ import annotations

import importlib
import pkgutil

import click
from click.testing import CliRunner

import kindly.cli as cli_package
from kindly.cli import cli

COMMANDS = {
    "backup", "bank", "check", "creditor", "demo", "doctor", "end", "events", "experiments", "export",
    "import", "interest", "launch", "ledger", "letters", "link", "migrate", "pause", "payments", "privacy",
    "purge", "rates", "refunds", "render", "report", "restore", "rules", "segments", "send", "serve",
    "stats",
    "user", "webhooks", "worker",
}  # fmt: skip


def test_the_command_line_has_every_command():
    assert set(cli.commands) == COMMANDS
    listed = CliRunner().invoke(cli, ["--help"])
    assert listed.exit_code == 0
    assert all(f"  {name} " in listed.output for name in COMMANDS)


def test_every_command_a_module_defines_is_registered():
    registered = set(cli.commands.values())
    registered |= {  # a group may take a command another module defines (`kindly bank report`)
        sub for group in registered if isinstance(group, click.Group)
        for sub in group.commands.values()
    }  # fmt: skip
    for info in pkgutil.iter_modules(cli_package.__path__):
        module = importlib.import_module(f"kindly.cli.{info.name}")
        commands = [v for v in vars(module).values() if isinstance(v, click.Command)]
        nested = {
            sub for group in commands if isinstance(group, click.Group)
            for sub in group.commands.values()
        }  # fmt: skip
        for command in commands:
            if command not in nested:
                assert command in registered, f"kindly.cli.{info.name}: {command.name}"
