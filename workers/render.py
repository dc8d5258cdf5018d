"""Fan-out of render jobs: one quick job (page and letter) and one video job per debtor,
and rendering a whole campaign while waiting for the workers."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import click
from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.campaigns.service import find_or_fail
from kindly.context import Context
from workers import jobs, queues


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
