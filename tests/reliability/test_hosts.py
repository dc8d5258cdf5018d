"""Workers on other hosts: the web process and two workers, each a network namespace of its
own, reach PostgreSQL, Redis, the S3 endpoint and the SMTP server over their veth links
only (tests/support/hosts.py). A campaign is rendered and sent through the two workers; one
worker's cable is pulled while it holds a send job, and the other worker finishes that job:
every debtor gets exactly one message, in the SMTP server's mailbox and in the database,
also after the cut-off worker comes back and completes its stale copy of the job."""

from __future__ import annotations

import mailbox
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from email.utils import parseaddr
from pathlib import Path

import pytest
from sqlalchemy import select, text

from kindly import context as context_module
from kindly.campaigns.models import Campaign, Debtor
from kindly.context import Context
from kindly.messaging.models import Send
from kindly.rules.store import save_rules
from kindly.rules.validate import parse_rules
from kindly.site.models import Artifact
from kindly.tracking.models import Event
from tests.reliability.conftest import ROOT
from tests.support import hosts
from tests.support.app import launched, load_campaign, make_settings
from tests.support.hosts import Network, connects, stop_group, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AT = "2026-12-01T10:00:00+00:00"  # 11:00 in Berlin on a Tuesday: inside every send window
DEBTORS = 8
PORTFOLIO = "reference,last_name,email,locale,currency,amount_due,due_date,creditor\n" + "".join(
    f"H-{i:02d},Muster{i},h{i:02d}@example.org,de-DE,EUR,{100 + i}.00,2026-12-15,Stadtwerke\n"
    for i in range(DEBTORS)
)
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
WEB, WORKER_A, WORKER_B = "web", "wa", "wb"
SECRET = "hosts-drill-secret-key-0123456789"
EVERY = "0.0.0.0"  # noqa: S104 - on the services host: its bridge and the operator's link only


def _python_on_host(network: Network, host: str, code: str, timeout: float = 30):
    return network.run(host, [sys.executable, "-c", code], timeout=timeout, cwd=ROOT)


class Services:
    """PostgreSQL, Redis, moto's S3 server and an SMTP server on the services host."""

    def __init__(self, network: Network, folder: Path):
        self.network = network
        self.folder = folder
        self.maildir = folder / "maildir"
        # PostgreSQL refuses to run as root: its folder belongs to the postgres user
        self.pg_dir = Path(tempfile.mkdtemp(prefix="kindly-hosts-pg-"))
        self.postgres: subprocess.Popen | None = None

    def url(self, address: str) -> dict[str, str]:
        """The Kindly settings that name the services at `address`."""
        return {
            "KINDLY_DATABASE_URL": f"postgresql+psycopg://kindly@{address}:5432/kindly",
            "KINDLY_REDIS_URL": f"redis://{address}:6379/0",
            "KINDLY_STORAGE_URL": "s3://kindly-hosts/drill",
            "KINDLY_S3_ENDPOINT_URL": f"http://{address}:5000",
            "KINDLY_SMTP_URL": f"smtp+insecure://{address}:2525",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self) -> None:
        """Start every service, listening on the services host's addresses only."""
        bin_dir = PG_BIN[-1].parent
        as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        os.chown(self.pg_dir, *_postgres_ids())
        data = self.pg_dir / "data"
        subprocess.run(
            [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "kindly", "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        with open(data / "pg_hba.conf", "a") as hba:  # the private network, no passwords
            hba.write(f"host all kindly 10.230.{self.network.n}.0/30 trust\n"
                      f"host all kindly 10.231.{self.network.n}.0/24 trust\n")  # fmt: skip
        net, log = self.network, self.folder
        self.postgres = net.spawn("svc", [
            *as_postgres, str(bin_dir / "postgres"), "-D", str(data), "-c", "listen_addresses=*",
            "-c", "port=5432", "-c", f"unix_socket_directories={self.pg_dir}", "-c", "fsync=off",
            "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
        ], log=log / "postgres.log")  # fmt: skip
        net.spawn("svc", ["redis-server", "--bind", EVERY, "--port", "6379", "--save", "",
                          "--appendonly", "no", "--protected-mode", "no", "--dir", str(log)],
                  log=log / "redis.log")  # fmt: skip
        net.spawn("svc", [sys.executable, "-m", "moto.server", "-H", EVERY, "-p", "5000"],
                  log=log / "moto.log")  # fmt: skip
        net.spawn("svc", [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{EVERY}:2525", "-c",
                          "aiosmtpd.handlers.Mailbox", str(self.maildir)],
                  log=log / "smtp.log")  # fmt: skip
        for port, what in ((5432, "PostgreSQL"), (6379, "Redis"), (5000, "S3"), (2525, "SMTP")):
            wait_until(lambda port=port: _open(net.operator, port), 60, f"{what} to listen")
        import psycopg

        with psycopg.connect(f"postgresql://kindly@{net.operator}:5432/postgres",
                             autocommit=True) as conn:  # fmt: skip
            conn.execute("CREATE DATABASE kindly")

    def received(self) -> Counter:
        """How many messages the SMTP server took for each recipient."""
        if not self.maildir.exists():
            return Counter()
        return Counter(
            parseaddr(message["To"])[1] for message in mailbox.Maildir(self.maildir, create=False)
        )

    def close(self) -> None:
        """Stop PostgreSQL politely (the rest dies with the network), remove its folder."""
        if self.postgres is not None:
            stop_group(self.postgres, signal.SIGINT)  # fast shutdown: ends open sessions
        import shutil

        shutil.rmtree(self.pg_dir, ignore_errors=True)


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _open(address: str, port: int) -> bool:
    from tests.support.services import port_open

    return port_open(address, port)


@pytest.fixture
def network() -> Network:
    """The private network and its hosts, removed (with every process on them) afterwards."""
    why = hosts.unavailable()
    if why:
        pytest.skip(f"network namespaces are not available: {why}")
    if not PG_BIN:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    for tool in ("redis-server", "setpriv"):
        if not __import__("shutil").which(tool):
            pytest.skip(f"{tool} is not installed")
    net = Network()
    try:
        net.create()
        net.add_host(WEB, 10)
        net.add_host(WORKER_A, 21)
        net.add_host(WORKER_B, 22)
        yield net
    finally:
        net.close()


@pytest.fixture
def services(network, tmp_path) -> Services:
    """The services host's servers, stopped afterwards."""
    folder = tmp_path / "services"
    folder.mkdir()
    running = Services(network, folder)
    try:
        running.start()
        yield running
    finally:
        running.close()


def host_env(services: Services, tmp_path: Path, host: str) -> dict[str, str]:
    """A host's environment: its own data folder, the services at their private address."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KINDLY_", "AWS_"))}
    return (
        clean
        | services.url(services.network.services)
        | {
            "KINDLY_DATA_DIR": str(tmp_path / host),
            "KINDLY_SECRET_KEY": SECRET,
            "KINDLY_BASE_URL": "https://pay.example.org",
            "PYTHONPATH": str(ROOT),
        }
    )


@pytest.fixture
def operator(services, tmp_path):
    """The test's own view of the installation, over its own link: migrated, with a live
    campaign that sends email."""
    env = services.url(services.network.operator)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        os.environ.setdefault(key, env[key])
    settings = make_settings(tmp_path / "operator", KINDLY_SECRET_KEY=SECRET,
                             KINDLY_BASE_URL="https://pay.example.org",
                             **{k: v for k, v in env.items() if k.startswith("KINDLY_")})  # fmt: skip
    context = Context(settings)
    context.db.migrate()
    context.storage.ensure()
    context_module.use(context)
    load_campaign(context, slug="spring", text=PORTFOLIO)
    launched(context, "spring")
    with context.db.session() as session:
        campaign = session.scalar(select(Campaign))
        save_rules(session, campaign, parse_rules({"defaults": {"channels": ["email"]}}))
    yield context
    context_module.use(None)
    context.close()


def start_worker(network: Network, env: dict, tmp_path: Path, host: str) -> subprocess.Popen:
    """`kindly worker render send default` on a host."""
    return network.spawn(host, [sys.executable, "-m", "kindly", "worker", "render", "send",
                                "default"], env=env, cwd=ROOT, log=tmp_path / f"{host}.log")  # fmt: skip


def worker_names(redis, processes: dict[str, subprocess.Popen]) -> dict[str, str]:
    """Host -> RQ worker name, found by process id (`ip netns exec` becomes the worker)."""
    from rq import Worker

    pids = {process.pid: host for host, process in processes.items()}
    return {pids[w.pid]: w.name for w in Worker.all(connection=redis) if w.pid in pids}


def started(redis, queue_name: str) -> dict[str, str]:
    """Worker name -> the job it has taken, for the queue's started jobs."""
    from rq import Queue
    from rq.executions import Execution
    from rq.registry import StartedJobRegistry

    registry = StartedJobRegistry(queue=Queue(queue_name, connection=redis))
    out = {}
    for job_id, execution_id in registry.get_job_and_execution_ids():
        try:
            out[Execution.fetch(execution_id, job_id, connection=redis).worker_name] = job_id
        except ValueError:
            continue
    return out


def idle(redis, worker_name: str) -> bool:
    """Whether the worker holds no job (it ended the one it had, well or not)."""
    from rq import Worker

    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + worker_name,
                                connection=redis)  # fmt: skip
    return worker is not None and worker.get_current_job_id() is None


def sends(context: Context) -> dict[str, tuple[str, int, int]]:
    """Reference -> (send status, attempts, `sent` events) for every send row."""
    with context.db.session() as session:
        events = Counter(session.scalars(select(Event.debtor_id).where(Event.type == "sent")))
        return {
            reference: (status, attempts, events[debtor_id])
            for reference, debtor_id, status, attempts in session.execute(
                select(Debtor.reference, Debtor.id, Send.status, Send.attempts).join(
                    Send, Send.debtor_id == Debtor.id
                )
            )
        }


def test_hosts_reach_the_services_over_their_links_only(network, services):
    """Each host has one route, the private network's, and none to this machine's services."""
    machine = [
        line.split()[3].split("/")[0]
        for line in subprocess.run(
            ["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        if " lo " not in line and "10.230." not in line
    ]
    for host in (WEB, WORKER_A, WORKER_B):
        assert network.routes(host) == [
            f"10.231.{network.n}.0/24 dev eth0 proto kernel scope link src {network.hosts[host]}"
        ]
        # the shared PostgreSQL and Redis listen on the machine's 127.0.0.1: on a host that
        # is its own loopback, where nothing listens
        assert not connects(network, host, "127.0.0.1", 5432)
        assert not connects(network, host, "127.0.0.1", 6379)
        for address in [*machine, f"10.230.{network.n}.2"]:
            assert not connects(network, host, address, 5432), address
        assert connects(network, host, network.services, 5432)
        assert connects(network, host, network.services, 6379)
    # the services host forwards nothing: the operator's link is not a way out
    assert not connects(network, WORKER_A, network.operator, 5432)


def test_a_worker_cut_off_mid_job_is_replaced_and_every_message_goes_once(
    network, services, operator, tmp_path
):
    from redis import Redis
    from rq import Queue
    from rq.job import Job
    from rq.registry import FinishedJobRegistry

    from workers import reaper

    envs = {host: host_env(services, tmp_path, host) for host in (WEB, WORKER_A, WORKER_B)}
    web = network.spawn(WEB, [sys.executable, "-m", "kindly", "serve", "--host",
                              network.hosts[WEB], "--port", "8000", "--workers", "1"],
                        env=envs[WEB], cwd=ROOT, log=tmp_path / "web.log")  # fmt: skip
    workers = {h: start_worker(network, envs[h], tmp_path, h) for h in (WORKER_A, WORKER_B)}
    redis = Redis.from_url(operator.settings.redis_url)
    wait_until(lambda: len(worker_names(redis, workers)) == 2, 60, "both workers to register")
    names = worker_names(redis, workers)
    wait_until(lambda: _open_from(network, "svc", network.hosts[WEB], 8000), 60,
               "the web process to listen")  # fmt: skip

    # Render: the web host queues, the two worker hosts render into S3 over their links.
    rendered = network.run(WEB, [sys.executable, "-m", "kindly", "render", "spring", "--kinds",
                                 "site,letter"], env=envs[WEB], cwd=ROOT, timeout=300)  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    with operator.db.session() as session:
        kinds = Counter(session.scalars(select(Artifact.kind)))
        token = session.scalar(select(Debtor.token).order_by(Debtor.id))
    assert kinds["site"] == DEBTORS and kinds["letter"] == DEBTORS
    finished = FinishedJobRegistry(queue=Queue("render", connection=redis)).get_job_ids()
    by = Counter(Job.fetch(job_id, connection=redis).worker_name for job_id in finished)
    assert sum(by.values()) == DEBTORS and set(by) <= set(names.values())
    # A debtor's page, asked of the web host by a visitor on the network, comes from S3.
    page = _python_on_host(network, "svc", (
        "import urllib.request\n"
        f"r = urllib.request.urlopen('http://{network.hosts[WEB]}:8000/s/{token}', timeout=20)\n"
        "print(r.status); print(r.read().decode())"
    ))  # fmt: skip
    assert page.returncode == 0, page.stderr[-2000:]
    assert page.stdout.startswith("200") and 'data-cta="pay"' in page.stdout

    # Send: both workers wait on the database with a send job in hand; then A's cable is
    # pulled. Pausing them while `kindly send` queues keeps either from racing through the
    # queue first; the lock on the decisions (read before a send is claimed) holds each
    # worker's first job before anything is claimed or sent.
    for process in workers.values():
        os.killpg(process.pid, signal.SIGSTOP)
    try:
        queued = network.run(WEB, [sys.executable, "-m", "kindly", "send", "spring", "--at", AT],
                             env=envs[WEB], cwd=ROOT, timeout=120)  # fmt: skip
        assert queued.returncode == 0, queued.stderr[-2000:]
        lock = operator.db.engine.connect()
        lock.execute(text("LOCK TABLE decision IN ACCESS EXCLUSIVE MODE"))
    finally:
        for process in workers.values():
            os.killpg(process.pid, signal.SIGCONT)
    try:
        wait_until(lambda: set(started(redis, "send")) == set(names.values()), 30,
                   "each worker to take a send job")  # fmt: skip
        held_by_a = started(redis, "send")[names[WORKER_A]]
        network.cut(WORKER_A)
        cut_at = time.monotonic()
    finally:
        lock.rollback()  # the lock goes: B's job goes on, A's waits on a cable that's gone
        lock.close()

    wait_until(lambda: sum(services.received().values()) >= DEBTORS
               and len(sends(operator)) == DEBTORS
               and all(s == "sent" for s, _, _ in sends(operator).values()),
               150, "every debtor's message")  # fmt: skip
    recovered = time.monotonic() - cut_at
    job = Job.fetch(held_by_a, connection=redis)
    assert job.get_status() == "finished"
    assert job.worker_name == names[WORKER_B]  # finished by the other worker
    assert job.retries_left == 2  # one retry used: the reaper's
    assert recovered < reaper.LIVE_SECONDS + 2 * reaper.BEAT_SECONDS + 30

    # A comes back: its stale copy of the job finds the message sent and sends nothing.
    network.mend(WORKER_A)
    wait_until(lambda: redis.exists(reaper.alive_key(names[WORKER_A])), 90, "A to beat again")
    wait_until(lambda: idle(redis, names[WORKER_A]), 200, "A to end its stale job")
    time.sleep(1)  # A has no job left in hand; any message it sent has arrived by now

    expected = {f"h{i:02d}@example.org": 1 for i in range(DEBTORS)}
    assert services.received() == expected
    # every send claimed once (A never got as far as the claim), sent once, one `sent` event
    assert sends(operator) == {f"H-{i:02d}": ("sent", 1, 1) for i in range(DEBTORS)}
    redis.close()
    stop_group(web)
    for process in workers.values():
        stop_group(process)


def _open_from(network: Network, host: str, address: str, port: int) -> bool:
    return connects(network, host, address, port, timeout=1)
