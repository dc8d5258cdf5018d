"""Fan-out of render jobs: one quick job (page and letter) and one video job per debtor."""

from __future__ import annotations

from collections.abc import Iterator

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
