"""Serving Kindly's Prometheus metrics (kindly.infra.metrics defines and counts them).

With KINDLY_METRICS_PORT set, `kindly serve` (gunicorn's master) and `kindly worker` answer
Prometheus's text format on that port from a daemon thread (`serve`), never on the public one.
A served process group counts through a directory of memory-mapped files (prometheus-client's
multiprocess mode, PROMETHEUS_MULTIPROC_DIR; `prepare` sets it up before the first count);
when a process ends, its counts are folded into one file per type (`fold_dead`,
`fold_exited`). Queue depths and the event lag are read from Redis when Prometheus scrapes
(`Live`); every process that serves them reports the same value, so dashboards and rules take
their max.
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

from kindly.infra import metrics

log = logging.getLogger(__name__)

_fold_lock = threading.Lock()
"""Held while a dead process's counts are folded, so no scrape reads them half-moved."""


class Live:
    """The gauges read from Redis at scrape time: queue depths and the event lag.

    `depths` and `lag` are the readers (workers.queues.depths, eventbuffer.lag_seconds); a
    reader that fails leaves its gauge out of that scrape instead of failing the scrape.
    """

    def __init__(
        self,
        depths: Callable[[], dict[str, int]] | None = None,
        lag: Callable[[], float] | None = None,
    ):
        self.depths, self.lag = depths, lag

    def describe(self) -> list:
        """The families, without reading Redis (asked when registered)."""
        return list(self._families(with_values=False))

    def collect(self) -> Iterator:
        """The families with their current values."""
        return self._families(with_values=True)

    def _families(self, *, with_values: bool) -> Iterator:
        from prometheus_client.core import GaugeMetricFamily

        queues_spec, lag_spec = metrics.LIVE_SPECS
        if self.depths is not None:
            depths = self._read(self.depths, queues_spec.name) if with_values else {}
            if depths is not None:
                family = GaugeMetricFamily(queues_spec.name, queues_spec.help, labels=["queue"])
                for queue, jobs in sorted(depths.items()):
                    family.add_metric([queue], jobs)
                yield family
        if self.lag is not None:
            lag = self._read(self.lag, lag_spec.name) if with_values else 0.0
            if lag is not None:
                family = GaugeMetricFamily(lag_spec.name, lag_spec.help)
                if with_values:
                    family.add_metric([], lag)
                yield family

    @staticmethod
    def _read(reader: Callable[[], Any], name: str) -> Any:
        try:
            return reader()
        except Exception as exc:  # Redis away: the scrape goes on without this gauge
            log.warning("metrics: %s not read: %s: %s", name, type(exc).__name__, str(exc)[:200])
            return None


def multiprocess() -> bool:
    """True when counts go to the multiprocess directory."""
    return bool(os.environ.get(metrics.MULTIPROC_ENV))


def registry(live: Live | None = None):
    """What a scrape reads: the directory's files (or this process's memory), and `live`."""
    from prometheus_client import CollectorRegistry

    scraped = CollectorRegistry(auto_describe=True)
    if multiprocess():
        _directory(scraped, os.environ[metrics.MULTIPROC_ENV])
    else:
        scraped.register(_Memory())
    if live is not None:
        scraped.register(live)
    return scraped


class _Memory:
    """This process's metrics, when counts stay in memory (development, tests)."""

    def collect(self) -> Iterator:
        return metrics.own_registry().collect()


def _directory(scraped, path: str) -> None:
    """Register the multiprocess directory's files with `scraped`, never read while a dead
    process's counts are being folded into them (`fold_dead`)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    class Files(MultiProcessCollector):
        def collect(self):
            with _fold_lock:
                return list(super().collect())

    Files(scraped, path)


def serve(port: int, host: str = "0.0.0.0", live: Live | None = None):  # noqa: S104
    """Answer Prometheus on `port` from a daemon thread; returns the server (shutdown())."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, host, registry(live))
    log.info("metrics on http://%s:%d/metrics", host, port)
    return server


def prepare(port: int | None) -> bool:
    """Before `kindly serve` or `kindly worker` starts: with a metrics port, count through a
    multiprocess directory (PROMETHEUS_MULTIPROC_DIR, else a private temporary one removed
    at exit), emptied of an earlier run's files. Returns whether metrics are served.

    Must run before any metric is used in this process (the command line does nothing else
    before it).
    """
    if port is None:
        return False
    directory = os.environ.get(metrics.MULTIPROC_ENV)
    if not directory:
        directory = tempfile.mkdtemp(prefix="kindly-metrics-")
        os.environ[metrics.MULTIPROC_ENV] = os.environ[metrics.TEMPORARY_ENV] = directory
    if os.environ.get(metrics.TEMPORARY_ENV) == directory:  # ours: gone at exit, restarts too
        atexit.register(_remove_dir, directory, os.getpid())
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if os.environ.get(metrics.OWNER_ENV) != str(os.getpid()):  # not a worker starting afresh
        for path in glob.glob(os.path.join(directory, "*.db")):
            os.remove(path)
        os.environ[metrics.OWNER_ENV] = str(os.getpid())
    if metrics.built():
        raise RuntimeError("metrics were used before kindly.infra.metrics.prepare()")
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # in case prometheus_client came in earlier
    return True


def _remove_dir(directory: str, owner: int) -> None:
    if os.getpid() == owner:  # not in a forked child that exits (a gunicorn worker)
        shutil.rmtree(directory, ignore_errors=True)


FOLDED = "folded"
"""The file name part ("counter_folded.db") of the counts of processes that ended."""


def fold_dead(pid: int) -> None:
    """A process of the group ended (a gunicorn worker, a work horse): add its counters and
    histograms to the folded files and remove its own, so the totals stay and the directory
    does not grow with every process; its live gauges go (prometheus-client's
    mark_process_dead)."""
    if not multiprocess():
        return
    from prometheus_client.mmap_dict import MmapedDict
    from prometheus_client.multiprocess import mark_process_dead

    directory = os.environ[metrics.MULTIPROC_ENV]
    with _fold_lock:
        for kind in ("counter", "histogram"):
            dead = os.path.join(directory, f"{kind}_{pid}.db")
            if not os.path.exists(dead):
                continue
            folded = MmapedDict(os.path.join(directory, f"{kind}_{FOLDED}.db"))
            try:
                for key, value, _stamp, _pos in MmapedDict.read_all_values_from_file(dead):
                    if value:
                        total, _ = folded.read_value(key)
                        folded.write_value(key, total + value, 0.0)
            finally:
                folded.close()
            os.remove(dead)
        mark_process_dead(pid, directory)


def fold_exited() -> None:
    """Fold the files of every process of the directory that has ended (a work horse after
    its job: RQ waits for it first, so it is gone, not a zombie)."""
    if not multiprocess():
        return
    pids = set()
    for path in glob.glob(os.path.join(os.environ[metrics.MULTIPROC_ENV], "*_*.db")):
        tail = os.path.basename(path)[:-3].rsplit("_", 1)[1]
        if tail.isdigit() and int(tail) != os.getpid():
            pids.add(int(tail))
    for pid in sorted(pids):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            fold_dead(pid)
        except PermissionError:  # alive, someone else's
            continue
