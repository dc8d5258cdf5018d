"""Costs booked where a cadence step is committed: once per (case, step), never on hold.

`deliver` calls `book` in the transaction that records the step's message as gone (sent, in
the outbox, or handed to the print batch), so the cost and the message commit together: a
send that fails books nothing, its retry books once, and a worker lost after the gateway took
the message (the send stays `sending`, never retried) books nothing, as it sends nothing
twice. Each booking is an event (`cost`) on the case's timeline and marks the debtor's page
and letter stale, so the link shows the cost at once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.cases.read import case_of
from kindly.claims import costs
from kindly.claims.cost_booking import CostBooking
from kindly.rules.models import Decision
from kindly.site import artifacts
from kindly.tracking import events


def book(
    session: Session,
    debtor: Debtor,
    decision: Decision,
    step: int,
    channel: str | None,
    at: dt.datetime | None = None,
) -> list[CostBooking]:
    """Book the costs the debtor's rules add at `step`; returns the rows booked now."""
    if not costs.step_costs(decision.treatment, step):
        return []  # most steps cost nothing: no case read for them
    session.flush()  # the send's own row first, so the case is read as it is now
    case = case_of(session, debtor, now=at)
    booked = costs.book_step(
        session, debtor, step, decision.treatment, hold=case.hold, channel=channel,
        rule_version=decision.rule_version, at=at,
    )  # fmt: skip
    for row in booked:
        events.record(
            session, debtor, "cost", channel=channel, agent="automated",
            key=f"cost:{debtor.id}:{row.step}:{row.cost_type}",
            data={"type": row.cost_type, "amount_minor": row.amount_minor,
                  "currency": row.currency, "basis": row.basis, "step": row.step},
        )  # fmt: skip
    if booked:
        artifacts.mark_stale(session, debtor.campaign_id, "costs", [debtor.id],
                             kinds=("site", "letter"))  # fmt: skip
    return booked
