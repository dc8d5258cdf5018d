"""Fan-out of render jobs: one quick job (page and letter) and one video job per debtor,
and rendering a whole campaign while waiting for the workers."""

from __future__ import annotations

import datetime as dt
import io
import logging
import sys
from collections.abc import Iterator

import click
from sqlalchemy import select

from kindly import context
from kindly.campaigns.models import Debtor
from kindly.campaigns.service import find_or_fail
from kindly.context import Context
from kindly.site import freshness
from workers import jobs, queues

log = logging.getLogger(__name__)

SWEEP_MINUTES = 10
"""How often the workers look for stale artifacts nobody asked to rebuild (a deployment with
new templates, a change made where no worker is reachable)."""


def enqueue_renders(
    ctx: Context, debtor_ids: list[int], kinds: list[str], *, force: bool = False
) -> Iterator[queues.JobHandle]:
    """Enqueue one render job per debtor (site and letter) and one video job; yield handles.

    A debtor's job still queued or running is kept; one that ended runs again. It renders
    only what is missing or stale (`jobs.render_debtor`), everything with `force`.
    """
    dispatcher = queues.Dispatcher(ctx.settings)
    quick = [k for k in kinds if k != "video"]
    for debtor_id in debtor_ids:
        if quick:
            yield dispatcher.enqueue(
                jobs.render_debtor, (debtor_id, quick, force), queue=queues.RENDER,
                job_id=f"render-{debtor_id}-{'-'.join(quick)}", timeout=120, again=True,
            )  # fmt: skip
        if "video" in kinds:
            yield dispatcher.enqueue(
                jobs.render_debtor, (debtor_id, ["video"], force), queue=queues.VIDEO,
                job_id=f"render-{debtor_id}-video", timeout=600, again=True,
            )  # fmt: skip


def rebuild_stale(ctx: Context, campaign_id: int) -> list[queues.JobHandle]:
    """Enqueue a render job for each debtor with stale artifacts (only the stale kinds).

    Only for background workers: without Redis nothing is queued (a job would run inside the
    request that changed the campaign); the pages are then built live until `kindly render`.
    """
    if ctx.settings.jobs_in_process:
        return []
    with ctx.db.session() as session:
        stale = freshness.stale_debtors(session, campaign_id)
    handles: list[queues.JobHandle] = []
    for debtor_id, kinds in sorted(stale.items()):
        handles += enqueue_renders(ctx, [debtor_id], [k for k in jobs.KINDS if k in kinds])
    return handles


def queue_rebuild(ctx: Context, campaign_id: int) -> int:
    """rebuild_stale after a change, from a request or a command: a failure to queue (Redis
    away) is logged, not raised; the change is saved, the pages are built live meanwhile and
    the next sweep queues them. Returns how many jobs were queued."""
    try:
        return len(rebuild_stale(ctx, campaign_id))
    except Exception as exc:  # the change itself is committed; the sweep catches up
        log.warning("stale pages of campaign %s not queued (%s: %s); the sweep will",
                    campaign_id, type(exc).__name__, exc)  # fmt: skip
        return 0


def sweep_stale() -> dict[str, int]:
    """A job: queue the rebuild of every campaign's stale artifacts, then come back later."""
    ctx = context.current()
    with ctx.db.session() as session:
        campaign_ids = freshness.stale_campaigns(session)
    queued = sum(len(rebuild_stale(ctx, campaign_id)) for campaign_id in campaign_ids)
    schedule_sweep(queues.Dispatcher(ctx.settings))
    return {"campaigns": len(campaign_ids), "jobs": queued}


def schedule_sweep(
    dispatcher: queues.Dispatcher, now: dt.datetime | None = None
) -> queues.JobHandle | None:
    """Put the next stale sweep on RQ's scheduler (one per slot, however many workers start)."""
    if dispatcher.settings.jobs_in_process:
        return None
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    slot = now.replace(second=0, microsecond=0)
    slot += dt.timedelta(minutes=SWEEP_MINUTES - slot.minute % SWEEP_MINUTES)
    return dispatcher.enqueue_at(
        slot, sweep_stale, (), queue=queues.DEFAULT,
        job_id=f"sweep-stale-{slot.strftime('%Y-%m-%dT%H%M')}", timeout=600,
    )  # fmt: skip


def run_render(
    ctx: Context, slug: str, kinds: list[str], *, quiet: bool = False, force: bool = False
) -> list[queues.JobHandle]:
    """Render a campaign's missing or stale artifacts (all with `force`) and wait for every
    job, with a progress bar on stderr unless `quiet`; return the failed handles."""
    ctx.storage.ensure()  # an unreachable store is one clear line, before any work
    with ctx.db.session() as session:
        campaign = find_or_fail(session, slug)
        debtor_ids = list(
            session.scalars(
                select(Debtor.id).where(Debtor.campaign_id == campaign.id).order_by(Debtor.id)
            )
        )
    per_debtor = (1 if [k for k in kinds if k != "video"] else 0) + (1 if "video" in kinds else 0)
    total = len(debtor_ids) * per_debtor
    handles = []
    with click.progressbar(
        length=total, label=f"rendering {slug}", file=io.StringIO() if quiet else sys.stderr
    ) as bar:
        for handle in enqueue_renders(ctx, debtor_ids, kinds, force=force):
            handles.append(handle)
            if handle.done:
                bar.update(1)
        queues_waited = {h.origin for h in handles if not h.done}
        if queues_waited:
            _warn_without_workers(ctx, queues_waited)
        queues.wait_all(handles, bar.update)
    return [h for h in handles if h.status != "finished"]


def _warn_without_workers(ctx: Context, queue_names: set[str]) -> None:
    """Say so when nobody listens on a queue we wait for, instead of waiting in silence."""
    from rq import Queue, Worker  # rq only when a real queue is waited for

    connection = queues.redis_connection(ctx.settings)
    for name in sorted(queue_names):
        if Worker.count(queue=Queue(name, connection=connection)) == 0:
            click.echo(
                f"waiting: no worker listens on queue {name!r} yet; start one with "
                f"`kindly worker {name}`",
                err=True,
            )
