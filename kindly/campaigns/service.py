"""Campaign actions written once for the CLI, the API and the dashboard: look up, create and
read the status (launch, pause and end are kindly.launch.change_status, which audits them). The
callers check who may do it and record the audit entry."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign, CampaignStatus
from kindly.errors import NotFound
from renderer.texts import LOCALES

# LOCALES (a campaign's allowed default locales) is re-exported: the CLI, API and dashboard
# validate a new campaign against this module alone.
__all__ = [
    "LOCALES",
    "SLUG_PATTERN",
    "by_slug",
    "create_campaign",
    "find_or_fail",
    "is_slug",
    "slug_taken",
    "status_of",
]  # fmt: skip

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""A campaign's slug: lower-case letters, digits and '-', at most 63 characters."""
_SLUG = re.compile(SLUG_PATTERN)


def is_slug(text: object) -> bool:
    """Whether `text` may be a campaign's slug."""
    return isinstance(text, str) and _SLUG.match(text) is not None


def by_slug(session: Session, slug: str) -> Campaign | None:
    """The campaign with this slug, or None (no scope check: the callers do that)."""
    return session.scalar(select(Campaign).where(Campaign.slug == slug))


def find_or_fail(session: Session, slug: str) -> Campaign:
    """The campaign with this slug, or NotFound saying how to create it (CLI and jobs)."""
    campaign = by_slug(session, slug)
    if campaign is None:
        raise NotFound(
            f"no campaign {slug!r} (create it with: kindly import FILE --campaign {slug} --create)"
        )
    return campaign


def slug_taken(session: Session, slug: str) -> bool:
    """Whether a campaign with this slug exists already."""
    return session.scalar(select(Campaign.id).where(Campaign.slug == slug)) is not None


def create_campaign(
    session: Session,
    slug: str,
    *,
    name: str | None = None,
    default_locale: str = "de-DE",
    creditor: str | None = None,
) -> Campaign:
    """Add a campaign (the name defaults to the slug) and flush, so it has its id."""
    campaign = Campaign(
        slug=slug, name=name or slug, default_locale=default_locale, creditor=creditor
    )
    session.add(campaign)
    session.flush()
    return campaign


def status_of(session: Session, campaign_id: int) -> str:
    """draft, live, paused or ended."""
    row = session.get(CampaignStatus, campaign_id)
    return row.status if row else "draft"
