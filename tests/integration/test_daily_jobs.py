"""Daily jobs run on RQ's scheduler: the instalment collection and the retention purge, one run
a day each, every run scheduling the next; a real worker runs them against the real Redis."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from kindly import context as context_module
from kindly.campaigns.models import Campaign, Debtor
from kindly.context import Context
from kindly.payments.models import Payment
from tests.support.app import load_campaign, make_settings
from workers import daily
from workers.queues import DEFAULT, Dispatcher

pytestmark = pytest.mark.integration
NIGHT = dt.datetime(2026, 12, 5, 21, 30, tzinfo=dt.UTC)


@pytest.fixture
def ctx(tmp_path, redis_url):
    context = Context(make_settings(tmp_path / "var", KINDLY_REDIS_URL=redis_url))
    context.db.migrate()
    context_module.use(context)
    yield context
    context_module.use(None)
    context.close()


def scheduled(dispatcher: Dispatcher) -> list[str]:
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    queue = Queue(DEFAULT, connection=dispatcher.redis)
    return sorted(ScheduledJobRegistry(queue=queue).get_job_ids())


def test_each_daily_job_is_scheduled_once_for_its_hour(ctx):
    assert daily.next_run(3, NIGHT) == dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC)
    assert daily.next_run(6, NIGHT.replace(hour=2)) == dt.datetime(2026, 12, 5, 6, tzinfo=dt.UTC)
    dispatcher = Dispatcher(ctx.settings)
    daily.schedule_daily(dispatcher, NIGHT)
    daily.schedule_daily(dispatcher, NIGHT)  # every worker start schedules: still one run a day
    assert scheduled(dispatcher) == ["collect-payments-2026-12-06", "purge-retention-2026-12-06"]


def test_a_worker_runs_the_purge_and_it_schedules_tomorrows(ctx):
    from rq import Queue, SimpleWorker

    load_campaign(ctx)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=45)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        campaign.settings = {"retention_days": 30}
        a1 = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        session.add(Payment(campaign_id=campaign.id, debtor_id=a1.id, provider="sandbox",
                            provider_ref="sbx_purge_1", amount_minor=a1.amount_due_minor,
                            currency="EUR", status="succeeded", created_at=long_ago,
                            updated_at=long_ago))  # fmt: skip
    dispatcher = Dispatcher(ctx.settings)
    queue = Queue(DEFAULT, connection=dispatcher.redis)
    job = queue.enqueue(daily.purge_retention, job_id="purge-now")  # as the scheduler would
    SimpleWorker([queue], connection=dispatcher.redis).work(burst=True)
    assert job.get_status(refresh=True).value == "finished"
    assert job.return_value() == {"winter": 1}
    with ctx.db.session() as session:
        names = dict(session.execute(select(Debtor.reference, Debtor.last_name)).all())
    assert names["A-1"] == "erased" and names["A-2"] == "O'Brien"
    assert scheduled(dispatcher) == [daily.job_id("purge-retention", daily.next_run(3))]


def test_the_collection_job_runs_on_a_worker_and_schedules_tomorrows(ctx):
    from rq import Queue, SimpleWorker

    load_campaign(ctx)
    dispatcher = Dispatcher(ctx.settings)
    queue = Queue(DEFAULT, connection=dispatcher.redis)
    job = queue.enqueue(daily.collect_payments, job_id="collect-now")
    SimpleWorker([queue], connection=dispatcher.redis).work(burst=True)
    assert job.get_status(refresh=True).value == "finished"
    summary = job.return_value()
    assert summary["day"] == dt.datetime.now(dt.UTC).date().isoformat()
    assert summary["charged"] == 0 and summary["plans_broken"] == 0  # no plan in this campaign
    assert scheduled(dispatcher) == [daily.job_id("collect-payments", daily.next_run(6))]
