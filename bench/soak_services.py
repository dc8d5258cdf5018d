"""The soak's own services: a PostgreSQL cluster, a redis-server and moto's S3 server, each in
a temporary folder on a free loopback port, which the soak's drill may stop, kill and restart.

The machine's shared PostgreSQL (5432) and Redis (6379) are never touched: other people's
tests use them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port: int, seconds: float, what: str) -> None:
    """Poll until the port accepts connections; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not port_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on port {port} within {seconds:.0f} s")
        time.sleep(0.05)


def rss_kib(pid: int) -> int | None:
    """A process's resident set size in KiB (None: it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    """The direct children of a process (from /proc)."""
    found = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            found += [int(p) for p in Path(task).read_text().split()]
        except OSError:
            continue
    return found


class OwnPostgres:
    """A PostgreSQL cluster of the soak's own (initdb into a temporary folder, its own port).

    PostgreSQL refuses to run as root: as root its tools run as the `postgres` user.
    """

    def __init__(self, folder: Path):
        versions = sorted(
            glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4])
        )
        if not versions:
            raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(versions[-1])
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Kindly is configured with."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/kindly"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, cwd="/")

    def create(self) -> None:
        """initdb, start, and an empty database `kindly`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._as:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip
        self.start()
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "postgres", "kindly")  # fmt: skip

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
                   "-c max_connections=200")  # fmt: skip
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.folder / "postgres.log"), "-w", "-t", "60", "-o", options, "start")  # fmt: skip
        wait_port(self.port, 30, "PostgreSQL")

    def stop(self) -> None:
        """Stop the cluster (fast: open sessions are cut, as when a server goes away)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def pids(self) -> list[int]:
        """The postmaster and its children, while running."""
        try:
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [postmaster, *children(postmaster)]

    def destroy(self) -> None:
        """Stop (if running) and delete the cluster."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "stop")  # fmt: skip
        shutil.rmtree(self.folder, ignore_errors=True)


class OwnRedis:
    """A redis-server of the soak's own on a free port, with or without its append-only file."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.aof = True

    @property
    def url(self) -> str:
        """The URL Kindly is configured with."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, aof: bool = True) -> None:
        """Start on the same port and folder; `aof`: append-only, as compose.yaml runs it;
        without it the data lives in the RDB snapshot a graceful shutdown writes."""
        self.aof = aof
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(self.folder), "--appendonly", "yes" if aof else "no",
             "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(self.port, 15, "redis-server")
        # listening is not loading: wait until the data set is back
        from redis import Redis

        client = Redis(port=self.port, socket_timeout=5)
        deadline = time.monotonic() + 30
        while client.info("persistence").get("loading") == 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        """SIGKILL: the server dies without a chance to save anything more."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def shutdown_saving(self) -> None:
        """A graceful restart's first half: SHUTDOWN SAVE writes the RDB snapshot, then exits."""
        from redis import Redis
        from redis.exceptions import ConnectionError as RedisConnectionError

        client = Redis(port=self.port, socket_timeout=30)
        with contextlib.suppress(RedisConnectionError):  # the server hangs up as it exits
            client.shutdown(save=True)
        if self.process is not None:
            self.process.wait(timeout=30)

    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return (
            self.process.pid if self.process is not None and self.process.poll() is None else None
        )


class MotoServer:
    """moto's standalone S3 server in a process of its own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port, 60, "moto's S3 server")

    @property
    def url(self) -> str:
        """The S3 endpoint."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """End the server."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


class JournalDisk:
    """A small filesystem of its own for the event journal (tmpfs, so filling it fills no
    one else's disk); needs root to mount. `fill()` takes every free byte, `release()` gives
    them back."""

    def __init__(self, folder: Path, size_mib: int = 64):
        self.folder = folder
        self.size_mib = size_mib
        self.mounted = False
        self._filler = folder / ".soak-filler"

    def mount(self) -> None:
        """Mount a tmpfs of `size_mib` MiB on the folder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mib}m,mode=0777",
                        "tmpfs", str(self.folder)], check=True, capture_output=True)  # fmt: skip
        self.mounted = True

    def fill(self) -> int:
        """Write until the disk is full (ENOSPC); the bytes written."""
        written = 0
        chunk = b"\0" * (1 << 20)
        with self._filler.open("wb", buffering=0) as handle:
            try:
                while written < self.size_mib << 21:  # bounded: twice the disk's size
                    written += handle.write(chunk)
            except OSError:
                pass
        return written

    def release(self) -> None:
        """Delete the filler: the disk has room again."""
        self._filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        """Unmount (lazily: a process may still hold a file open)."""
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.folder)], check=False, capture_output=True)
            self.mounted = False
