"""Extra `kindly` sub-commands: every module here that defines `command` is registered."""

from __future__ import annotations

import importlib
import pkgutil

import click


def _broken(name: str, error: Exception) -> click.Command:
    """A stand-in for a command whose module cannot be imported: it says why, when used."""

    @click.command(name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def broken(args: tuple[str, ...]) -> None:
        raise click.ClickException(
            f"`kindly {name}` is unavailable: {type(error).__name__}: {error}"
        )

    broken.help = f"(unavailable: {type(error).__name__})"
    return broken


def register(group: click.Group) -> None:
    """Add each module's `command` (a click command or group) to the `kindly` group.

    One module that fails to import must not take every other command down with it.
    """
    for info in pkgutil.iter_modules(__path__):
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception as exc:  # the rest of the command line keeps working
            group.add_command(_broken(info.name, exc))
            continue
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            group.add_command(command)
