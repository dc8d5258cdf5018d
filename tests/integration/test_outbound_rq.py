"""Webhook deliveries as real RQ jobs on Redis: one job per (subscription, event), retried."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kindly import context as context_module
from kindly.campaigns.models import Debtor
from kindly.context import Context
from kindly.outbound import deliveries as outbound
from kindly.outbound.models import WebhookDelivery
from kindly.tracking import events
from tests.support.app import load_campaign, make_settings
from tests.unit.test_outbound import Receiver
from workers import outbound as jobs
from workers import queues


@pytest.fixture
def redis_ctx(tmp_path, redis_url):
    context = Context(
        make_settings(
            tmp_path / "var", KINDLY_REDIS_URL=redis_url, KINDLY_OUTBOUND_ALLOW_PRIVATE="on"
        )
    )
    context.db.migrate()
    context.storage.ensure()
    context_module.use(context)
    yield context
    context_module.use(None)


def test_deliveries_run_on_rq_with_deterministic_ids(redis_ctx):
    from rq import Queue, SimpleWorker

    receiver = Receiver()
    try:
        load_campaign(redis_ctx)
        with redis_ctx.db.session() as session:
            sub, receiver.secret = outbound.subscribe(session, receiver.url, allow_private=True)
            debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
            events.record(session, debtor, "paid")
            events.record(session, debtor, "opted_out", channel="email")
        dispatcher = queues.Dispatcher(redis_ctx.settings)
        with redis_ctx.db.session() as session:
            first = jobs.deliver_pending(session, dispatcher)
        with redis_ctx.db.session() as session:
            again = jobs.deliver_pending(session, dispatcher)  # still queued: the same jobs
        assert [h.status for h in first] == ["queued", "queued"]
        assert sorted(h.id for h in again) == sorted(h.id for h in first)
        assert all(h.id.startswith(f"webhook-{sub.id}-") for h in first)
        connection = dispatcher.redis
        assert Queue(queues.DEFAULT, connection=connection).count == 2
        SimpleWorker([Queue(queues.DEFAULT, connection=connection)], connection=connection).work(
            burst=True
        )
        assert sorted(e["type"] for e in receiver.received) == ["opted_out", "paid"]
        assert receiver.rejected == 0
        with redis_ctx.db.session() as session:
            assert set(session.scalars(select(WebhookDelivery.status))) == {"delivered"}
    finally:
        receiver.server.shutdown()
