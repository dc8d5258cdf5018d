"""One log line (and, with tracing on, one span) per job, wherever it runs: an RQ worker, its
forked work horse, or the calling process when no Redis is configured."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from kindly.infra import logs, tracing

log = logging.getLogger("kindly.job")


@contextmanager
def job_line(
    job_id: str, queue: str | None, name: str, parent: Mapping[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Time the block as the job `job_id` (function `name`) and write its line at the end.

    The block sets `status` in the dict it is handed ("finished" or "failed"); an exception
    out of the block counts as failed. `parent` carries the enqueuing request's trace.
    """
    started = time.perf_counter()
    with (
        logs.scope(job_id=job_id, queue=queue, job=name) as fields,
        tracing.span(f"job {name}", parent, **{"kindly.job_id": job_id,
                                                 "kindly.queue": queue}) as span,
    ):  # fmt: skip
        try:
            yield fields
        except BaseException:
            fields["status"] = "failed"
            raise
        finally:
            fields.setdefault("status", "finished")
            fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
            if span is not None:
                _describe(span, fields)
            level = logging.INFO if fields["status"] == "finished" else logging.WARNING
            log.log(level, "job %s %s", name, fields["status"], extra=fields)


def _describe(span: Any, fields: dict[str, Any]) -> None:
    """The job's outcome and campaign on its span."""
    span.set_attribute("kindly.status", fields["status"])
    if fields.get("campaign"):
        span.set_attribute("kindly.campaign", fields["campaign"])
    if fields["status"] != "finished":
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR))
    fields["trace_id"] = tracing.trace_id()


def logged_worker(worker: Any, *, forking: bool) -> None:
    """Make an RQ worker write one line per job it performs (in the process that runs it).

    RQ's perform_job runs in the work horse of a forking worker, in the worker itself
    otherwise; a horse leaves with os._exit, so its spans are sent before it returns.
    """
    perform = worker.perform_job

    def perform_logged(job, queue, *args, **kwargs):
        with job_line(job.id, queue.name, job.func_name, job.meta) as fields:
            ok = perform(job, queue, *args, **kwargs)
            fields["status"] = "finished" if ok else "failed"
        if forking:
            tracing.flush()
        return ok

    worker.perform_job = perform_logged
