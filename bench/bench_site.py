"""Microsites: pages rendered per second, and pages served beside a bare Flask route.

Serving runs gunicorn (gthread, the settings of `kindly serve`) and wrk from loopback at 16
and 200 connections; each figure is a ratio to the bare route measured in the same run.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DURATION = int(os.environ.get("KINDLY_BENCH_SECONDS", "8"))


def render_rate(count: int = 3000) -> float:
    """Pages per second on one core, rendering distinct debtors (no storage writes)."""
    sys.path.insert(0, str(ROOT))
    from kindly.renderer.site import render_site
    from tests.views import make_view

    views = [
        replace(make_view(), reference=f"K-{i:06d}", last_name=f"Müller {i}") for i in range(count)
    ]
    render_site(views[0])  # templates compiled once, as in a warm worker
    started = time.perf_counter()
    for view in views:
        render_site(view)
    return count / (time.perf_counter() - started)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def _wrk(url: str, connections: int) -> tuple[float, float]:
    """Requests per second and p99 latency (ms) from wrk."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{DURATION}s",
            "--latency",
            "-H",
            "User-Agent: Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    value, unit = float(p99.group(1)), p99.group(2)
    p99_ms = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} failed responses from {url}")
    return rps, p99_ms


def _serve(cmd: list[str], env: dict[str, str], health: str) -> subprocess.Popen:
    process = subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait(health)
    return process


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def serving() -> list[tuple[str, int, float, float, float, float]]:
    """(what, connections, rps, p99, baseline rps, baseline p99) for the microsite and pixel."""
    if not shutil.which("wrk"):
        raise RuntimeError(
            "wrk is not installed (make bench installs it via scripts/system-deps.sh)"
        )
    work = Path(tempfile.mkdtemp(prefix="kindly-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | {
        "KINDLY_DATA_DIR": str(work / "var"),
        "KINDLY_SECRET_KEY": "bench-secret-key-0123456789",
    }
    database = _production_stack(env)
    kindly = [sys.executable, "-m", "kindly"]
    in_process = {k: v for k, v in env.items() if k != "KINDLY_REDIS_URL"}  # render without workers
    subprocess.run(
        [*kindly, "demo", "--count", "20", "--no-serve", "--kinds", "site"],
        env=in_process,
        cwd=work,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*kindly, "export", "demo", "--out", str(work / "e.csv")],
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
    )
    with (work / "e.csv").open(encoding="utf-8") as handle:
        token = next(csv.DictReader(handle))["token"]

    port = _free_port()
    gunicorn = [
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        "2",
        "-k",
        "gthread",
        "--threads",
        "4",
        "bench.hello:app",
    ]
    base = f"http://127.0.0.1:{port}"
    rows = []
    hello = _serve(gunicorn, env, f"{base}/hello")
    try:
        baseline = {c: _wrk(f"{base}/hello", c) for c in (16, 200)}
    finally:
        _stop(hello)
    app = _serve([*kindly, "serve", "--port", str(port), "--workers", "2"], env, f"{base}/healthz")
    try:
        for what, path in (("microsite", f"/s/{token}"), ("open pixel", f"/o/{token}.gif")):
            for connections in (16, 200):
                rps, p99 = _wrk(base + path, connections)
                rows.append((what, connections, rps, p99, *baseline[connections]))
    finally:
        _stop(app)
        shutil.rmtree(work, ignore_errors=True)
        _drop(database)
    return rows


def _production_stack(env: dict[str, str]) -> str:
    """Serve from PostgreSQL with events through Redis, as production does: a fresh
    database and Redis db 14 on this machine (started if down, as the tests do)."""
    import uuid

    import psycopg
    from redis import Redis

    sys.path.insert(0, str(ROOT))
    from tests import services

    services.ensure_postgres()
    services.ensure_redis()
    name = f"kindly_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    Redis.from_url("redis://127.0.0.1:6379/14").flushdb()
    env["KINDLY_DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    env["KINDLY_REDIS_URL"] = "redis://127.0.0.1:6379/14"
    return name


def _drop(name: str) -> None:
    import psycopg
    from redis import Redis

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    Redis.from_url("redis://127.0.0.1:6379/14").flushdb()


def run() -> str:
    """The Markdown section for BENCHMARKS.md."""
    rate = render_rate()
    lines = [
        "## Microsites",
        "",
        f"Rendering (Jinja, one core, distinct debtors, no storage writes): **{rate:,.0f} pages/s** "
        f"(goal ≥ 1,000 per core).",
        "",
        f"Serving: gunicorn gthread (2 workers × 4 threads) on PostgreSQL with events through a "
        f"Redis stream, wrk from loopback on the same 2 cores, {DURATION} s per run; baseline is "
        "a bare Flask route on the same gunicorn settings in the same run.",
        "",
        "| route | connections | req/s | p99 ms | baseline req/s | baseline p99 ms | req/s ratio (goal ≥ 0.7) | p99 ratio (goal ≤ 1.5) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for what, connections, rps, p99, base_rps, base_p99 in serving():
        lines.append(
            f"| {what} | {connections} | {rps:,.0f} | {p99:.1f} | {base_rps:,.0f} | {base_p99:.1f} | "
            f"{rps / base_rps:.2f} | {p99 / base_p99:.2f} |"
        )
    return "\n".join(lines) + "\n"
