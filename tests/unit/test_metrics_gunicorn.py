"""`kindly serve` with two gunicorn workers: the metrics port sums both workers' counts, keeps
a killed worker's counts, and the public port never answers /metrics."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from tests.support import services
from tests.support.promql import scrape, value

HEALTHZ = {"route": "/healthz", "method": "GET", "status": "200"}


def wait_for(condition, seconds: float, what: str):
    """Poll until `condition()` is truthy (bounded), and return what it returned."""
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)
    return result


def worker_files(directory: Path) -> dict[int, float]:
    """The live workers' counter files: pid -> the /healthz count each holds."""
    counts = {}
    for path in glob.glob(str(directory / "counter_*.db")):
        name = Path(path).stem.split("_", 1)[1]
        if name.isdigit():
            counts[int(name)] = sum(
                v for key, v, _, _ in MmapedDict.read_all_values_from_file(path)
                if '"/healthz"' in key
            )  # fmt: skip
    return counts


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow  # `kindly serve` as a process: gunicorn, two workers, two ports
def test_two_gunicorn_workers_are_summed_on_the_metrics_port_and_survive_a_dead_worker(tmp_path):
    port, metrics_port = services.free_port(), services.free_port()
    directory = tmp_path / "metrics"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KINDLY_", "PROMETHEUS_"))}
    env |= {
        "KINDLY_DATA_DIR": str(tmp_path / "var"),
        "KINDLY_SECRET_KEY": "metrics-secret-key-0123456789",
        "KINDLY_METRICS_PORT": str(metrics_port),
        "KINDLY_METRICS_HOST": "127.0.0.1",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    directory.mkdir()
    (directory / "counter_99999999.db").write_bytes(b"left by an earlier run")  # emptied at start
    log = tmp_path / "serve.log"
    with log.open("w", encoding="utf-8") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "kindly", "serve", "--port", str(port), "--workers", "2"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: server.poll() is None and services.port_open("127.0.0.1", port)
                     and services.port_open("127.0.0.1", metrics_port), 90,
                     "kindly serve to listen on both ports")  # fmt: skip
            assert not (directory / "counter_99999999.db").exists()
            # the public port has no metrics, under any spelling
            assert [get(base + p) for p in ("/metrics", "/metrics/", "/Metrics")] == [404] * 3

            # new connections until both workers have answered some (bounded)
            sent = 0
            while len(worker_files(directory)) < 2 or min(worker_files(directory).values()) == 0:
                assert sent < 2000, f"one worker answered everything: {worker_files(directory)}"
                assert get(base + "/healthz") == 200
                sent += 1
            per_worker = worker_files(directory)
            assert len(per_worker) == 2 and sum(per_worker.values()) == sent
            samples = scrape(metrics_port)
            assert value(samples, "kindly_http_requests_total", **HEALTHZ) == sent
            assert value(samples, "kindly_http_request_duration_seconds_count",
                         route="/healthz", method="GET") == sent  # fmt: skip
            assert value(samples, "kindly_http_requests_total", route="unmatched",
                         method="GET", status="404") == 3  # fmt: skip

            # a worker killed outright: its counts stay, folded; its file goes
            dead = max(per_worker, key=per_worker.get)
            os.kill(dead, signal.SIGKILL)
            wait_for(lambda: dead not in worker_files(directory), 30, "the dead worker's file")
            assert (directory / "counter_folded.db").exists()
            assert value(scrape(metrics_port), "kindly_http_requests_total", **HEALTHZ) == sent
            wait_for(lambda: services.port_open("127.0.0.1", port), 30, "a replacement worker")
            more = 25
            for _ in range(more):
                assert get(base + "/healthz") == 200
            samples = scrape(metrics_port)
            assert value(samples, "kindly_http_requests_total", **HEALTHZ) == sent + more
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    assert "Traceback" not in log.read_text(encoding="utf-8")
