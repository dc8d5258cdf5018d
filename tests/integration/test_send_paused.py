"""A pause stops sends already on the queue: real RQ on Redis, the status asked when a job runs."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from kindly import context as context_module
from kindly.campaigns.models import Campaign
from kindly.context import Context
from kindly.launch import change_status
from kindly.messaging import delivery
from kindly.messaging.models import Send
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from tests.support.app import launched, load_campaign, make_settings
from tests.unit.test_admin import ready_to_launch
from workers.queues import SEND, Dispatcher
from workers.send import enqueue_sends

AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 in Berlin, a Tuesday


@pytest.fixture
def queued(tmp_path, redis_url):
    """A live campaign whose first messages wait on the send queue, no worker running yet."""
    ctx = Context(make_settings(tmp_path / "var", KINDLY_REDIS_URL=redis_url))
    ctx.db.migrate()
    context_module.use(ctx)
    load_campaign(ctx)
    launched(ctx)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        rules = save_rules(session, campaign, parse_rules({"defaults": {"channels": ["email"]}}))
        decide(session, campaign, rules, AT.date())
    with ctx.db.session() as session:
        planned = delivery.plan(session, session.scalar(select(Campaign)), AT)
    handles = enqueue_sends(Dispatcher(ctx.settings), planned, AT)
    assert [h.status for h in handles] == ["queued", "queued"]  # have an email
    yield ctx
    context_module.use(None)
    ctx.close()


def work(ctx: Context) -> list:
    """Run an RQ worker over the send queue until it is empty; the jobs' results."""
    from rq import Queue, SimpleWorker

    connection = Dispatcher(ctx.settings).redis
    queue = Queue(SEND, connection=connection)
    ids = queue.job_ids
    SimpleWorker([queue], connection=connection).work(burst=True)
    return [queue.fetch_job(i).return_value() for i in ids]


def status(ctx: Context, wanted: str) -> None:
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        assert change_status(session, campaign, wanted, user=None, via="cli").gaps == []


def test_jobs_queued_while_live_send_nothing_when_a_worker_runs_them_after_a_pause(queued):
    status(queued, "paused")
    assert work(queued) == [None, None]  # each job asked again, and the campaign is paused
    with queued.db.session() as session:
        assert session.scalars(select(Send)).all() == []
    assert not (queued.settings.data_dir / "outbox").exists() or not any(
        (queued.settings.data_dir / "outbox").iterdir()
    )

    ready_to_launch(queued)
    status(queued, "live")  # resumed: `kindly send` plans and queues them again
    with queued.db.session() as session:
        planned = delivery.plan(session, session.scalar(select(Campaign)), AT)
    enqueue_sends(Dispatcher(queued.settings), planned, AT)
    assert work(queued) == ["outbox", "outbox"]
    assert len(list((queued.settings.data_dir / "outbox").glob("*.eml"))) == 2
