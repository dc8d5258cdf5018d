"""Fixtures and helpers the reliability drills share: real services, real worker processes,
and services of the drills' own that they may stop and start (never the shared ones)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kindly.context import Context
from tests.integration.conftest import PHONE, buffered
from tests.support import logscan, services
from tests.support.app import installed, make_settings

__all__ = ["DOWN", "PHONE", "ROOT", "buffered", "start_worker", "stop", "wait_for"]

ROOT = Path(__file__).resolve().parents[2]
DOWN = "postgresql+psycopg://nobody@127.0.0.1:1/none"
"""A database URL nobody answers on: PostgreSQL down, without touching the shared server."""


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> float:
    """Poll until `condition()` is true; return the seconds it took, fail after `seconds`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def start_worker(env: dict[str, str], *queues: str) -> subprocess.Popen:
    """`kindly worker QUEUE…` in its own process group (the horse it forks dies with it)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | env
    with logscan.process_log("worker") as log:  # its log is scanned for personal data
        return subprocess.Popen(
            [sys.executable, "-m", "kindly", "worker", *queues],
            env=clean,
            cwd=ROOT,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal the process group and wait for the process to end."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(timeout=30)


@pytest.fixture
def stack_env(tmp_path, postgres_url, redis_url) -> dict[str, str]:
    """The environment of a production-like process: PostgreSQL, Redis, a local folder."""
    return {
        "KINDLY_DATA_DIR": str(tmp_path / "var"),
        "KINDLY_SECRET_KEY": "survival-secret-key-0123456789",
        "KINDLY_DATABASE_URL": postgres_url,
        "KINDLY_REDIS_URL": redis_url,
    }


@pytest.fixture
def stack(stack_env) -> Iterator[Context]:
    """A migrated context on `stack_env`, installed as the process's current one."""
    with installed(make_settings(Path(stack_env["KINDLY_DATA_DIR"]), **stack_env)) as context:
        yield context


class OwnRedis:
    """A redis-server of the drill's own on a free port, which the drill may kill and restart.

    The machine's Redis on 6379 is shared with other people's test runs: never touch it.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = services.free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The URL Kindly is configured with."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (again) on the same port and folder; append-only, as compose.yaml runs it."""
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(self.folder), "--appendonly", "yes", "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: services.port_open("127.0.0.1", self.port), 15, "redis-server to listen")

    def kill(self) -> None:
        """SIGKILL: the server dies without a chance to save anything more."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def wipe(self) -> None:
        """Lose the data on disk too (a new container without its volume)."""
        for path in self.folder.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


@pytest.fixture
def own_redis(tmp_path) -> Iterator[OwnRedis]:
    """A private redis-server, killed after the test."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = OwnRedis(folder)
    server.start()
    yield server
    server.kill()


class Gate:
    """A TCP proxy in front of a service that the drill opens and closes.

    Closed, it accepts each connection and drops it at once (as a load balancer with no
    backend does), and notes when: the drill counts the client's attempts and their spacing.
    """

    def __init__(self, target_port: int):
        import socket
        import threading

        self.target_port = target_port
        self.open = True
        self.refused: list[float] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closing = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The endpoint clients are configured with."""
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        import socket
        import struct
        import threading

        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.open:
                self.refused.append(time.monotonic())
                # SO_LINGER 0: a reset, not a polite close, like an unreachable backend
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        """Stop listening."""
        self._closing = True
        self._listener.close()


def _pipe(source, sink) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        source.close()
        sink.close()


@pytest.fixture
def s3_gate(s3_endpoint) -> Iterator[Gate]:
    """moto's S3 behind a gate the drill may close (S3 unreachable) and open again."""
    gate = Gate(int(s3_endpoint.rsplit(":", 1)[1]))
    yield gate
    gate.close()
