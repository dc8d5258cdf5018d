"""Messages the clock holds back are scheduled with RQ's scheduler for when they may go."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kindly import context as context_module
from kindly.campaigns.models import Campaign
from kindly.context import Context
from kindly.errors import ConfigError
from kindly.messaging import delivery
from kindly.messaging.respect import next_allowed
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from tests.support.app import launched, load_campaign, make_settings
from workers.queues import Dispatcher
from workers.send import schedule_held

pytestmark = pytest.mark.integration
QUIET = {"start": "08:00", "end": "20:00", "sundays": False}
LATE_SATURDAY = dt.datetime(2026, 12, 5, 21, 30, tzinfo=dt.UTC)  # 22:30 in Berlin


def test_next_allowed_skips_the_night_sunday_and_holidays():
    berlin, new_york = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
    # Saturday night in Berlin: Sunday is off, so Monday 08:00 local (07:00 UTC)
    assert next_allowed(LATE_SATURDAY, berlin, "DE", QUIET, {}) == dt.datetime(
        2026, 12, 7, 7, 0, tzinfo=dt.UTC
    )
    # the same instant is 16:30 on Saturday in New York: it may go now (rounded to the quarter)
    assert next_allowed(LATE_SATURDAY, new_york, "US", QUIET, {}) == dt.datetime(
        2026, 12, 5, 21, 30, tzinfo=dt.UTC
    )
    # Christmas Eve night in Berlin: the 25th and 26th are holidays, the 27th a Sunday
    eve = dt.datetime(2026, 12, 24, 21, 0, tzinfo=dt.UTC)
    assert next_allowed(eve, berlin, "DE", QUIET, {}) == dt.datetime(
        2026, 12, 28, 7, 0, tzinfo=dt.UTC
    )
    assert next_allowed(eve, berlin, "DE", QUIET, {"days": []}) is None


@pytest.fixture
def campaign(tmp_path, redis_url):
    settings = make_settings(tmp_path / "var", KINDLY_REDIS_URL=redis_url)
    ctx = Context(settings)
    ctx.db.migrate()
    context_module.use(ctx)
    load_campaign(ctx)
    launched(ctx)
    with ctx.db.session() as session:
        row = session.scalar(select(Campaign))
        rules = save_rules(session, row, parse_rules({"defaults": {"channels": ["email", "sms"]}}))
        decide(session, row, rules, LATE_SATURDAY.date())
    yield ctx
    context_module.use(None)


def test_held_messages_are_scheduled_once_for_their_window(campaign):
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    with campaign.db.session() as session:
        planned = delivery.plan(session, session.scalar(select(Campaign)), LATE_SATURDAY)
    held = [p for p in planned if p.status == "held" and p.opens_at]
    assert {p.reason for p in held} == {"quiet_hours"} and len(
        held
    ) == 2  # A-1 (DE), A-2 (GB) have an address
    dispatcher = Dispatcher(campaign.settings)
    schedule_held(dispatcher, planned)
    schedule_held(dispatcher, planned)  # a second run keeps one job per send
    registry = ScheduledJobRegistry(queue=Queue("send", connection=dispatcher.redis))
    assert len(registry.get_job_ids()) == 2
    by_reference = {p.reference: p for p in held}
    german = by_reference["A-1"]
    job = Queue("send", connection=dispatcher.redis).fetch_job(
        f"send-{german.debtor_id}-{german.step}-{german.channel}"
    )
    assert registry.get_scheduled_time(job) == dt.datetime(2026, 12, 7, 7, 0, tzinfo=dt.UTC)


def test_scheduling_without_redis_says_what_is_needed(tmp_path):
    settings = make_settings(tmp_path / "var")
    with pytest.raises(ConfigError, match="scheduling needs KINDLY_REDIS_URL"):
        Dispatcher(settings).enqueue_at(
            LATE_SATURDAY, print, (), queue="send", job_id="x", timeout=1
        )
