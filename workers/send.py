"""Send jobs: one (debtor, step, channel) per job, keyed so a duplicate never sends twice."""

from __future__ import annotations

import datetime as dt

from kindly import context
from kindly.infra import metrics
from kindly.messaging.delivery import Planned, deliver
from workers.queues import SEND, Dispatcher, JobHandle


def send_message(debtor_id: int, step: int, channel: str, at: str | None = None) -> str | None:
    """Deliver one message; returns the send's status (None when nothing was due).

    `at` (ISO 8601) is the clock of a simulated `kindly send --at` run.
    """
    ctx = context.current()
    when = dt.datetime.fromisoformat(at) if at else None
    with ctx.db.session() as session:
        row = deliver(session, ctx.settings, debtor_id, step, channel, when)
        return row.status if row is not None else None


def job_id(debtor_id: int, step: int, channel: str) -> str:
    """The deterministic id that makes a re-enqueued send the same job."""
    return f"send-{debtor_id}-{step}-{channel}"


def enqueue_sends(
    dispatcher: Dispatcher, planned: list[Planned], at: dt.datetime | None = None
) -> list[JobHandle]:
    """One job on the send queue per planned message (`at`: a simulated clock); the messages
    the plan holds back are counted as held, with the plan's reason (kindly_sends_total)."""
    handles = []
    for item in planned:
        if item.status == "held":
            metrics.count_send(item.channel, "held", item.reason)
        if item.status != "send" or item.step is None or item.channel is None:
            continue
        handles.append(
            dispatcher.enqueue(
                send_message,
                (item.debtor_id, item.step, item.channel, at.isoformat() if at else None),
                queue=SEND,
                job_id=job_id(item.debtor_id, item.step, item.channel),
                timeout=120,
                # a job of this id that already ran (e.g. found the campaign paused and sent
                # nothing) must not stand in for this one for a day; the send row, not the
                # job id, keeps a message from going twice
                again=True,
            )
        )
    return handles


def schedule_held(dispatcher: Dispatcher, planned: list[Planned]) -> list[JobHandle]:
    """Schedule each message the clock holds back for the moment it may go.

    The job re-plans when it runs, so an opt-out, a payment or the cap in between still
    stops it; its id is the send's own, so scheduling twice keeps one job.
    """
    handles = []
    for item in planned:
        if item.status != "held" or not item.opens_at or item.channel is None or item.step is None:
            continue
        handles.append(
            dispatcher.enqueue_at(
                dt.datetime.fromisoformat(item.opens_at),
                send_message,
                (item.debtor_id, item.step, item.channel, None),
                queue=SEND,
                job_id=job_id(item.debtor_id, item.step, item.channel),
                timeout=120,
            )
        )
    return handles
