"""A whole campaign: microsites and letters rendered by real `kindly worker` processes.

End to end, as an operator runs it: `kindly render SLUG --kinds site,letter` enqueues one job
per debtor on Redis and waits; `kindly worker render` processes (1, then 2) take the jobs,
read PostgreSQL, render, and store every artifact in a storage folder. The clock runs from
the start of `kindly render` until it returns, when every job has finished; the artifact rows
are counted afterwards. Peak memory is each worker's VmHWM, sampled together with any process
it forks. The runs come from KINDLY_BENCH_CAMPAIGN_RUNS, debtors x workers (default
"1000x1,1000x2,5000x1,5000x2"; LONG_RUNS measures the 100,000-debtor goal, 90 minutes or more);
KINDLY_BENCH_CAMPAIGN_LIMIT (seconds) stops a run that takes longer and reports how far it got.

A fresh PostgreSQL database and Redis db 13 (flushed before and after; no other bench or test
uses it) are provisioned the way bench_site.py does it, and dropped afterwards.
"""

from __future__ import annotations

import itertools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("KINDLY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = "redis://127.0.0.1:6379/13"
DEFAULT_RUNS = "1000x1,1000x2,5000x1,5000x2"
LONG_RUNS = "1000x1,1000x2,10000x2,100000x2"
"""The goal's size with the goal's 2 workers; 1 → 2 workers at 1,000, 10× → 100× the work."""


def _runs(spec: str) -> list[tuple[int, int]]:
    """'1000x1,1000x2' -> [(1000, 1), (1000, 2)]."""
    runs = []
    for part in spec.split(","):
        debtors, _, workers = part.strip().partition("x")
        runs.append((int(debtors), int(workers or 1)))
    return runs


RUNS = _runs(os.environ.get("KINDLY_BENCH_CAMPAIGN_RUNS", DEFAULT_RUNS))
LIMIT = float(os.environ.get("KINDLY_BENCH_CAMPAIGN_LIMIT", "0"))
"""Seconds after which a run is stopped and reported as far as it got (0: no limit)."""
KINDS = "site,letter"
PER_DEBTOR = len(KINDS.split(","))
"""Artifacts stored per debtor: a page and a letter."""
GOAL_DEBTORS = 100_000
GOAL_MINUTES = 75
GOAL_MB = 400
LETTER_OPTIONS = ("iban=DE89370400440532013000", "payee_name=Beispiel GmbH", "contact=030 1234567")


@dataclass
class Run:
    """One measured campaign: its size, worker count, seconds and peaks."""

    debtors: int
    workers: int
    seconds: float
    artifacts: int
    peaks_mb: list[float]
    render_cpu: float  # CPU seconds of the `kindly render` process itself (enqueue + polling)
    problem: str = ""  # the last line `kindly render` wrote when it failed
    stopped: bool = False  # stopped at LIMIT before every debtor was rendered
    samples: list[tuple[float, int, float]] = field(default_factory=list)
    # (seconds since start, artifacts stored, largest worker peak RSS in MB so far) every 5 s

    @property
    def done(self) -> int:
        """Debtors whose page and letter were both stored (all of them unless stopped)."""
        return self.artifacts // PER_DEBTOR if self.stopped else self.debtors

    @property
    def rate(self) -> float:
        """Debtors per second, end to end."""
        return self.done / self.seconds

    def pace(self, parts: int = 10) -> list[float]:
        """Debtors per second in each tenth of the work done (flat if time grows linearly)."""
        total = self.artifacts
        rates, last_t = [], 0.0
        for i in range(1, parts + 1):
            goal = total * i / parts
            t = next((t for t, stored, _ in self.samples if stored >= goal), self.seconds)
            rates.append((total / parts / PER_DEBTOR) / max(t - last_t, 1e-9))
            last_t = t
        return rates


def _stack(work: Path) -> tuple[dict[str, str], str]:
    """Environment for a fresh database, Redis db 13 and a storage folder; returns (env, db)."""
    import psycopg
    from redis import Redis

    sys.path.insert(0, str(ROOT))
    from tests.support import services

    services.ensure_postgres()
    services.ensure_redis()
    name = f"kindly_bench_campaign_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    Redis.from_url(REDIS_URL).flushdb()
    host = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    env = {
        **os.environ,
        "KINDLY_DATABASE_URL": f"{host}/{name}",
        "KINDLY_REDIS_URL": REDIS_URL,
        "KINDLY_DATA_DIR": str(work / "var"),
        "KINDLY_STORAGE_URL": (work / "storage").as_uri(),
        "KINDLY_SECRET_KEY": "bench-campaign-secret-key-not-for-production",
        "KINDLY_BASE_URL": "https://pay.example",
        "PYTHONPATH": str(ROOT),
    }
    return env, name


def _drop(name: str) -> None:
    import psycopg
    from redis import Redis

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    Redis.from_url(REDIS_URL).flushdb()


def _kindly(env: dict[str, str], work: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "kindly", *args],
        env=env, cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"kindly {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


def _descendants(root: int) -> list[int]:
    """The process and every process below it (work horses, if the worker forks)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _PeakSampler(threading.Thread):
    """Samples VmHWM of each worker and its descendants every 0.2 s; keeps the largest."""

    def __init__(self, roots: list[int]):
        super().__init__(daemon=True)
        self.peaks = dict.fromkeys(roots, 0.0)
        self.stopping = threading.Event()

    def run(self) -> None:
        """Sample until stopped."""
        while not self.stopping.wait(0.2):
            self.sample()

    def sample(self) -> None:
        """One sweep over every worker's process tree."""
        for root in self.peaks:
            for pid in _descendants(root):
                self.peaks[root] = max(self.peaks[root], _hwm_mb(pid))


def _start_workers(env: dict[str, str], work: Path, count: int) -> list[subprocess.Popen]:
    """`count` `kindly worker render` processes, returned once each is listening."""
    from redis import Redis
    from rq import Worker

    procs = []
    for i in range(count):
        log = (work / f"worker-{len(list(work.glob('worker-*.log')))}-{i}.log").open("w")
        command = [sys.executable, "-m", "kindly", "worker", "render"]
        proc = subprocess.Popen(
            command, env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        procs.append(proc)
    redis = Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + 120
    while Worker.count(connection=redis) < count:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            _stop_workers(procs)
            raise RuntimeError("the workers did not start; see worker-*.log")
        time.sleep(0.2)
    return procs


def _stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the group we started: worker and any horse
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _artifacts(env: dict[str, str], slug: str) -> int:
    import psycopg

    url = env["KINDLY_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM artifact a JOIN debtor d ON d.id = a.debtor_id "
            "JOIN campaign c ON c.id = d.campaign_id WHERE c.slug = %s",
            (slug,),
        ).fetchone()[0]


def _render_until_stored(
    env: dict[str, str], work: Path, slug: str, expected: int, sampler: _PeakSampler
) -> tuple[float, str, bool, list[tuple[float, int, float]]]:
    """Run `kindly render` and time it until every artifact row is there.

    The clock stops when the last artifact is stored (the database says so), which is also
    when `kindly render` returns if all goes well. If `kindly render` dies while the workers
    go on, the time is still measured, and its error is returned so the report can say so.
    Returns (seconds, problem, stopped at LIMIT, samples of the progress every 5 s).
    """
    command = [sys.executable, "-m", "kindly", "render", slug, "--kinds", KINDS]
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stored, last_change, seconds, samples = 0, time.monotonic(), 0.0, []
    while True:
        # Wait on the process (its end is seen at once); count the rows only every 5 s: at
        # 100,000 debtors the count reads 200,000 rows, which 4 times a second took a fifth
        # of a core away from the workers being measured.
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        else:
            seconds = time.perf_counter() - started
            if proc.returncode == 0:  # returned after the last job ended: its time counts
                return (
                    seconds,
                    "",
                    False,
                    [*samples, (seconds, expected, max(sampler.peaks.values()))],
                )
        now_stored = _artifacts(env, slug)
        elapsed = time.perf_counter() - started
        samples.append((elapsed, now_stored, max(sampler.peaks.values())))
        if now_stored != stored:
            stored, last_change = now_stored, time.monotonic()
        if stored >= expected:
            if proc.returncode is None:
                seconds = time.perf_counter() - started
            break
        if LIMIT and elapsed > LIMIT:
            proc.kill()
            proc.wait()
            return elapsed, "", True, samples
        if time.monotonic() - last_change > 180:
            proc.kill()
            raise RuntimeError(f"{slug}: {stored} of {expected} artifacts after a stall of 180 s")
    _, err = proc.communicate(timeout=600)
    if proc.returncode == 0:
        return time.perf_counter() - started, "", False, samples
    return seconds, (err.strip().splitlines() or ["?"])[-1], False, samples


def one_run(env: dict[str, str], work: Path, portfolio: Path, debtors: int, workers: int) -> Run:
    """Import a fresh campaign, start the workers, and time `kindly render` to the end."""
    slug = f"bench-{debtors}-{workers}w"
    _kindly(env, work, "import", str(portfolio), "--campaign", slug, "--create")
    _kindly(env, work, "letters", slug, *[arg for o in LETTER_OPTIONS for arg in ("--set", o)])
    procs = _start_workers(env, work, workers)
    sampler = _PeakSampler([p.pid for p in procs])
    sampler.start()
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds, problem, stopped, samples = _render_until_stored(
            env, work, slug, debtors * PER_DEBTOR, sampler
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        sampler.stopping.set()
        sampler.join()
        sampler.sample()
    finally:
        sampler.stopping.set()
        _stop_workers(procs)
    render_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if stopped:  # the jobs left in the queue must not run in the next run's workers
        from redis import Redis

        Redis.from_url(REDIS_URL).flushdb()
    stored = _artifacts(env, slug)
    peaks = list(sampler.peaks.values())
    return Run(debtors, workers, seconds, stored, peaks, render_cpu, problem, stopped, samples)


def yardstick() -> tuple[float, float]:
    """This machine's speed today, in a process of its own: ms for one letter rendered the
    naive way (a fresh `weasyprint` process) and in a warm process (bench_letters' rows)."""
    code = (
        "from bench import bench_letters as b; b._quiet(); "
        "n = b.naive(b.sample_views(b.NAIVE_LETTERS)); w = b.warm_single(b.sample_views(30)); "
        "print(n * 1000, w * 1000)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout  # fmt: skip
    naive_ms, warm_ms = (float(x) for x in out.split()[-2:])
    return naive_ms, warm_ms


def measure() -> list[Run]:
    """Every run of RUNS, in a stack of its own."""
    sys.path.insert(0, str(ROOT))
    from bench.bench_import import portfolio_csv

    work = Path(tempfile.mkdtemp(prefix="kindly-bench-campaign-"))
    env, database = _stack(work)
    runs = []
    try:
        for size, workers in RUNS:
            portfolio = work / f"portfolio-{size}.csv"
            if not portfolio.exists():
                portfolio.write_text(portfolio_csv(size), encoding="utf-8")
            run = one_run(env, work, portfolio, size, workers)
            print(
                f"  {size} debtors, {workers} worker(s): {run.seconds:.1f} s, "
                f"{run.rate:.1f} debtors/s, peaks {run.peaks_mb}",
                file=sys.stderr, flush=True,
            )  # fmt: skip
            runs.append(run)
    finally:
        _drop(database)
        shutil.rmtree(work, ignore_errors=True)
    return runs


def run() -> str:
    """The Markdown section for BENCHMARKS.md."""
    naive_ms, warm_ms = yardstick()
    runs = measure()
    cores = os.cpu_count()
    lines = [
        "## A whole campaign (microsites + letters through RQ workers)",
        "",
        f"`kindly render SLUG --kinds {KINDS}` on a freshly imported campaign (generated "
        "portfolio: German, English, Italian, French and Spanish debtors, EUR with a GiroCode "
        "and GBP without), `kindly worker render` processes on Redis, PostgreSQL and a storage "
        f"folder, all on this machine's {cores} cores (Redis, PostgreSQL and the `kindly render` "
        "process that enqueues and waits share them). Time is end to end, from the start of "
        "`kindly render` until it returns with every job finished.",
        "",
        f"This machine's speed in this run (absolute times drift between machines and days): "
        f"one letter takes {naive_ms:.0f} ms the naive way (a fresh `weasyprint` process) and "
        f"{warm_ms:.0f} ms in a warm process (bench_letters' first two rows).",
        "",
        "| debtors | workers | seconds | debtors/s | × 1 worker | artifacts stored | "
        "peak RSS MB per worker | `kindly render` CPU s |",
        "|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    single = {r.debtors: r for r in runs if r.workers == 1}
    for r in runs:
        scale = f"{r.rate / single[r.debtors].rate:.2f}" if r.debtors in single else ""
        size = f"{r.done:,} of {r.debtors:,} (stopped)" if r.stopped else f"{r.debtors:,}"
        lines.append(
            f"| {size} | {r.workers} | {r.seconds:.1f} | {r.rate:.1f} | {scale} | "
            f"{r.artifacts:,} | {' / '.join(f'{p:.0f}' for p in r.peaks_mb)} | "
            f"{r.render_cpu:.1f} |"
        )
    lines.append("")
    lines += _findings(runs)
    return "\n".join(lines)


def _findings(runs: list[Run]) -> list[str]:
    """The bullets under the table: failures, growth with size, the goal, memory."""
    lines = [
        f"- {r.debtors:,} debtors, {r.workers} worker(s): `kindly render` exited with "
        f"`{r.problem}` while the workers went on; the time is until the last artifact was "
        "stored."
        for r in runs
        if r.problem
    ]
    for r in runs:
        if len(r.samples) >= 100:  # 8 minutes or more: long enough to show a pace
            tenth = next((mb for _, stored, mb in r.samples if stored >= r.artifacts / 10), 0)
            lines.append(
                f"- {r.debtors:,} debtors, {r.workers} worker(s), debtors/s in each tenth of the "
                f"work done: {', '.join(f'{x:.1f}' for x in r.pace())} (flat = time linear in "
                f"the campaign's size). Largest worker peak RSS after the first tenth "
                f"{tenth:.0f} MB, at the end {max(r.peaks_mb):.0f} MB."
            )
    for workers in sorted({r.workers for r in runs}):
        mine = sorted(
            (r for r in runs if r.workers == workers and not r.stopped), key=lambda r: r.debtors
        )
        for a, b in itertools.pairwise(mine):
            if b.debtors > a.debtors:
                lines.append(
                    f"- Growth with size, {workers} worker(s): {b.debtors / a.debtors:.0f}× the "
                    f"debtors ({a.debtors:,} → {b.debtors:,}) took {b.seconds / a.seconds:.2f}× "
                    f"the time (linear would be {b.debtors / a.debtors:.0f}×)."
                )
    goal = [r for r in runs if r.debtors >= GOAL_DEBTORS and r.workers == 2]
    if goal and goal[-1].stopped:
        r = goal[-1]
        minutes = GOAL_DEBTORS / r.rate / 60
        lines.append(
            f"- **Goal, measured in part**: {r.debtors:,} debtors with 2 workers were stopped "
            f"at the time limit after {r.seconds / 60:.1f} minutes with {r.done:,} rendered "
            f"({r.rate:.1f} debtors/s); at that pace the whole campaign takes about "
            f"{minutes:.0f} minutes (goal ≤ {GOAL_MINUTES}: "
            f"{'met' if minutes <= GOAL_MINUTES else 'not met'} on this machine today)."
        )
    elif goal:
        r = goal[-1]
        minutes = r.seconds / 60
        lines.append(
            f"- **Goal, measured**: {r.debtors:,} debtors with 2 workers took {minutes:.1f} "
            f"minutes (goal ≤ {GOAL_MINUTES}: {'met' if minutes <= GOAL_MINUTES else 'not met'}"
            " on this machine)."
        )
    else:
        twos = [r for r in runs if r.workers == 2] or runs
        best = max(twos, key=lambda r: (r.debtors, r.rate))
        minutes = GOAL_DEBTORS / best.rate / 60
        lines.append(
            f"- Extrapolation, not a measurement: at the {best.rate:.1f} debtors/s measured "
            f"with {best.workers} worker(s) at {best.debtors:,} debtors, {GOAL_DEBTORS:,} "
            f"debtors would take about {minutes:.0f} minutes (goal ≤ {GOAL_MINUTES}: "
            f"{'met' if minutes <= GOAL_MINUTES else 'not met'} on this machine). "
            f'`KINDLY_BENCH_CAMPAIGN_RUNS="{LONG_RUNS}"` measures it (about 90 minutes).'
        )
    peak = max(p for r in runs for p in r.peaks_mb)
    lines += [
        f"- Peak memory per worker: {peak:.0f} MB at most (goal < {GOAL_MB} MB: "
        f"{'met' if peak < GOAL_MB else 'not met'}).",
        "",
    ]
    return lines


if __name__ == "__main__":
    print(run())
