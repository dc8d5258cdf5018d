"""`kindly user`: create dashboard users and their API keys."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
from sqlalchemy import select

from kindly.accounts import audit
from kindly.accounts.lifecycle import set_password, set_role
from kindly.accounts.models import ROLES, User
from kindly.accounts.scopes import Scope, ScopeError, describe, make_scope
from kindly.accounts.users import UserError, create_user, issue_token, normal_email, set_scope
from kindly.cli.common import open_context


@click.group("user")
def command() -> None:
    """Dashboard users and API keys."""


def scoped(view: Callable) -> Callable:
    """The repeatable --creditor and --campaign options (neither: every campaign)."""
    view = click.option("--campaign", "campaigns", multiple=True, metavar="SLUG",
                        help="Reach this campaign (repeatable).")(view)  # fmt: skip
    return click.option("--creditor", "creditors", multiple=True, metavar="NAME",
                        help="Reach this creditor's campaigns (repeatable).")(view)  # fmt: skip


def _scope(session, creditors: tuple[str, ...], campaigns: tuple[str, ...]) -> Scope | None:
    try:
        return make_scope(session, creditors, campaigns)
    except ScopeError as exc:
        raise click.ClickException(str(exc)) from None


def _user(session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normal_email(email)))
    if user is None:
        raise click.ClickException(f"no user {email}")
    return user


@command.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
@scoped
def create(
    email: str, role: str, password_stdin: bool, creditors: tuple[str, ...],
    campaigns: tuple[str, ...],
) -> None:  # fmt: skip
    """Add a user; asks for the password (at least 12 characters) twice."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    ctx = open_context()
    with ctx.db.session() as session:
        try:
            user = create_user(
                session, email, password, role, _scope(session, creditors, campaigns)
            )
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        audit.record(session, None, "user.create", via="cli", email=user.email, role=role,
                     scope=describe(user.scope))  # fmt: skip
        click.echo(f"created {role} {user.email} reaching {describe(user.scope)}")


@command.command("scope")
@click.argument("email")
@scoped
def scope(email: str, creditors: tuple[str, ...], campaigns: tuple[str, ...]) -> None:
    """Set what a user reaches: some creditors and campaigns, or (no option) every campaign."""
    ctx = open_context()
    with ctx.db.session() as session:
        user = _user(session, email)
        before = describe(user.scope)
        try:
            set_scope(user, _scope(session, creditors, campaigns))
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        audit.record(session, None, "user.scope", via="cli", email=user.email, before=before,
                     after=describe(user.scope))  # fmt: skip
        click.echo(f"{user.email} reaches {describe(user.scope)}")


@command.command("password")
@click.argument("email")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
def password(email: str, password_stdin: bool) -> None:
    """Set a new password; every dashboard session of the user ends."""
    if password_stdin:
        secret = sys.stdin.readline().rstrip("\n")
    else:
        secret = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    ctx = open_context()
    with ctx.db.session() as session:
        user = _user(session, email)
        try:
            set_password(session, user, secret)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        audit.record(session, None, "user.password", via="cli", email=user.email)
    click.echo(f"new password for {user.email}; their sessions have ended")


@command.command("role")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
def role(email: str, role: str) -> None:
    """Give a user another role; every dashboard session of the user ends."""
    ctx = open_context()
    with ctx.db.session() as session:
        user = _user(session, email)
        before = user.role
        if before == role:
            click.echo(f"{user.email} is already {role}")
            return
        set_role(session, user, role)
        audit.record(session, None, "user.role", via="cli", email=user.email, role=role,
                     before=before)  # fmt: skip
    click.echo(f"{user.email} is now {role}; their sessions have ended")


@command.command("token")
@click.argument("email")
@click.option("--name", default="api", show_default=True, help="What the key is for.")
@scoped
def token(email: str, name: str, creditors: tuple[str, ...], campaigns: tuple[str, ...]) -> None:
    """Issue an API key for the user and print it once (only its hash is stored).

    --creditor and --campaign limit the key further; it never reaches more than its user.
    """
    ctx = open_context()
    with ctx.db.session() as session:
        user = _user(session, email)
        record, secret = issue_token(session, user, name, _scope(session, creditors, campaigns))
        audit.record(session, None, "token.issue", via="cli", email=user.email,
                     token=record.prefix, scope=describe(record.scope))  # fmt: skip
    click.echo(secret)


@command.command("list")
def list_users() -> None:
    """Every user with role, status and what they reach."""
    ctx = open_context()
    with ctx.db.session() as session:
        for user in session.scalars(select(User).order_by(User.email)):
            state = "active" if user.active else "disabled"
            click.echo(f"{user.email:<40} {user.role:<8} {state:<8} {describe(user.scope)}")
