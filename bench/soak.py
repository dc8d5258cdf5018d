"""`make soak`: mixed traffic at about 70 % of the measured capacity for a fixed time, while
a drill kills and restarts what Kindly runs on; at the end every answered hit and payment
must be stored exactly once, no request may have got a 500, and each process's memory must
be flat.

Everything runs on loopback and on services of the soak's own (bench.soak_services): a
PostgreSQL cluster, a redis-server, moto's S3 server, `kindly serve` (gunicorn, production
settings) and a `kindly worker`. The machine's shared PostgreSQL and Redis are never touched.

    python -m bench.soak [--seconds N] [--write]     (make soak SOAK_SECONDS=N)

The client counts what it got answered, per debtor and kind of hit, with ids it can find in
the database: a beacon's page id, a payment's sandbox reference, a webhook's event id. A
request that got no answer (its connection broke: a killed worker, a timeout) may or may not
have been stored, so for each debtor and kind: answered <= stored <= answered + unanswered.

The event journal of issue 21 (parts 1-3) is not on main yet. Its hook: when the installed
Kindly has a journal (kindly.tracking.journal, or a `journal_dir` setting), the web
processes get KINDLY_JOURNAL_DIR on a small filesystem of the soak's own, and the drill's
`journal-full` fault fills that filesystem for a while; otherwise the fault is reported as
skipped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.soak_client import (
    KINDS,
    MIX,
    Line,
    Payments,
    Tally,
    Webhooks,
    drive,
    pay_loop,
    webhook_loop,
)
from bench.soak_services import (
    JournalDisk,
    MotoServer,
    OwnPostgres,
    OwnRedis,
    children,
    free_port,
    rss_kib,
    wait_port,
)

ROOT = Path(__file__).resolve().parent.parent
FAULTS = ("kill-web", "redis-aof", "postgres", "redis-no-aof", "journal-full")
RSS_SLOPE_MIB_PER_MIN = 2.0
"""A process's memory counts as flat when its least-squares RSS slope over the steady part of
the soak stays under this: a leak of 100 bytes per request at the soak's ~500-1,000 req/s
grows 3-6 MiB a minute."""
RSS_MIN_WINDOW = 60.0
"""Seconds of samples needed to judge a process's memory (a restarted one is judged from its
start)."""
RSS_EVERY = 2.0
"""Seconds between memory samples."""


@dataclass
class Plan:
    """What one soak does; every loop in it is bounded by these counts and times."""

    seconds: float = 300.0
    load: float = 0.7
    warm_seconds: float = 8.0
    capacity_seconds: float = 12.0
    debtors: int = 400
    payers: int = 150  # debtors kept apart for payments, one payment each at most
    threads: int = 16
    web_workers: int = 2
    payments_per_minute: float = 30.0
    webhooks_per_minute: float = 120.0
    pg_outage: float = 30.0
    journal_full: float = 15.0
    faults: tuple[str, ...] = FAULTS
    max_requests: int = 2_000_000  # a last bound on the hit loop, whatever the rate

    def fault_times(self) -> list[tuple[float, str]]:
        """When each fault starts, seconds into the soak: spread evenly, the last one early
        enough that the system is back well before the end."""
        n = len(self.faults)
        return [
            (self.seconds * 0.8 * (i + 1) / (n + 1), fault) for i, fault in enumerate(self.faults)
        ]


# ---- the stack ------------------------------------------------------------------------------


def journal_supported() -> str | None:
    """Why the journal fault can't run here (None: it can): Kindly has no journal yet, or
    the soak can't mount a filesystem of its own."""
    sys.path.insert(0, str(ROOT))
    from kindly.infra.config import Settings

    has = "journal_dir" in getattr(Settings, "__dataclass_fields__", {})
    if not has and importlib.util.find_spec("kindly.tracking.journal") is None:
        return "this Kindly has no event journal (issue 21 part 1)"
    if os.geteuid() != 0:
        return "mounting the journal's own small filesystem needs root"
    return None


class Stack:
    """Kindly on the soak's own services: the web front and a worker, in production mode."""

    def __init__(self, work: Path, plan: Plan, log):
        self.work, self.plan, self.log = work, plan, log
        self.postgres = OwnPostgres(work / "pg")
        self.redis = OwnRedis(work / "redis")
        self.moto: MotoServer | None = None
        self.journal: JournalDisk | None = None
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.port = free_port()
        self.webhook_secret = "whsec_soak_" + secrets.token_hex(16)

    def env(self, *, production: bool) -> dict[str, str]:
        """KINDLY_* for a process of this stack (production: what `kindly serve` gets)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KINDLY_", "AWS_"))}
        env = base | {
            "KINDLY_DATA_DIR": str(self.work / "var"),
            "KINDLY_SECRET_KEY": self.secret_key,
            "KINDLY_DATABASE_URL": self.postgres.url,
            "KINDLY_STORAGE_URL": "s3://kindly-soak/prod",
            "KINDLY_S3_ENDPOINT_URL": self.moto.url,
            "AWS_ACCESS_KEY_ID": "soak-access-key",
            "AWS_SECRET_ACCESS_KEY": "soak-secret-" + self.secret_key[:12],
            "AWS_DEFAULT_REGION": "us-east-1",
            "KINDLY_PAYMENTS": "sandbox",
            "PYTHONPATH": str(ROOT),
        }
        if production:
            env |= {
                "KINDLY_ENV": "production",
                "KINDLY_BASE_URL": "https://soak.kindly.invalid",
                "KINDLY_REDIS_URL": self.redis.url,
                "KINDLY_OUTBOX": "on",
                "KINDLY_STRIPE_WEBHOOK_SECRET": self.webhook_secret,
                "KINDLY_TRUSTED_PROXIES": "1",  # each phone its own address, as behind the proxy
            }
            if self.journal is not None:
                env["KINDLY_JOURNAL_DIR"] = str(self.journal.folder)
        return env

    def start(self) -> None:
        """Services, a campaign of `plan.debtors` debtors with their microsites, the front."""
        self.secret_key = secrets.token_urlsafe(32)
        self.work.chmod(0o755)  # the postgres user walks through to its folder
        self.postgres.create()
        self.redis.start(aof=True)
        self.moto = MotoServer()
        if "journal-full" in self.plan.faults and journal_supported() is None:
            self.journal = JournalDisk(self.work / "journal")
            self.journal.mount()
        started = time.monotonic()
        # the campaign: built and rendered in-process (no workers yet), as `kindly demo` does
        subprocess.run(
            [sys.executable, "-m", "kindly", "demo", "--count", str(self.plan.debtors),
             "--no-serve", "--kinds", "site"],
            env=self.env(production=False), cwd=self.work, check=True, capture_output=True,
        )  # fmt: skip
        self.log(f"campaign of {self.plan.debtors} debtors built and rendered in "
                 f"{time.monotonic() - started:.0f} s")  # fmt: skip
        self.start_web()
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "kindly", "worker"], env=self.env(production=True), cwd=self.work,
            stdout=(self.work / "worker.log").open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def start_web(self) -> None:
        """`kindly serve` with the production settings; its log in web.log."""
        self.web = subprocess.Popen(
            [sys.executable, "-m", "kindly", "serve", "--port", str(self.port),
             "--workers", str(self.plan.web_workers)],
            env=self.env(production=True), cwd=self.work,
            stdout=(self.work / "web.log").open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_port(self.port, 90, "kindly serve")

    def web_workers(self) -> list[int]:
        """The gunicorn worker processes serving now."""
        return children(self.web.pid) if self.web is not None else []

    def processes(self) -> dict[int, str]:
        """Each process whose memory is watched, with its role."""
        found = {}
        if self.web is not None and self.web.poll() is None:
            found[self.web.pid] = "gunicorn master"
            found |= {pid: "gunicorn worker" for pid in self.web_workers()}
        if self.worker is not None and self.worker.poll() is None:
            found[self.worker.pid] = "kindly worker"
        if (pid := self.redis.pid()) is not None:
            found[pid] = "redis-server"
        pids = self.postgres.pids()
        if pids:
            found[pids[0]] = "postgres (postmaster)"
        return found

    def connect(self):
        """A psycopg connection to the soak's database (the check's own reads)."""
        import psycopg

        return psycopg.connect(self.postgres.url.replace("+psycopg", ""), autocommit=True,
                               connect_timeout=5)  # fmt: skip

    def stop(self) -> None:
        """Stop everything the soak started and delete its folder."""
        for process in (self.web, self.worker):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
        self.redis.kill()
        self.postgres.destroy()
        if self.moto is not None:
            self.moto.stop()
        if self.journal is not None:
            self.journal.unmount()


# ---- the drill ------------------------------------------------------------------------------


@dataclass
class Fault:
    """One fault the drill caused: when, what, how long the system was without it."""

    name: str
    at: float
    seconds: float = 0.0
    note: str = ""
    skipped: str | None = None


def run_fault(stack: Stack, name: str, plan: Plan, stopping: threading.Event) -> Fault:
    """Cause one fault and undo it; the record of what happened."""
    began = time.monotonic()
    fault = Fault(name, 0.0)
    if name == "kill-web":
        workers = stack.web_workers()
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        fault.note = f"SIGKILL to gunicorn worker {victim} (the master starts another)"
    elif name == "redis-aof":
        stack.redis.kill()
        stack.redis.start(aof=True)
        fault.note = "SIGKILL to redis-server, started again on its append-only file"
    elif name == "redis-no-aof":
        stack.redis.shutdown_saving()
        stack.redis.start(aof=False)
        fault.note = ("redis-server shut down (SHUTDOWN SAVE: an RDB snapshot), started again "
                      "without an append-only file, and so it stays")  # fmt: skip
    elif name == "postgres":
        stack.postgres.stop()
        stopping.wait(plan.pg_outage)
        stack.postgres.start()
        fault.note = f"PostgreSQL stopped (fast shutdown) for {plan.pg_outage:.0f} s, then started"
    elif name == "journal-full":
        reason = journal_supported() if stack.journal is None else None
        if stack.journal is None:
            fault.skipped = reason or "no journal disk"
        else:
            written = stack.journal.fill()
            stopping.wait(plan.journal_full)
            stack.journal.release()
            fault.note = (f"journal disk filled ({written >> 20} MiB) for "
                          f"{plan.journal_full:.0f} s, then emptied")  # fmt: skip
    else:
        raise ValueError(f"unknown fault {name!r}")
    fault.seconds = time.monotonic() - began
    return fault


def drill(stack: Stack, plan: Plan, began: float, stopping: threading.Event,
          faults: list[Fault], log) -> None:  # fmt: skip
    """The faults at their times in the soak (bench.soak.Plan.fault_times)."""
    for at, name in plan.fault_times():
        stopping.wait(max(0.0, began + at - time.monotonic()))
        if stopping.is_set():
            return
        started = time.monotonic() - began
        try:
            fault = run_fault(stack, name, plan, stopping)
        except Exception as exc:  # the drill itself failing is a finding, not a crash
            fault = Fault(name, started, note=f"the drill failed: {type(exc).__name__}: {exc}")
        fault.at = started
        faults.append(fault)
        log(f"{started:6.1f} s  {name}: {fault.skipped or fault.note} ({fault.seconds:.1f} s)")


def sample_memory(stack: Stack, samples: dict, stopping: threading.Event, began: float,
                  until: float) -> None:  # fmt: skip
    """RSS of each watched process every RSS_EVERY seconds until `until`."""
    while not stopping.is_set() and time.monotonic() < until:
        now = time.monotonic() - began
        for pid, role in stack.processes().items():
            kib = rss_kib(pid)
            if kib is not None:
                samples.setdefault((pid, role), []).append((now, kib / 1024))
        stopping.wait(RSS_EVERY)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB), in MiB per minute."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_m = sum(m for _, m in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return 60 * sum((t - mean_t) * (m - mean_m) for t, m in points) / var


# ---- the check ------------------------------------------------------------------------------


JOURNAL_QUIET = 5
"""Seconds the stored count must hold still before a soak with a journal counts as drained."""


def unwritten(redis) -> tuple[int, int]:
    """(entries the writers have yet to store, entries stored but left in the stream).

    Not XLEN alone: a writer killed between its XACK and its XDEL leaves entries that are
    stored and acknowledged but never deleted, and XLEN never reaches 0 again. Unwritten
    are the group's pending entries and, if the group has not read to the stream's end,
    the rest."""
    stream = "kindly:events"
    length = redis.xlen(stream)
    if length == 0:
        return 0, 0
    try:
        (group,) = [g for g in redis.xinfo_groups(stream) if g["name"] in (b"writers", "writers")]
    except ValueError:  # no group (Redis lost it): nothing has been read
        return length, 0
    last = redis.xinfo_stream(stream)["last-generated-id"]
    if group["last-delivered-id"] != last:
        return length, 0  # unread entries: how many exactly doesn't matter, not drained
    return group["pending"], length - group["pending"]


def drained(stack: Stack, timeout: float = 300.0) -> tuple[float, int]:
    """Wait until the writers have stored every event in the stream and the stored count
    stops moving; the seconds it took, and the entries stored but left in the stream.

    With a journal, records may still wait in its files for the shipper: the count must
    then hold still for JOURNAL_QUIET seconds (a journal-aware check, such as `kindly events
    status` showing no lag, is the better test once the journal exists)."""
    from redis import Redis

    redis = Redis.from_url(stack.redis.url)
    began = time.monotonic()
    last, still, needed = -1, 0, JOURNAL_QUIET if stack.journal is not None else 1
    waiting = stored = left = None
    while time.monotonic() - began < timeout:
        try:
            waiting, left = unwritten(redis)
            with stack.connect() as conn:
                stored = conn.execute("SELECT count(*) FROM event").fetchone()[0]
        except Exception:  # a service still coming back: ask again
            time.sleep(1.0)
            continue
        still = still + 1 if waiting == 0 and stored == last else 0
        if still >= needed:
            return time.monotonic() - began, left
        last = stored
        time.sleep(1.0)
    try:
        groups = redis.xinfo_groups("kindly:events")
    except Exception as exc:  # the stream itself may be gone
        groups = repr(exc)
    raise RuntimeError(f"the event stream did not drain in {timeout:.0f} s: {waiting} entries "
                       f"unwritten, {stored} events stored; groups {groups}")  # fmt: skip


def stored_hits(stack: Stack) -> Counter:
    """(debtor id, kind) -> stored events of that kind of hit."""
    with stack.connect() as conn:
        rows = conn.execute(
            "SELECT debtor_id, type, coalesce(data::jsonb->>'via', '') = 'beacon', count(*) "
            "FROM event WHERE type IN ('viewed', 'opened', 'clicked') GROUP BY 1, 2, 3"
        ).fetchall()
    kinds = {"opened": "pixel", "clicked": "click"}
    out = Counter()
    for debtor_id, type_, beacon, n in rows:
        kind = kinds.get(type_) or ("beacon" if beacon else "view")
        out[(debtor_id, kind)] += n
    return out


def reconcile(
    answered: Counter, unanswered: Counter, before: Counter, after: Counter
) -> tuple[int, int, dict[str, list[int]]]:
    """Hits lost and hits stored more often than sent, counting per (debtor id, kind): each
    answered hit must be stored, and a request without an answer may have been (so
    answered <= stored <= answered + unanswered); with the totals per kind (answered,
    unanswered, stored)."""
    lost = doubled = 0
    per_kind = {k: [0, 0, 0] for k in KINDS}
    changed = {key for key in after if after[key] != before[key]}
    for key in set(answered) | set(unanswered) | changed:
        stored = after[key] - before[key]
        sure, doubt = answered[key], unanswered[key]
        totals = per_kind[key[1]]
        totals[0], totals[1], totals[2] = totals[0] + sure, totals[1] + doubt, totals[2] + stored
        if stored < sure:
            lost += sure - stored
        elif stored > sure + doubt:
            doubled += stored - sure - doubt
    return lost, doubled, per_kind


@dataclass
class Verdict:
    """The soak's findings; `ok` when every check passed."""

    lines: list[str]
    ok: bool


def check(stack: Stack, tally: Tally, before: Counter, payments: Payments, hooks: Webhooks,
          samples: dict, steady_from: float, run_id: str) -> Verdict:  # fmt: skip
    """Every answered hit and payment stored exactly once, no 500, memory flat."""
    lines, ok = [], True
    after = stored_hits(stack)
    lost, doubled, per_kind = reconcile(tally.answered, tally.unanswered, before, after)
    with stack.connect() as conn:
        keys = {row[0] for row in conn.execute(
            "SELECT idempotency_key FROM event WHERE idempotency_key LIKE %s",
            (f"viewed:%:soak-{run_id}-%",),
        )}  # fmt: skip
        missing_beacons = sum(1 for d, page in tally.beacons if f"viewed:{d}:{page}:" not in keys)
        rows = conn.execute(
            "SELECT debtor_id, provider_ref, status FROM payment WHERE provider = 'sandbox'"
        ).fetchall()
        paid_events = Counter(dict(conn.execute(
            "SELECT debtor_id, count(*) FROM event WHERE type = 'paid' GROUP BY 1").fetchall()))  # fmt: skip
        hook_rows = Counter(row[0] for row in conn.execute(
            "SELECT event_id FROM webhook_event WHERE event_id LIKE %s", (f"evt_soak_{run_id}_%",)))  # fmt: skip
    for kind, (answered, doubt, stored) in per_kind.items():
        lines.append(f"{kind}: {answered:,} answered, {doubt:,} unanswered or refused, "
                     f"{stored:,} stored")  # fmt: skip
    hits_ok = lost == 0 and doubled == 0 and missing_beacons == 0
    ok &= hits_ok
    lines.append(f"hits stored exactly once: {'yes' if hits_ok else '**no**'} ({lost} answered "
                 f"hits missing, {doubled} stored more than sent, {missing_beacons} answered "
                 "beacon ids missing)")  # fmt: skip

    by_ref = Counter(ref for _, ref, _ in rows)
    succeeded = Counter(d for d, _, status in rows if status == "succeeded")
    pay_bad = [d for d, ref in payments.paid.items()
               if by_ref[ref] != 1 or succeeded[d] != 1 or paid_events[d] != 1]  # fmt: skip
    extra = [d for d in succeeded if d not in payments.paid and d not in payments.unfinished]
    twice = [d for d, n in succeeded.items() if n > 1]
    pay_ok = not pay_bad and not extra and not twice
    ok &= pay_ok
    lines.append(f"payments: {len(payments.paid)} answered as paid, {len(payments.unfinished)} "
                 f"gave up; stored exactly once (one payment row, one success, one 'paid' event "
                 f"each): {'yes' if pay_ok else '**no**'}"
                 + (f" (wrong: {pay_bad[:5]}, unexpected: {extra[:5]}, twice: {twice[:5]})"
                    if not pay_ok else ""))  # fmt: skip

    hooks_missing = [e for e in hooks.answered if hook_rows[e] != 1]
    hooks_unknown = [e for e in hook_rows if e not in hooks.answered | hooks.unanswered]
    hooks_ok = not hooks_missing and not hooks_unknown
    ok &= hooks_ok
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(hooks.outcomes.items()))
    lines.append(f"webhooks: {len(hooks.answered)} events answered ({outcomes}), "
                 f"{len(hooks.unanswered)} never answered; each answered one recorded exactly "
                 f"once: {'yes' if hooks_ok else '**no**'}")  # fmt: skip

    fives = Counter()
    for (kind, status), n in tally.statuses.items():
        if status != "none" and status >= 500:
            fives[(kind, status)] += n
    for (what, status), n in payments.statuses.items():
        if status != "none" and status >= 500:
            fives[(what, status)] += n
    for status, n in hooks.statuses.items():
        if status != "none" and status >= 500:
            fives[("webhook", status)] += n
    five_hundreds = sum(n for (_, status), n in fives.items() if status == 500)
    ok &= five_hundreds == 0
    others = ", ".join(
        f"{what} {status} ×{n}" for (what, status), n in fives.items() if status != 500
    )
    lines.append(
        f"500 answers: {five_hundreds}{'' if five_hundreds == 0 else ' **(must be none)**'}"
        + (f"; other 5xx (refused, retried later): {others}" if others else "")
    )

    memory = []
    for (pid, role), points in sorted(samples.items(), key=lambda item: item[0][1]):
        steady = [(t, m) for t, m in points if t >= steady_from]
        if len(steady) < 10 or steady[-1][0] - steady[0][0] < RSS_MIN_WINDOW:
            memory.append(f"{role} {pid}: {len(steady)} samples, too short to judge")
            continue
        rate = slope(steady)
        flat = rate <= RSS_SLOPE_MIB_PER_MIN
        judged = role.startswith(("gunicorn", "kindly"))
        ok &= flat or not judged
        path = " → ".join(f"{steady[i * (len(steady) - 1) // 4][1]:.0f}" for i in range(5))
        verdict = "flat" if flat else "**growing**" if judged else "growing, not judged"
        memory.append(f"{role} {pid}: {path} MiB, {rate:+.2f} MiB/min ({verdict})")
    lines.append(
        f"memory (RSS every {RSS_EVERY:.0f} s from {steady_from:.0f} s into the soak, at its "
        f"start, quarters and end; Kindly's processes are flat when the slope is ≤ "
        f"{RSS_SLOPE_MIB_PER_MIN} MiB/min; Redis and PostgreSQL are shown, not judged: "
        "Redis holds the events buffered while PostgreSQL is down): " + "; ".join(memory)
    )
    return Verdict(lines, ok)


# ---- the run --------------------------------------------------------------------------------


@dataclass
class Result:
    """One soak, for the report and for the reliability test."""

    plan: Plan
    capacity: float
    rate: float
    achieved: float
    faults: list[Fault]
    verdict: Verdict
    tally: Tally
    payments: Payments
    hooks: Webhooks
    drain_seconds: float
    started_at: str
    errors_sample: list

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return self.verdict.ok


def run_soak(plan: Plan, log=print) -> Result:
    """Build the stack, measure its capacity, soak it under the drill, check, tear down."""
    work = Path(tempfile.mkdtemp(prefix="kindly-soak-"))
    stack = Stack(work, plan, log)
    stopping = threading.Event()
    started_at = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    try:
        stack.start()
        with stack.connect() as conn:
            debtors = conn.execute("SELECT id, token FROM debtor ORDER BY id").fetchall()
        # only links that open without an identity check (the demo gives some debtors one)
        line, usable, probed = Line(stack.port), [], Counter()
        for debtor_id, token in debtors:
            answer = line.request("GET", f"/s/{token}")
            probed[answer[0] if answer else "none"] += 1
            if answer is not None and answer[0] == 200:
                usable.append((debtor_id, token))
        line.close()
        payers = usable[: min(plan.payers, len(usable) // 3)]
        hitters = usable[len(payers) :]
        if not hitters:
            log(f"probing the links answered {dict(probed)}")
            raise RuntimeError("no debtor's page opens without an identity check")
        log(f"{len(usable)} of {len(debtors)} links open without a check ({dict(probed)}): "
            f"{len(payers)} pay, {len(hitters)} get hits")  # fmt: skip
        drained(stack)
        before = stored_hits(stack)
        run_id = secrets.token_hex(3)
        tally = Tally()
        common = dict(threads=plan.threads, run_id=run_id, stopping=stopping,
                      budget=plan.max_requests)  # fmt: skip
        drive(stack.port, hitters, tally, seconds=plan.warm_seconds, rate=None, phase="w", **common)
        capacity = drive(stack.port, hitters, tally, seconds=plan.capacity_seconds, rate=None,
                         phase="c", **common)  # fmt: skip
        rate = plan.load * capacity
        log(f"capacity {capacity:,.0f} hits/s (closed loop, {plan.threads} connections); "
            f"soaking at {rate:,.0f} hits/s for {plan.seconds:.0f} s")  # fmt: skip

        payments, hooks, faults, samples = Payments(), Webhooks(), [], {}
        soak_began = time.monotonic()
        until = soak_began + plan.seconds
        side = [
            threading.Thread(target=pay_loop, args=(stack.port, payers, plan.payments_per_minute,
                                                    payments, stopping, until), daemon=True),
            threading.Thread(target=webhook_loop, args=(stack.port, stack.webhook_secret,
                                                        plan.webhooks_per_minute, hooks, run_id,
                                                        stopping, until), daemon=True),
            threading.Thread(target=drill, args=(stack, plan, soak_began, stopping, faults, log),
                             daemon=True),
            threading.Thread(target=sample_memory, args=(stack, samples, stopping, soak_began,
                                                         until), daemon=True),
        ]  # fmt: skip
        for thread in side:
            thread.start()
        answered_before = sum(tally.answered.values())
        drive(stack.port, hitters, tally, seconds=plan.seconds, rate=rate, phase="s", **common)
        achieved = (sum(tally.answered.values()) - answered_before) / plan.seconds
        for thread in side:  # payments and webhooks finish their retries; bounded
            thread.join(timeout=plan.pg_outage + plan.journal_full + 150)
        stopping.set()
        drain_seconds, left = drained(stack)
        verdict = check(stack, tally, before, payments, hooks, samples,
                        steady_from=plan.seconds * 0.2, run_id=run_id)  # fmt: skip
        if left:
            verdict.lines.append(
                f"{left} events stored and acknowledged but left in the Redis stream (a writer "
                "killed between its XACK and its XDEL): nothing lost, but `waiting()` counts "
                "them and the stream never lets go of them"
            )
        errors = [(at - soak_began, kind, status) for at, kind, status in tally.errors]
        return Result(plan, capacity, rate, achieved, faults, verdict, tally, payments, hooks,
                      drain_seconds, started_at, errors)  # fmt: skip
    finally:
        stopping.set()
        for name in ("web.log", "worker.log"):
            path = work / name
            if path.exists():
                shutil.copy(path, Path(tempfile.gettempdir()) / f"kindly-soak-last-{name}")
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


def _errors_by_fault(errors: list, faults: list[Fault]) -> str:
    """Failed or unanswered hits by the fault they followed ('kill-web: none ×14'), or
    'no fault' (a hit more than AFTERMATH seconds after the last fault ended)."""
    windows = sorted(faults, key=lambda fault: fault.at)
    by_fault: dict[str, Counter] = defaultdict(Counter)
    for at, _, status in errors:
        name = "warm-up or capacity run" if at < 0 else "no fault"
        for fault in windows:
            if fault.at <= at <= fault.at + fault.seconds + AFTERMATH:
                name = fault.name
        by_fault[name][status] += 1
    return "; ".join(
        f"{name}: " + ", ".join(f"{status} ×{n}" for status, n in counts.most_common())
        for name, counts in by_fault.items()
    )


AFTERMATH = 15.0
"""Seconds after a fault ends in which a failed hit is put down to it."""


def report(result: Result) -> str:
    """The Markdown section for BENCHMARKS.md."""
    plan, tally = result.plan, result.tally
    lat = sorted(tally.latencies)
    p50 = lat[len(lat) // 2] * 1000 if lat else 0
    p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else 0
    lines = [
        "## The soak (mixed traffic under faults)",
        "",
        f"`make soak` (bench/soak.py), {result.started_at}: PostgreSQL, Redis and moto's S3 of "
        f"its own, `kindly serve` with the production settings ({plan.web_workers} gunicorn "
        f"workers, event writer threads in them) and a `kindly worker`, all on loopback on this "
        f"machine's cores with the client. A campaign of {plan.debtors} debtors (microsites in "
        f"S3); {plan.threads} client connections.",
        "",
        f"- Capacity, closed loop with the soak's own mix ({'/'.join(map(str, MIX))} % page "
        f"views/pixels/clicks/beacons): **{result.capacity:,.0f} hits/s**. Soaked at "
        f"{plan.load:.0%} of it, {result.rate:,.0f} hits/s, for {plan.seconds:.0f} s "
        f"(achieved {result.achieved:,.0f} hits/s), with {result.payments.per_minute:.0f} sandbox "
        f"payments and {plan.webhooks_per_minute:.0f} signed Stripe webhooks a minute beside. "
        f"{tally.total():,} hits sent in all (warm-up and capacity runs included); answered "
        f"ones p50 {p50:.1f} ms, p99 {p99:.1f} ms.",
        f"- After the traffic stopped, the event stream drained in {result.drain_seconds:.0f} s.",
        "",
        "| at s | fault | what happened | s |",
        "|---:|---|---|---:|",
    ]
    for fault in result.faults:
        what = f"skipped: {fault.skipped}" if fault.skipped else fault.note
        lines.append(f"| {fault.at:.0f} | {fault.name} | {what} | {fault.seconds:.1f} |")
    lines += ["", *[f"- {line}" for line in result.verdict.lines]]
    if result.errors_sample:
        lines.append(
            f"- Hits failed or unanswered, by the fault they came in or within "
            f"{AFTERMATH:.0f} s after (status 'none': no answer): "
            f"{_errors_by_fault(result.errors_sample, result.faults)}."
        )
    lines.append(f"- **Verdict: {'passed' if result.ok else 'FAILED'}.**")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Run one soak, print its summary; with --write, put it into BENCHMARKS.md."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float,
                        default=float(os.environ.get("KINDLY_SOAK_SECONDS", "300")))  # fmt: skip
    parser.add_argument("--load", type=float, default=0.7)
    parser.add_argument("--debtors", type=int, default=400)
    parser.add_argument("--pg-outage", type=float, default=30.0)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    parser.add_argument(
        "--note", default="", help="a line added under the section (e.g. why short)"
    )
    args = parser.parse_args(argv)
    faults = tuple(f for f in args.faults.split(",") if f)
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))} (known: {', '.join(FAULTS)})")
    if args.seconds < 60 or args.seconds > 6 * 3600:
        parser.error("--seconds must be between 60 and 21600")
    plan = Plan(seconds=args.seconds, load=args.load, debtors=args.debtors,
                pg_outage=args.pg_outage, faults=faults)  # fmt: skip

    def log(message: str) -> None:
        print(f"soak: {message}", file=sys.stderr, flush=True)

    result = run_soak(plan, log)
    section = report(result)
    if args.note:
        section += f"- {args.note}\n"
    print(section)
    if args.write:
        from bench.__main__ import merge, yardstick

        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=ROOT, check=False).stdout.strip()  # fmt: skip
        stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC at commit {commit or '?'}"
        target = ROOT / "BENCHMARKS.md"
        target.write_text(merge(target.read_text(encoding="utf-8"), [section], ["soak"],
                                f"{stamp} ({yardstick()})"), encoding="utf-8")  # fmt: skip
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
