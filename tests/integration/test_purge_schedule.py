"""The daily retention purge runs on RQ's scheduler: one job a day, and each run schedules the
next; a real worker runs it against the real Redis."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from kindly.core import context as context_module
from kindly.core.context import Context
from kindly.core.models import Campaign, Debtor, Payment
from kindly.workers import privacy as purge
from kindly.workers.queues import DEFAULT, Dispatcher
from tests.conftest import load_campaign, make_settings

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


def test_the_next_purge_is_at_three_utc_and_scheduled_once(ctx):
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    assert purge.next_run(NIGHT) == dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC)
    assert purge.next_run(NIGHT.replace(hour=2)) == dt.datetime(2026, 12, 5, 3, 0, tzinfo=dt.UTC)
    dispatcher = Dispatcher(ctx.settings)
    purge.schedule_purge(dispatcher, NIGHT)
    purge.schedule_purge(dispatcher, NIGHT)  # every worker start schedules: still one job
    registry = ScheduledJobRegistry(queue=Queue(DEFAULT, connection=dispatcher.redis))
    assert registry.get_job_ids() == ["purge-retention-2026-12-06"]


def test_a_worker_runs_the_purge_and_schedules_tomorrows(ctx):
    from rq import Queue, SimpleWorker
    from rq.registry import ScheduledJobRegistry

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
    job = queue.enqueue(purge.purge_job, job_id="purge-now")  # as the scheduler would at 03:00
    SimpleWorker([queue], connection=dispatcher.redis).work(burst=True)
    assert job.get_status(refresh=True).value == "finished"
    assert job.return_value() == {"winter": 1}
    with ctx.db.session() as session:
        names = dict(session.execute(select(Debtor.reference, Debtor.last_name)).all())
    assert names["A-1"] == "erased" and names["A-2"] == "O'Brien"
    tomorrow = purge.job_id(purge.next_run())
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == [tomorrow]
