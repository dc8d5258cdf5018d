"""How fresh a campaign's stored artifacts are: which are stale (marked by a change, or made by
other templates or renderer code than this process's), for the rebuild jobs and the cockpit.
The marks are set and cleared by kindly.site.artifacts (mark_stale, mark_fresh)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.site.artifacts import MADE_WITH, RENDERED, companions, version
from kindly.site.models import Artifact


def is_stale_clause(kinds: Iterable[str] = RENDERED):
    """SQL: an artifact marked stale, or made by other templates or renderer code than this
    process's (a deployment changed them), or before either was recorded."""
    versions = [
        and_(Artifact.kind == kind, Artifact.renderer == version(kind))
        for kind in companions(kinds)
    ]
    return or_(Artifact.stale_at.is_not(None), Artifact.renderer.is_(None), ~or_(*versions))


def stale_debtors(session: Session, campaign_id: int) -> dict[int, set[str]]:
    """Debtor id -> the kinds (site, letter, video) whose stored artifacts are stale."""
    rows = session.execute(
        select(Artifact.debtor_id, Artifact.kind)
        .join(Debtor, Debtor.id == Artifact.debtor_id)
        .where(Debtor.campaign_id == campaign_id, is_stale_clause())
    )
    out: dict[int, set[str]] = {}
    for debtor_id, kind in rows:
        out.setdefault(debtor_id, set()).add(MADE_WITH.get(kind, kind))
    return out


def stale_campaigns(session: Session) -> list[int]:
    """The campaigns with a stale stored artifact."""
    return list(
        session.scalars(
            select(Debtor.campaign_id)
            .join(Artifact, Artifact.debtor_id == Debtor.id)
            .where(is_stale_clause())
            .distinct()
            .order_by(Debtor.campaign_id)
        )
    )


def summary(session: Session, campaign_id: int) -> dict[str, object]:
    """For the cockpit: stored and stale artifacts per kind, why they are stale, and when the
    last rebuild finished."""
    kinds: dict[str, dict[str, int]] = {kind: {"stored": 0, "stale": 0} for kind in RENDERED}
    stale = is_stale_clause()
    rows = session.execute(
        select(Artifact.kind, func.count(), func.sum(case((stale, 1), else_=0)))
        .join(Debtor, Debtor.id == Artifact.debtor_id)
        .where(Debtor.campaign_id == campaign_id, Artifact.kind.in_(RENDERED))
        .group_by(Artifact.kind)
    )
    for kind, stored, stale_count in rows:
        kinds[kind] = {"stored": int(stored), "stale": int(stale_count or 0)}
    reasons = sorted(
        reason
        for reason in session.scalars(
            select(Artifact.stale_reason)
            .join(Debtor, Debtor.id == Artifact.debtor_id)
            .where(Debtor.campaign_id == campaign_id, Artifact.stale_reason.is_not(None))
            .distinct()
        )
    )
    last = session.scalar(
        select(func.max(Artifact.rendered_at))
        .join(Debtor, Debtor.id == Artifact.debtor_id)
        .where(Debtor.campaign_id == campaign_id)
    )
    if last is not None and last.tzinfo is None:  # SQLite hands back naive datetimes
        last = last.replace(tzinfo=dt.UTC)
    return {"kinds": kinds, "reasons": reasons, "last_rendered": last}
