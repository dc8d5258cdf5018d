"""Real services for integration tests: use what runs, start what is missing, fail clearly."""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
import time


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections there."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return True
        time.sleep(0.2)
    return False


def ensure_postgres() -> None:
    """PostgreSQL on 127.0.0.1:5432, started with the cluster tools when it is down."""
    if port_open("127.0.0.1", 5432):
        return
    versions = sorted(glob.glob("/etc/postgresql/*"))
    if versions and shutil.which("pg_ctlcluster"):
        version = versions[-1].rsplit("/", 1)[-1]
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            capture_output=True,
        )
    if not _wait("127.0.0.1", 5432, 30):
        raise RuntimeError(
            "PostgreSQL is not running on 127.0.0.1:5432 and could not be started "
            "(install postgresql, or start it: pg_ctlcluster <version> main start)"
        )


def ensure_redis() -> None:
    """Redis on 127.0.0.1:6379, started without persistence when it is down."""
    if port_open("127.0.0.1", 6379):
        return
    if shutil.which("redis-server"):
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
             "--save", "", "--appendonly", "no"],
            check=False,
            capture_output=True,
        )  # fmt: skip
    if not _wait("127.0.0.1", 6379, 15):
        raise RuntimeError(
            "Redis is not running on 127.0.0.1:6379 and could not be started "
            "(install redis-server, or start it: redis-server --daemonize yes)"
        )
