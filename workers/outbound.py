"""Webhook delivery jobs: one per (subscription, event), id `webhook-<subscription>-<event>`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly import context
from kindly.outbound import deliveries as outbound
from kindly.outbound.models import WebhookDelivery
from workers.queues import DEFAULT, Dispatcher, JobHandle


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx; RQ retries the job (the next run does, in-process)."""


def deliver_webhook(delivery_id: int) -> str:
    """Post one delivery; raise while it should be tried again so RQ retries it."""
    ctx = context.current()
    with ctx.db.session() as session:
        delivery = outbound.attempt(
            session, delivery_id, allow_private=ctx.settings.outbound_allow_private
        )
        status = delivery.status if delivery else "gone"
        error = delivery.error if delivery else None
    if status == "retrying":
        raise DeliveryFailed(error or "not delivered")
    return status


def job_id(subscription_id: int, event_id: int) -> str:
    """The deterministic id: enqueuing the same delivery twice keeps one job."""
    return f"webhook-{subscription_id}-{event_id}"


def deliver_pending(session: Session, dispatcher: Dispatcher | None = None) -> list[JobHandle]:
    """Record new events as deliveries, commit, and enqueue every due one on `default`.

    Commits the session (the jobs read the deliveries in sessions of their own).
    """
    due = outbound.collect(session)
    keys = dict(
        session.execute(
            select(WebhookDelivery.id, WebhookDelivery.subscription_id).where(
                WebhookDelivery.id.in_(due)
            )
        ).all()
    )
    events = dict(
        session.execute(
            select(WebhookDelivery.id, WebhookDelivery.event_id).where(WebhookDelivery.id.in_(due))
        ).all()
    )
    session.commit()
    dispatcher = dispatcher or Dispatcher(context.current().settings)
    return [
        dispatcher.enqueue(
            deliver_webhook, (delivery_id,), queue=DEFAULT,
            job_id=job_id(keys[delivery_id], events[delivery_id]), timeout=60,
        )
        for delivery_id in due
    ]  # fmt: skip
