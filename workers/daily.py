"""Daily jobs on RQ's scheduler: charging due instalments and the retention purge.

Each job runs on the default queue at its hour (UTC) and, when done, schedules its next run;
every `kindly worker` listening on the default queue schedules them at start. Job ids carry
the day (`collect-payments-2026-12-06`), so however many workers start, a day has one run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from kindly import context, privacy
from kindly.cases import daily as case_runs
from workers.queues import DEFAULT, Dispatcher, JobHandle


def collect_payments() -> dict[str, Any]:
    """Charge every instalment due (or due for a retry) and resolve promises whose day passed."""
    ctx = context.current()
    day = dt.datetime.now(dt.UTC).date()
    with ctx.db.session() as session:
        summary = case_runs.collect(session, ctx.settings, day)
    _schedule(Dispatcher(ctx.settings), "collect-payments")
    return summary


def purge_retention() -> dict[str, int]:
    """Erase the closed cases past their campaign's retention period."""
    ctx = context.current()
    with ctx.db.session() as session:
        done = privacy.purge_retention(session, ctx.storage, via="schedule")
    _schedule(Dispatcher(ctx.settings), "purge-retention")
    return done


JOBS: dict[str, tuple[int, Callable[[], Any]]] = {
    "collect-payments": (6, collect_payments),
    "purge-retention": (3, purge_retention),
}
"""Name -> (hour UTC, job). Collection early in the morning, before debtors' days begin; the
purge at a quiet hour for the database and storage."""


def next_run(hour: int, now: dt.datetime | None = None) -> dt.datetime:
    """The next `hour`:00 UTC strictly after `now`."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    run = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return run if run > now else run + dt.timedelta(days=1)


def job_id(name: str, when: dt.datetime) -> str:
    """One run of a daily job per day: scheduling the same day twice keeps one job."""
    return f"{name}-{when.date().isoformat()}"


def _schedule(
    dispatcher: Dispatcher, name: str, now: dt.datetime | None = None
) -> JobHandle | None:
    if dispatcher.settings.jobs_in_process:
        return None  # run by hand (`kindly payments collect`, `kindly purge`): nobody to wake
    hour, func = JOBS[name]
    when = next_run(hour, now)
    return dispatcher.enqueue_at(
        when, func, (), queue=DEFAULT, job_id=job_id(name, when), timeout=3600
    )


def schedule_daily(dispatcher: Dispatcher, now: dt.datetime | None = None) -> list[JobHandle]:
    """Put the next run of every daily job on RQ's scheduler (none without Redis)."""
    handles = [_schedule(dispatcher, name, now) for name in JOBS]
    return [handle for handle in handles if handle is not None]
