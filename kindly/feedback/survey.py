"""The one question after paying or agreeing a plan: stored once per case and occasion,
reported by segment and variant.

No answer is ever logged: the score and comment live only in `survey_answer`; the case's
record gets a `survey` event naming the occasion alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.errors import KindlyError
from kindly.feedback.models import OCCASIONS, SurveyAnswer
from kindly.tracking import events

MAX_COMMENT = 1000
SCORES = (1, 2, 3, 4, 5)
OCCASION_OF_STATE = {"paid": "paid", "plan_agreed": "plan", "plan_active": "plan"}
"""A case's state (kindly.cases) -> the occasion the question is asked for."""


class SurveyError(KindlyError):
    """An answer that cannot be stored; `reason` is invalid_score, too_long, already or
    not_now, for the debtor's message."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def occasion_for(state: str) -> str | None:
    """The occasion a case in `state` may be asked about, if any."""
    return OCCASION_OF_STATE.get(state)


def answered(session: Session, debtor_id: int, occasion: str) -> bool:
    """Whether the debtor answered for this occasion already."""
    return (
        session.scalar(
            select(SurveyAnswer.id).where(
                SurveyAnswer.debtor_id == debtor_id, SurveyAnswer.occasion == occasion
            )
        )
        is not None
    )


def pending(session: Session, debtor: Debtor, state: str) -> str:
    """The occasion to ask about now ("paid" or "plan"), or "" when none or answered."""
    occasion = occasion_for(state)
    if occasion is None or answered(session, debtor.id, occasion):
        return ""
    return occasion


def parse_score(raw: str | None) -> int:
    """A score from a form field: a whole number from 1 to 5, else SurveyError."""
    text = (raw or "").strip()
    if not (text.isdigit() and len(text) == 1 and int(text) in SCORES):
        raise SurveyError("invalid_score")
    return int(text)


def answer(
    session: Session, debtor: Debtor, occasion: str, score: int, comment: str | None
) -> SurveyAnswer:
    """Store the answer once for (debtor, occasion); a second one raises SurveyError("already")
    and changes nothing."""
    if occasion not in OCCASIONS:
        raise SurveyError("not_now")
    if score not in SCORES:
        raise SurveyError("invalid_score")
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT:
        raise SurveyError("too_long")
    if answered(session, debtor.id, occasion):
        raise SurveyError("already")
    row = SurveyAnswer(
        campaign_id=debtor.campaign_id, debtor_id=debtor.id, occasion=occasion, score=score,
        comment=text or None, segment=debtor.segment, variant=debtor.variant,
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # a parallel answer was stored first: that is the one
        raise SurveyError("already") from None
    events.record(
        session, debtor, "survey", channel="web", agent="human", data={"occasion": occasion},
        key=f"survey:{debtor.id}:{occasion}",
    )  # fmt: skip
    return row


def _summary(counts: dict[int, int]) -> dict[str, Any]:
    total = sum(counts.values())
    points = sum(score * n for score, n in counts.items())
    mean = (Decimal(points) / total).quantize(Decimal("0.01"), ROUND_HALF_UP) if total else None
    return {
        "count": total,
        "mean": str(mean) if mean is not None else None,
        "distribution": {str(score): counts.get(score, 0) for score in SCORES},
    }


def report(session: Session, campaign_ids: Sequence[int] | int) -> dict[str, Any]:
    """Answers of a campaign by segment and variant (count, mean, distribution of 1–5), by
    occasion, and overall; one grouped query."""
    ids = [campaign_ids] if isinstance(campaign_ids, int) else list(campaign_ids)
    rows = session.execute(
        select(
            SurveyAnswer.segment,
            SurveyAnswer.variant,
            SurveyAnswer.occasion,
            SurveyAnswer.score,
            func.count(),
        )
        .where(SurveyAnswer.campaign_id.in_(ids))
        .group_by(
            SurveyAnswer.segment, SurveyAnswer.variant, SurveyAnswer.occasion, SurveyAnswer.score
        )
    )
    groups: dict[tuple[str, str], dict[int, int]] = {}
    occasions: dict[str, dict[int, int]] = {}
    overall: dict[int, int] = {}
    for segment, variant, occasion, score, n in rows:
        key = (segment or "default", variant or "A")
        groups.setdefault(key, {})[score] = groups.get(key, {}).get(score, 0) + n
        occasions.setdefault(occasion, {})[score] = occasions.get(occasion, {}).get(score, 0) + n
        overall[score] = overall.get(score, 0) + n
    return {
        "overall": _summary(overall),
        "by_occasion": {name: _summary(occasions.get(name, {})) for name in OCCASIONS},
        "groups": [
            {"segment": segment, "variant": variant, **_summary(counts)}
            for (segment, variant), counts in sorted(groups.items())
        ],
    }


def recent_comments(session: Session, campaign_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The newest comments of a campaign, with their score, occasion, segment and variant (no
    name, no reference: what was said, not who said it)."""
    rows = session.execute(
        select(
            SurveyAnswer.answered_at,
            SurveyAnswer.occasion,
            SurveyAnswer.score,
            SurveyAnswer.segment,
            SurveyAnswer.variant,
            SurveyAnswer.comment,
        )
        .where(SurveyAnswer.campaign_id == campaign_id, SurveyAnswer.comment.is_not(None))
        .order_by(SurveyAnswer.id.desc())
        .limit(limit)
    )
    return [
        {"answered_at": at, "occasion": occasion, "score": score, "segment": segment or "default",
         "variant": variant or "A", "comment": comment}
        for at, occasion, score, segment, variant, comment in rows
    ]  # fmt: skip
