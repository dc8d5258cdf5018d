"""The event journal's drills, on real `kindly serve` (gunicorn) processes: a web worker
SIGKILLed mid-burst, a shipper SIGKILLed mid-batch, Redis down, PostgreSQL down, the
journal's disk full, and two servers sharing a journal folder after a restart. Each ends with
every answered hit stored exactly once, counted.

Hits are beacons (each with its own page id, so its idempotency key names it: every
answered one must be stored, none twice) and open pixels (answered <= stored <= sent).
Traffic goes to loopback only; every loop is bounded in count and time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kindly.campaigns.models import Debtor
from kindly.tracking.eventbuffer import pending
from kindly.tracking.journal import Journal, is_segment
from kindly.tracking.models import Event
from kindly.tracking.shipper import lag
from tests.reliability.conftest import PHONE, ROOT, stop, wait_for
from tests.support import services
from tests.support.app import load_campaign

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Burst:
    """What a burst sent and what was answered."""

    beacons_sent: set[str] = field(default_factory=set)
    beacons_answered: set[str] = field(default_factory=set)
    pixels_sent: int = 0
    pixels_answered: int = 0
    failed: int = 0  # errors and non-2xx answers
    lock: threading.Lock = field(default_factory=threading.Lock)


def hammer(ports: list[int], token: str, label: str, count: int, *, threads: int = 6,
           seconds: float = 90, burst: Burst | None = None,
           progress: threading.Event | None = None) -> Burst:  # fmt: skip
    """`count` hits (half beacons, half pixels) from `threads` keep-alive clients spread over
    the ports; connection errors are counted as unanswered and the client reconnects."""
    burst = burst or Burst()
    deadline = time.monotonic() + seconds
    headers = {"User-Agent": PHONE, "Content-Type": "application/json"}

    def client(number: int) -> None:
        port = ports[number % len(ports)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for n in range(number, count, threads):
            if time.monotonic() > deadline:
                break
            beacon = n % 2 == 0
            page = f"{label}-{n:07d}"
            try:
                if beacon:
                    with burst.lock:
                        burst.beacons_sent.add(page)
                    body = json.dumps({"type": "view", "id": page})
                    conn.request("POST", f"/s/{token}/e", body=body, headers=headers)
                else:
                    with burst.lock:
                        burst.pixels_sent += 1
                    conn.request("GET", f"/o/{token}.gif", headers=headers)
                response = conn.getresponse()
                response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            with burst.lock:
                if not ok:
                    burst.failed += 1
                elif beacon:
                    burst.beacons_answered.add(page)
                else:
                    burst.pixels_answered += 1
                answered = len(burst.beacons_answered) + burst.pixels_answered
            if progress is not None and answered >= count // 3:
                progress.set()
        conn.close()

    workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 30)
    return burst


def stored_beacons(context, label: str) -> dict[str, int]:
    """Stored view events per beacon page id of this label, with how many rows each."""
    with context.db.session() as session:
        keys = session.execute(
            select(Event.idempotency_key, func.count())
            .where(Event.type == "viewed", Event.idempotency_key.like(f"viewed:%:{label}-%"))
            .group_by(Event.idempotency_key)
        ).all()
    return {key.split(":")[2]: rows for key, rows in keys}


def stored_pixels(context) -> int:
    with context.db.session() as session:
        return session.scalar(select(func.count(Event.id)).where(Event.type == "opened"))


def assert_stored_once(context, bursts: dict[str, Burst], warm_pixels: int) -> None:
    """Every answered beacon stored once (no page twice, nothing never sent); pixels between
    answered and sent (`warm_pixels` more, all answered, from the warm-ups)."""
    pixels_answered = pixels_sent = warm_pixels
    for label, burst in bursts.items():
        stored = stored_beacons(context, label)
        missing = burst.beacons_answered - set(stored)
        assert not missing, f"{len(missing)} answered beacons of {label} not stored"
        assert set(stored) <= burst.beacons_sent
        assert set(stored.values()) <= {1}
        pixels_answered += burst.pixels_answered
        pixels_sent += burst.pixels_sent
    assert pixels_answered <= stored_pixels(context) <= pixels_sent


def serve(env: dict[str, str], log: Path, *, workers: int = 2) -> tuple[subprocess.Popen, int]:
    """`kindly serve` (gunicorn) on a free port in its own process group, once it answers."""
    port = services.free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | env
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "kindly", "serve", "--port", str(port),
             "--workers", str(workers)],
            env=clean, cwd=ROOT, stdout=out, stderr=out, start_new_session=True,
        )  # fmt: skip
    wait_for(lambda: services.port_open("127.0.0.1", port), 60, "kindly serve to listen")
    return process, port


def warm(port: int, token: str, workers: int = 2) -> int:
    """Hits until every worker has the token cached (its first hits go through Flask);
    returns the pixels it sent (all answered)."""
    for n in range(20 * workers):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # a new one: any worker
        conn.request("GET", f"/o/{token}.gif", headers={"User-Agent": PHONE})
        assert conn.getresponse().status == 200
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = json.dumps({"type": "view", "id": f"warm-{port}-{n:04d}"})
        conn.request("POST", f"/s/{token}/e", body=body, headers={"User-Agent": PHONE})
        assert conn.getresponse().status == 204
        conn.close()
    return 20 * workers


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (gunicorn's workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def ship_once(env: dict[str, str], folder: Path) -> str:
    """`kindly events ship --once`: a new process ships what the folder holds."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | env
    done = subprocess.run(
        [sys.executable, "-m", "kindly", "events", "ship", "--once", "--folder", str(folder)],
        env=clean, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return done.stdout


def segments(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if is_segment(name))


@pytest.fixture
def journal_stack(stack, stack_env, tmp_path):
    """The stack with a campaign, a journal folder, and the env `kindly serve` runs with."""
    load_campaign(stack)
    with stack.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
    folder = tmp_path / "journal"
    env = stack_env | {"KINDLY_JOURNAL": str(folder)}
    return stack, env, token, folder


def test_a_web_worker_killed_mid_burst_loses_no_answered_hit(journal_stack, tmp_path):
    context, env, token, folder = journal_stack
    server, port = serve(env, tmp_path / "serve.log")
    try:
        warmed = warm(port, token)
        progress = threading.Event()
        burst = Burst()
        runner = threading.Thread(target=hammer, args=([port], token, "kill", 3000),
                                  kwargs={"burst": burst, "progress": progress})  # fmt: skip
        runner.start()
        assert progress.wait(60)
        victims = children(server.pid)
        assert len(victims) == 2
        os.kill(victims[0], signal.SIGKILL)  # mid-burst, its journal and shipper thread too
        runner.join(timeout=150)
        assert burst.failed < 200  # the killed worker's connections, not the burst
    finally:
        stop(server)
    assert len(burst.beacons_answered) > 1000
    ship_once(env, folder)  # a new process ships what the dead one and the others left
    assert_stored_once(context, {"kill": burst}, warmed)
    assert segments(folder) == []  # all closed, shipped, deleted


def test_a_shipper_killed_mid_batch_leaves_nothing_unstored_and_nothing_twice(
    journal_stack, tmp_path
):
    context, env, token, folder = journal_stack
    with context.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.token == token))
        session.expunge(debtor)
    journal = Journal(folder, fsync="never", segment_bytes=1_000_000)
    total = 30_000
    for n in range(total):
        journal.append(pending(debtor, "opened", channel="email", key=f"opened:ship-{n}"))
    journal.close()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | env
    before = 0
    for attempt in range(3):  # three shippers, each SIGKILLed while it ships
        shipper = subprocess.Popen(
            [sys.executable, "-m", "kindly", "events", "ship", "--folder", str(folder)],
            env=clean, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        wait_for(lambda b=before: stored_pixels(context) > b, 60, "the shipper to store a batch")
        time.sleep(0.05 * attempt)  # a different moment of a batch each time
        stop(shipper, signal.SIGKILL)
        before = stored_pixels(context)
        assert before < total, "the shipper finished before it was killed"
    assert "shipped" in ship_once(env, folder)
    with context.db.session() as session:
        rows = session.scalar(select(func.count(Event.id)).where(Event.type == "opened"))
        keys = session.scalar(
            select(func.count(func.distinct(Event.idempotency_key))).where(Event.type == "opened")
        )
    assert rows == keys == total
    assert segments(folder) == []


def test_redis_down_hits_are_answered_and_stored_from_the_journal(
    journal_stack, tmp_path, own_redis
):
    context, env, token, folder = journal_stack
    env = env | {"KINDLY_REDIS_URL": own_redis.url}
    server, port = serve(env, tmp_path / "serve.log")
    try:
        warmed = warm(port, token)
        progress = threading.Event()
        burst = Burst()
        runner = threading.Thread(target=hammer, args=([port], token, "redis", 2000),
                                  kwargs={"burst": burst, "progress": progress})  # fmt: skip
        runner.start()
        assert progress.wait(60)
        own_redis.kill()  # Redis gone mid-burst, not coming back during the test
        runner.join(timeout=150)
        assert burst.failed == 0
        wait_for(lambda: lag(folder).unshipped_records == 0, 60, "the web's shipper to catch up")
    finally:
        stop(server)
    ship_once(env, folder)
    assert_stored_once(context, {"redis": burst}, warmed)


class CutGate:
    """A TCP proxy in front of PostgreSQL that the drill can cut: closed, it refuses new
    connections and drops every open one, as a database that went away does."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.open = True
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def cut(self) -> None:
        """PostgreSQL down: every connection dropped, new ones refused."""
        self.open = False
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def close(self) -> None:
        self.cut()
        self._listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass


def test_postgres_down_warm_hits_are_answered_and_stored_when_it_returns(journal_stack, tmp_path):
    context, env, token, folder = journal_stack
    gate = CutGate(5432)
    url = env["KINDLY_DATABASE_URL"].replace("127.0.0.1:5432", f"127.0.0.1:{gate.port}")
    assert url != env["KINDLY_DATABASE_URL"]
    served = env | {"KINDLY_DATABASE_URL": url}
    server, port = serve(served, tmp_path / "serve.log")
    try:
        warmed = warm(port, token)
        wait_for(lambda: lag(folder).unshipped_records == 0, 60, "the warm-up to be shipped")
        gate.cut()
        burst = hammer([port], token, "pgdown", 1500)
        assert burst.pixels_answered + len(burst.beacons_answered) > 1400
        assert lag(folder).unshipped_records >= len(burst.beacons_answered)  # all waiting
        gate.open = True  # back: the web's shipper thread stores them on its next try
        wait_for(lambda: lag(folder).unshipped_records == 0, 90, "the shipper after the outage")
    finally:
        stop(server)
        gate.close()
    assert_stored_once(context, {"pgdown": burst}, warmed)
    assert "journal shipper: OperationalError" in (tmp_path / "serve.log").read_text()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 128 KiB tmpfs for the journal (mounting needs root; else the drill is skipped)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k,mode=0700", "tmpfs",
                              str(folder)], capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield folder / "journal"
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_the_journal_disk_full_hits_take_the_synchronous_way(journal_stack, tmp_path,
                                                              tiny_disk, monkeypatch):  # fmt: skip
    context, env, token, _ = journal_stack
    env = env | {"KINDLY_JOURNAL": str(tiny_disk), "KINDLY_JOURNAL_SHIPPER": "off"}
    log = tmp_path / "serve.log"
    server, port = serve(env, log)
    try:
        warmed = warm(port, token)
        burst = hammer([port], token, "full", 2000)  # ~700 KB of records: 5x the disk
        assert burst.failed == 0
    finally:
        stop(server)
    assert "No space left on device" in log.read_text()
    # what went to Redis when the disk was full; the stopped server's writer held some:
    # taken over at once (its 30 s idle time is for writers that may still be alive)
    from kindly.tracking import eventbuffer

    monkeypatch.setattr(eventbuffer, "CLAIM_IDLE_MS", 0)
    context.event_buffer.flush_all(context.db)
    ship_once(env, tiny_disk)
    assert_stored_once(context, {"full": burst}, warmed)
    assert segments(tiny_disk) == []


def test_two_servers_sharing_a_journal_folder_after_a_restart_store_each_hit_once(
    journal_stack, tmp_path
):
    context, env, token, folder = journal_stack
    first, port = serve(env | {"KINDLY_JOURNAL_SHIPPER": "off"}, tmp_path / "first.log")
    try:
        warmed = warm(port, token)
        before = hammer([port], token, "before", 1000)
    finally:
        stop(first, signal.SIGKILL)  # the whole server dies: its segments stay unshipped
    assert lag(folder).unshipped_records >= len(before.beacons_answered)
    # two servers on the same folder, each with its shipper thread, and a shipper process
    second, port2 = serve(env, tmp_path / "second.log")
    third, port3 = serve(env, tmp_path / "third.log")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | env
    extra = subprocess.Popen(
        [sys.executable, "-m", "kindly", "events", "ship", "--folder", str(folder)],
        env=clean, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        warmed += warm(port2, token) + warm(port3, token)
        after = hammer([port2, port3], token, "after", 2000)
        assert after.failed == 0
        wait_for(lambda: lag(folder).unshipped_records == 0, 90, "the shippers to catch up")
    finally:
        for process in (second, third, extra):
            stop(process)
    assert_stored_once(context, {"before": before, "after": after}, warmed)
    ship_once(env, folder)
    assert segments(folder) == []
