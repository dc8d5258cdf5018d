"""Several hosts on one machine: Linux network namespaces joined by veth links.

A "services" namespace holds a bridge (the private network) and runs PostgreSQL, Redis, the
S3 endpoint and an SMTP server; every other host is a namespace with one veth link, whose
far end is a port of that bridge. A host has no other route: not to the machine's own
services (the shared PostgreSQL and Redis on 127.0.0.1 are another namespace's loopback),
not to the internet. The test process itself reaches the services over a link of its own
(`operator` addresses), which no other host can use (the services host forwards nothing).
Cutting a host's link is `ip link set PORT down` on the bridge's side: the cable pulled.

Needs root (CAP_NET_ADMIN); `unavailable()` says why not, for a clear skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

BRIDGE_NET = "10.231.{n}"
"""The private network's /24 (the services host is .1)."""
OPERATOR_NET = "10.230.{n}"
"""The test process's own point-to-point link to the services host (.1 there, .2 here)."""


def unavailable() -> str | None:
    """Why this machine can't build namespaces here, or None when it can."""
    if not shutil.which("ip"):
        return "iproute2 (`ip`) is not installed"
    probe = f"kprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` is not allowed here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _free_subnet() -> int:
    """A third octet neither 10.230.n nor 10.231.n of which is routed here yet."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    start = os.getpid() % 200
    for offset in range(200):
        n = 20 + (start + offset) % 200
        if f"10.231.{n}." not in routes and f"10.230.{n}." not in routes:
            return n
    raise RuntimeError("no free 10.231.x.0/24 for the drill's network")


@dataclass
class Network:
    """A services host and client hosts on a bridge; everything goes with `close()`."""

    tag: str = field(default_factory=lambda: f"k{os.getpid() % 100000}")
    n: int = field(default_factory=_free_subnet)
    hosts: dict[str, str] = field(default_factory=dict)  # name -> address
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def services(self) -> str:
        """The services host's address on the private network."""
        return f"{BRIDGE_NET.format(n=self.n)}.1"

    @property
    def operator(self) -> str:
        """The services host's address as the test process reaches it."""
        return f"{OPERATOR_NET.format(n=self.n)}.1"

    def namespace(self, host: str) -> str:
        """The namespace of a host ("svc" is the services host)."""
        return f"{self.tag}-{host}"

    def create(self) -> None:
        """The services host with its bridge, and the test process's link to it."""
        svc = self.namespace("svc")
        _ip("netns", "add", svc)
        _ip("-n", svc, "link", "set", "lo", "up")
        _ip("-n", svc, "link", "add", "br0", "type", "bridge")
        _ip("-n", svc, "addr", "add", f"{self.services}/24", "dev", "br0")
        _ip("-n", svc, "link", "set", "br0", "up")
        here = f"{self.tag}-op"
        _ip("link", "add", here, "type", "veth", "peer", "name", "op0", "netns", svc)
        _ip("addr", "add", f"{OPERATOR_NET.format(n=self.n)}.2/30", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", svc, "addr", "add", f"{self.operator}/30", "dev", "op0")
        _ip("-n", svc, "link", "set", "op0", "up")

    def add_host(self, name: str, last_octet: int) -> str:
        """A host with one link into the private network; returns its address."""
        ns, svc = self.namespace(name), self.namespace("svc")
        address = f"{BRIDGE_NET.format(n=self.n)}.{last_octet}"
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", f"{self.tag}-{name}", "netns", ns, "type", "veth",
            "peer", "name", self.port(name), "netns", svc)  # fmt: skip
        _ip("-n", ns, "link", "set", f"{self.tag}-{name}", "name", "eth0")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", svc, "link", "set", self.port(name), "master", "br0")
        _ip("-n", svc, "link", "set", self.port(name), "up")
        self.hosts[name] = address
        return address

    @staticmethod
    def port(host: str) -> str:
        """The bridge port a host's cable is plugged into (in the services host)."""
        return f"port-{host}"

    def cut(self, host: str) -> None:
        """Pull the host's cable: its packets go nowhere, its connections hang."""
        _ip("-n", self.namespace("svc"), "link", "set", self.port(host), "down")

    def mend(self, host: str) -> None:
        """Plug the cable back in."""
        _ip("-n", self.namespace("svc"), "link", "set", self.port(host), "up")

    def routes(self, host: str) -> list[str]:
        """The host's IPv4 routes, one line each."""
        out = subprocess.run(["ip", "-n", self.namespace(host), "-4", "route"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        return [line.strip() for line in out.splitlines() if line.strip()]

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """`argv` run on that host."""
        return ["ip", "netns", "exec", self.namespace(host), *argv]

    def spawn(self, host: str, argv: Sequence[str], *, env: dict[str, str] | None = None,
              cwd: Path | None = None, log: Path | None = None) -> subprocess.Popen:  # fmt: skip
        """Start a long-running process on a host, in its own process group, killed on close."""
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        process = subprocess.Popen(
            self.command(host, argv), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        if log:
            out.close()
        self.processes.append(process)
        return process

    def run(self, host: str, argv: Sequence[str], *, timeout: float, **kwargs):
        """Run a command on a host to its end (bounded), its output captured."""
        return subprocess.run(self.command(host, argv), capture_output=True, text=True,
                              timeout=timeout, **kwargs)  # fmt: skip

    def close(self) -> None:
        """Kill every process started here, then remove the namespaces (and so every link)."""
        for process in reversed(self.processes):
            stop_group(process, signal.SIGKILL)
        for host in [*self.hosts, "svc"]:
            subprocess.run(["ip", "netns", "del", self.namespace(host)], capture_output=True)
        with contextlib.suppress(Exception):
            _ip("link", "del", f"{self.tag}-op")  # gone with its peer already, as a rule


def stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 30) -> None:
    """Signal a process group and wait (bounded) for its leader to end."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def connects(network: Network, host: str, address: str, port: int, timeout: float = 2) -> bool:
    """Whether a TCP connection from `host` to address:port is accepted."""
    probe = (
        "import socket,sys\n"
        "try:\n"
        f"    socket.create_connection(({address!r}, {port}), timeout={timeout}).close()\n"
        "except OSError:\n"
        "    sys.exit(1)\n"
    )
    import sys

    result = network.run(host, [sys.executable, "-c", probe], timeout=timeout + 10)
    return result.returncode == 0


def wait_until(condition, seconds: float, what: str, every: float = 0.1) -> float:
    """Poll until `condition()` is true; the seconds it took; fail after `seconds`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - started
