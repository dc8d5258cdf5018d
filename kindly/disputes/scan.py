"""The malware scan of a dispute's files: clamd's INSTREAM command when KINDLY_CLAMD_URL
names a clamd (tcp://host:3310 or unix:///path/clamd.ctl); without one, files are stored
unscanned and marked so.

The protocol (clamd(8)): send `zINSTREAM\\0`, then the file in chunks, each preceded by its
length as four bytes in network order, then a zero-length chunk; clamd answers one line
ending in NUL: `stream: OK`, `stream: <signature> FOUND`, or `... ERROR`.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from kindly.errors import ConfigError, ServiceUnavailable

CHUNK = 64 * 1024
TIMEOUT_SECONDS = 30.0
"""How long one scan may take (connect, send and wait for the verdict)."""


class ScanUnavailable(ServiceUnavailable):
    """clamd is configured but did not answer with a verdict: nothing is stored."""


@dataclass(frozen=True)
class Verdict:
    """What clamd said about one file."""

    clean: bool
    signature: str | None = None  # the malware's name when not clean


def parse_url(url: str) -> tuple[str, object]:
    """(family, address) for tcp://host:port or unix:///path; ConfigError otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "tcp" and parts.hostname:
        return "tcp", (parts.hostname, parts.port or 3310)
    if parts.scheme == "unix" and parts.path:
        return "unix", unquote(parts.path)
    raise ConfigError(f"KINDLY_CLAMD_URL must be tcp://host:port or unix:///path, got {url!r}")


def instream(url: str, data: bytes, timeout: float = TIMEOUT_SECONDS) -> Verdict:
    """Scan `data` with the clamd at `url` (INSTREAM); ScanUnavailable when it cannot."""
    family, address = parse_url(url)
    kind = socket.AF_INET if family == "tcp" else socket.AF_UNIX
    try:
        if family == "tcp":
            sock = socket.create_connection(address, timeout=timeout)  # type: ignore[arg-type]
        else:
            sock = socket.socket(kind, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(address)  # type: ignore[arg-type]
        with sock:
            sock.sendall(b"zINSTREAM\0")
            for start in range(0, len(data), CHUNK):
                chunk = data[start : start + CHUNK]
                sock.sendall(struct.pack("!L", len(chunk)) + chunk)
            sock.sendall(struct.pack("!L", 0))
            answer = b""
            while not answer.endswith(b"\0") and len(answer) < 4096:
                got = sock.recv(4096)
                if not got:
                    break
                answer += got
    except OSError as exc:
        raise ScanUnavailable(f"clamd unreachable: {type(exc).__name__}") from None
    return parse_answer(answer.rstrip(b"\0\n").decode("utf-8", "replace"))


def parse_answer(line: str) -> Verdict:
    """clamd's one-line answer as a verdict; ScanUnavailable for an error or nonsense."""
    body = line.split(":", 1)[1].strip() if ":" in line else line.strip()
    if body == "OK":
        return Verdict(clean=True)
    if body.endswith(" FOUND"):
        return Verdict(clean=False, signature=body[: -len(" FOUND")].strip()[:200])
    raise ScanUnavailable(f"clamd answered no verdict: {line[:200]!r}")
