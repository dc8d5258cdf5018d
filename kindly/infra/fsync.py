"""The journal's fsync policy, parsed where settings are read (kindly.infra.config)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class FsyncPolicy:
    """When the journal's writes are forced to disk: always, every N ms, or never."""

    mode: str  # "always", "interval" or "never"
    interval_ms: int = 0

    def __str__(self) -> str:
        return f"{self.interval_ms}ms" if self.mode == "interval" else self.mode


def parse_fsync(text: str) -> FsyncPolicy:
    """`always`, `never`, or a period such as `100ms` or `1s`; ValueError for anything else."""
    value = text.strip().lower()
    if value in ("always", "never"):
        return FsyncPolicy(value)
    match = re.fullmatch(r"(\d+)\s*(ms|s)", value)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"fsync must be always, never or a period like 100ms or 1s, got {text!r}")
    amount = int(match.group(1)) * (1000 if match.group(2) == "s" else 1)
    if amount > 60_000:
        raise ValueError(f"fsync period must be at most 60s, got {text!r}")
    return FsyncPolicy("interval", amount)
