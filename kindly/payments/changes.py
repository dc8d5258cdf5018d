"""What a plan's schedule went through after it was agreed: each change is a row here and a
`plan_changed` event on the case's timeline (an instalment the debtor moved, a new payment day,
a missed instalment moved to the end)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, func, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from kindly.campaigns.models import Debtor
from kindly.infra.db import Base, utcnow
from kindly.tracking import events

KINDS = ("move", "payment_day", "missed_to_end")
"""move: the debtor moved one instalment later; payment_day: the debtor chose another day of
the month for what is left; missed_to_end: the plan's first missed instalment went to its end."""


class PlanChange(Base):
    """One change of an agreed plan's schedule, with the dates before and after."""

    __tablename__ = "plan_change"
    __table_args__ = (
        # a plan's missed instalment moves to its end once, whoever reports the miss first
        Index("ux_plan_change_missed_once", "plan_id", unique=True,
              sqlite_where=text("kind = 'missed_to_end'"),
              postgresql_where=text("kind = 'missed_to_end'")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(
        ForeignKey("payment_plan.id", ondelete="CASCADE"), index=True
    )
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    instalment_id: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))  # page | collection
    # {"schedule": [[seq, before, after], ...]} for every instalment whose date changed, and
    # for a payment day {"day": 15}
    data: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def schedule(self) -> list[tuple[int, dt.date, dt.date]]:
        """Each instalment moved: its number, the day before and the day after."""
        return [
            (int(seq), dt.date.fromisoformat(before), dt.date.fromisoformat(after))
            for seq, before, after in (self.data or {}).get("schedule", [])
        ]


def count(session: Session, plan_id: int, kind: str) -> int:
    """How many changes of this kind the plan has had."""
    return int(
        session.scalar(
            select(func.count(PlanChange.id)).where(
                PlanChange.plan_id == plan_id, PlanChange.kind == kind
            )
        )
        or 0
    )


def of_plan(session: Session, plan_id: int) -> list[PlanChange]:
    """The plan's changes, oldest first."""
    return list(
        session.scalars(
            select(PlanChange).where(PlanChange.plan_id == plan_id).order_by(PlanChange.id)
        )
    )


def record(
    session: Session,
    debtor: Debtor,
    plan_id: int,
    kind: str,
    moved: list[tuple[int, dt.date, dt.date]],
    *,
    source: str,
    instalment_id: int | None = None,
    extra: dict[str, Any] | None = None,
    channel: str | None = None,
) -> PlanChange:
    """Keep one change (seq, date before, date after for each instalment moved) and put it on
    the case's timeline as a `plan_changed` event."""
    data = {
        "schedule": [[seq, before.isoformat(), after.isoformat()] for seq, before, after in moved],
        **(extra or {}),
    }
    change = PlanChange(plan_id=plan_id, debtor_id=debtor.id, kind=kind, source=source,
                        instalment_id=instalment_id, data=data)  # fmt: skip
    session.add(change)
    session.flush()
    summary = "; ".join(f"#{seq} {before} → {after}" for seq, before, after in data["schedule"])
    event_data = {"plan": str(plan_id), "change": kind, "source": source, "dates": summary}
    if extra:
        event_data |= {key: str(value) for key, value in extra.items()}
    events.record(session, debtor, "plan_changed", channel=channel,
                  agent="human" if source == "page" else "automated", data=event_data,
                  key=f"plan_changed:{change.id}")  # fmt: skip
    return change
