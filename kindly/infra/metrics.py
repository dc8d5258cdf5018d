"""Prometheus metrics: every name Kindly exports is defined here, and nowhere else.

Counting is always on and costs microseconds; serving is on when KINDLY_METRICS_PORT is set.
`kindly serve` (gunicorn's master) and `kindly worker` then answer Prometheus's text format on
that port, never on the public one, so no reverse proxy in front of the app can expose it.

A served process group counts through a directory of memory-mapped files (prometheus-client's
multiprocess mode, PROMETHEUS_MULTIPROC_DIR): each gunicorn worker and each forked RQ work
horse writes its own file, and the scrape sums them. When a process ends, its counts are
folded into one file per type (`exposition.fold_dead`), so counters never go back and a video worker
that forks a horse per job does not leave a file per job behind.

The metrics are built on first use (PEP 562 `__getattr__`), not at import: whether values go
to memory or to files must be settled before the first one is made, and `kindly serve` and
`kindly worker` settle it (`exposition.prepare`) after the command line has imported everything.

Serving (the port, the multiprocess directory, folding the counts of ended processes and the
gauges read at scrape time) is kindly.infra.exposition.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # built on first use, see the module's docstring
    from prometheus_client import Counter, Histogram

    HTTP_REQUESTS: Counter
    HTTP_REQUEST_DURATION: Histogram
    RQ_JOB_DURATION: Histogram
    RQ_JOBS_FAILED: Counter
    RENDER_DURATION: Histogram
    SENDS: Counter
    PAYMENTS_BOOKED: Counter
    WEBHOOK_DELIVERIES: Counter
    WEBHOOK_RETRIES: Counter
    IDENTITY_CHECK_FAILURES: Counter
    IDENTITY_CHECK_LOCKS: Counter

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""The directory of the served process group's count files (prometheus-client's name)."""
OWNER_ENV = "KINDLY_METRICS_OWNER"
"""The pid that emptied the directory: a worker that starts afresh (same pid, exec) keeps it."""
TEMPORARY_ENV = "KINDLY_METRICS_TEMPORARY"
"""The directory `prepare` made itself, to remove when the process ends."""


@dataclass(frozen=True)
class Spec:
    """One metric: its exported name, type, help text and label names."""

    attr: str
    name: str
    type: str  # counter, histogram, gauge
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None

    @property
    def samples(self) -> tuple[str, ...]:
        """The sample names this metric exports."""
        if self.type == "histogram":
            return tuple(f"{self.name}_{end}" for end in ("bucket", "sum", "count"))
        return (self.name,)


HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
RENDER_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                  60.0, 120.0)  # fmt: skip

SPECS: tuple[Spec, ...] = (
    Spec("HTTP_REQUESTS", "kindly_http_requests_total", "counter",
         "HTTP requests answered, by route (the URL rule, never the path), method and status.",
         ("route", "method", "status")),
    Spec("HTTP_REQUEST_DURATION", "kindly_http_request_duration_seconds", "histogram",
         "Seconds from a request's arrival to its answer, by route and method.",
         ("route", "method"), HTTP_BUCKETS),
    Spec("RQ_JOB_DURATION", "kindly_rq_job_duration_seconds", "histogram",
         "Seconds an RQ job ran (each attempt), by queue and kind (the job's function).",
         ("queue", "kind"), JOB_BUCKETS),
    Spec("RQ_JOBS_FAILED", "kindly_rq_jobs_failed_total", "counter",
         "RQ job attempts that failed (retried or not), by queue and kind.", ("queue", "kind")),
    Spec("RENDER_DURATION", "kindly_render_duration_seconds", "histogram",
         "Seconds to render one artifact, by kind (site, letter, video).", ("kind",),
         RENDER_BUCKETS),
    Spec("SENDS", "kindly_sends_total", "counter",
         "Messages by channel and outcome (sent, outbox, print, held, bounced, failed, unknown) "
         "and why (the hold, the bounce or the failure).", ("channel", "outcome", "reason")),
    Spec("PAYMENTS_BOOKED", "kindly_payments_booked_total", "counter",
         "Payments booked as succeeded, by method (bank_transfer, cash, stripe, sandbox, ...).",
         ("method",)),
    Spec("WEBHOOK_DELIVERIES", "kindly_webhook_deliveries_total", "counter",
         "Outgoing webhook attempts by outcome (delivered, retrying, failed).", ("outcome",)),
    Spec("WEBHOOK_RETRIES", "kindly_webhook_retries_total", "counter",
         "Outgoing webhook attempts that were a retry of an earlier failed one."),
    Spec("IDENTITY_CHECK_FAILURES", "kindly_identity_check_failures_total", "counter",
         "Wrong answers to the microsite's identity check."),
    Spec("IDENTITY_CHECK_LOCKS", "kindly_identity_check_locks_total", "counter",
         "Links locked after too many wrong answers to the identity check."),
)  # fmt: skip
"""The metrics counted in the processes (in memory, or in the multiprocess directory)."""

LIVE_SPECS: tuple[Spec, ...] = (
    Spec("", "kindly_rq_queue_jobs", "gauge", "Jobs waiting in each RQ queue (read at scrape).",
         ("queue",)),
    Spec("", "kindly_event_lag_seconds", "gauge",
         "Age of the oldest tracking hit not yet written to the database (read at scrape)."),
)  # fmt: skip
"""The gauges read from Redis when Prometheus scrapes (`Live`)."""

ALL_SPECS = SPECS + LIVE_SPECS
_BY_ATTR = {spec.attr: spec for spec in SPECS}
_built: dict[str, Any] = {}
_build_lock = threading.Lock()
_own = None  # the CollectorRegistry of the metrics built in memory


def __getattr__(name: str) -> Any:
    """The metric objects, built on first use (see the module's docstring)."""
    if name in _BY_ATTR:
        _build()
        return _built[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def built() -> bool:
    """Whether the metrics were made (after that, where counts go cannot change)."""
    return bool(_built)


def own_registry():
    """The registry of the metrics built in this process's memory (made on first use)."""
    _build()
    return _own


def _build() -> None:
    """Make every metric once, in memory or in the multiprocess directory."""
    global _own
    if _built:
        return
    with _build_lock:
        if _built:
            return
        import prometheus_client
        from prometheus_client import CollectorRegistry, Counter, Histogram

        prometheus_client.disable_created_metrics()  # *_created samples only add noise here
        _own = CollectorRegistry()
        made = {}
        for spec in SPECS:
            if spec.type == "counter":
                metric = Counter(spec.name, spec.help, spec.labels, registry=_own)
            else:
                metric = Histogram(spec.name, spec.help, spec.labels, registry=_own,
                                   buckets=spec.buckets)  # fmt: skip
            made[spec.attr] = metric
        globals().update(made)  # later lookups skip __getattr__
        _built.update(made)


# ---- counting ---------------------------------------------------------------------------------

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(route: str, method: str, status: int, seconds: float | None) -> None:
    """Count one answered request (`route`: the URL rule, or "unmatched"; `seconds`: None
    when the request was refused before its clock started)."""
    if method not in METHODS:
        method = "other"  # a client chooses the method: keep the label's values few
    key = (route, method, status)
    pair = _request_children.get(key)
    if pair is None:
        _build()
        pair = (_built["HTTP_REQUESTS"].labels(route, method, str(status)),
                _built["HTTP_REQUEST_DURATION"].labels(route, method))  # fmt: skip
        _request_children[key] = pair
    pair[0].inc()
    if seconds is not None:
        pair[1].observe(seconds)


@contextmanager
def render_timer(kind: str) -> Iterator[None]:
    """Time one artifact's rendering (site, letter, video); a failed one is not observed."""
    started = time.perf_counter()
    yield
    _build()
    _built["RENDER_DURATION"].labels(kind).observe(time.perf_counter() - started)


def observe_job(queue: str, kind: str, seconds: float, *, failed: bool) -> None:
    """Count one attempt of an RQ job."""
    _build()
    _built["RQ_JOB_DURATION"].labels(queue, kind).observe(seconds)
    if failed:
        _built["RQ_JOBS_FAILED"].labels(queue, kind).inc()


def count_send(channel: str | None, outcome: str, reason: str | None = None) -> None:
    """Count one message's outcome; `reason` says why it was held, bounced or failed (the
    plan's "email: opted_out" names the channel when the line has none)."""
    if channel is None and reason and ":" in reason.split(";", 1)[0]:
        channel = reason.split(":", 1)[0].strip()
    _build()
    _built["SENDS"].labels(channel or "none", outcome, hold_reason(reason)).inc()


def hold_reason(reason: str | None) -> str:
    """A reason as a label value: the send plan's "email: opted_out; sms: no_address" (every
    channel blocked) becomes the first channel's reason, so the values stay few."""
    if not reason:
        return ""
    first = reason.split(";", 1)[0]
    return first.split(":", 1)[1].strip() if ":" in first else first.strip()


def count_payment(method: str | None, session: Any = None, count: int = 1) -> None:
    """Count payments booked; with a `session`, only once (and if) it commits."""
    _build()
    child = _built["PAYMENTS_BOOKED"].labels(method or "unknown")
    if session is None:
        child.inc(count)
    else:
        on_commit(session, lambda: child.inc(count))


def count_webhook(outcome: str, *, retry: bool) -> None:
    """Count one outgoing webhook attempt (delivered, retrying, failed)."""
    _build()
    _built["WEBHOOK_DELIVERIES"].labels(outcome).inc()
    if retry:
        _built["WEBHOOK_RETRIES"].inc()


def count_identity_failure(*, locked: bool) -> None:
    """Count one wrong answer to the identity check, and the lock it led to, if any."""
    _build()
    _built["IDENTITY_CHECK_FAILURES"].inc()
    if locked:
        _built["IDENTITY_CHECK_LOCKS"].inc()


_PENDING = "kindly_metrics_pending"


def on_commit(session: Any, count: Callable[[], None]) -> None:
    """Run `count` when the session's transaction commits; forget it when it rolls back."""
    from sqlalchemy import event

    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        if not event.contains(session, "after_commit", _committed):
            event.listen(session, "after_commit", _committed)
            event.listen(session, "after_rollback", _rolled_back)
    pending.append(count)


def _committed(session: Any) -> None:
    for count in session.info.pop(_PENDING, ()):
        count()


def _rolled_back(session: Any) -> None:
    session.info.pop(_PENDING, None)
