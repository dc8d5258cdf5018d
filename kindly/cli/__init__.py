"""The `kindly` command line: the composition root, the one place in kindly that starts web
and workers. Every command is registered here by name; `common` holds what they share."""

from __future__ import annotations

import sys

import click

from kindly.campaigns.portfolio import PortfolioRejected
from kindly.cli import (
    backup,
    bank,
    bankreport,
    campaign,
    check,
    creditor,
    doctor,
    events,
    experiments,
    interest,
    ledger,
    letters,
    link,
    migrate,
    payments,
    privacy,
    purge,
    rates,
    refunds,
    render,
    report,
    rules,
    segments,
    send,
    serve,
    status,
    user,
    webhooks,
)
from kindly.errors import KindlyError
from kindly.infra import logs
from kindly.infra.config import read_log_format


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def cli(verbose: bool) -> None:
    """Kindly: personalised microsites, letters and videos for soft debt collection."""
    # KINDLY_LOG_FORMAT: JSON lines in production, readable text elsewhere; tokens redacted
    logs.configure(read_log_format(), verbose=verbose)


# the campaign's data, rendering and the long-running processes
cli.add_command(campaign.import_command)
cli.add_command(render.render)
cli.add_command(campaign.export)
cli.add_command(campaign.stats)
cli.add_command(serve.serve)
cli.add_command(serve.worker)
cli.add_command(migrate.command)
cli.add_command(render.demo)
# one module per command or command group
bank.command.add_command(bankreport.report)  # bank's own module is reconciliation's
cli.add_command(bank.command)
cli.add_command(check.command)
cli.add_command(creditor.command)
cli.add_command(doctor.command)
cli.add_command(events.command)
cli.add_command(experiments.command)
cli.add_command(interest.command)
cli.add_command(ledger.command)
cli.add_command(letters.command)
cli.add_command(link.command)
cli.add_command(payments.command)
cli.add_command(privacy.command)
cli.add_command(purge.command)
cli.add_command(rates.command)
cli.add_command(refunds.command)
cli.add_command(report.command)
cli.add_command(rules.command)
cli.add_command(segments.command)
cli.add_command(send.command)
cli.add_command(status.launch)
cli.add_command(status.pause)
cli.add_command(status.end)
cli.add_command(user.command)
cli.add_command(webhooks.command)
cli.add_command(backup.backup)
cli.add_command(backup.restore)


def main() -> None:
    """Entry point: domain errors become one clear line and exit code 1."""
    try:
        cli.main(standalone_mode=False)
    except PortfolioRejected as exc:
        for error in exc.errors:
            click.echo(f"  {error}", err=True)
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KindlyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
