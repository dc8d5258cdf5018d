"""What every `kindly` command needs: the process's context and a campaign by its slug."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kindly import context as ctx_module
from kindly.campaigns.models import Campaign
from kindly.campaigns.service import find_or_fail
from kindly.context import Context
from kindly.infra.config import check_production, load_settings


def open_context(migrate: bool = True) -> Context:
    """This process's context, with the schema brought up to date."""
    ctx = Context(load_settings())
    check_production(ctx.settings)  # a worker or a command must not run where web would not
    ctx_module.use(ctx)
    if migrate:
        ctx.db.migrate()
    return ctx


def campaign_by_slug(session: Session, slug: str) -> Campaign:
    """The campaign, or NotFound saying how to create it."""
    return find_or_fail(session, slug)
