"""The daily retention purge: an RQ job on the default queue that schedules its next run."""

from __future__ import annotations

import datetime as dt

from kindly.core import context, privacy
from kindly.workers.queues import DEFAULT, Dispatcher, JobHandle

PURGE_HOUR = 3
"""The hour (UTC) the purge runs: a quiet time for the database and storage."""


def next_run(now: dt.datetime | None = None) -> dt.datetime:
    """The next PURGE_HOUR:00 UTC strictly after `now`."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    run = now.replace(hour=PURGE_HOUR, minute=0, second=0, microsecond=0)
    return run if run > now else run + dt.timedelta(days=1)


def job_id(when: dt.datetime) -> str:
    """One purge job per day: scheduling the same day twice keeps one job."""
    return f"purge-retention-{when.date().isoformat()}"


def purge_job() -> dict[str, int]:
    """Erase the closed cases past their campaign's retention, then schedule tomorrow's run."""
    ctx = context.current()
    with ctx.db.session() as session:
        done = privacy.purge_retention(session, ctx.storage, via="schedule")
    schedule_purge(Dispatcher(ctx.settings))
    return done


def schedule_purge(dispatcher: Dispatcher, now: dt.datetime | None = None) -> JobHandle | None:
    """Put the next daily purge on RQ's scheduler (nothing to schedule without Redis)."""
    if dispatcher.settings.jobs_in_process:
        return None
    when = next_run(now)
    return dispatcher.enqueue_at(
        when, purge_job, (), queue=DEFAULT, job_id=job_id(when), timeout=3600
    )
