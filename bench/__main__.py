"""`make bench`: run every bench/bench_*.py and write BENCHMARKS.md.

Each module offers `run() -> str`, a Markdown section whose figures are ratios against a
baseline measured in the same run (absolute times on a shared machine drift).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    """One line about where the figures come from."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = platform.python_version()
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {python}, {platform.system()}"


def yardstick() -> str:
    """This machine's speed right now, for comparing runs: machines of the same kind ran the
    same code 2-3x faster on some days than on others."""
    started = time.perf_counter()
    total = 0
    for step in range(10_000_000):
        total += step
    return f"a 10-million-step Python loop took {time.perf_counter() - started:.2f} s"


RE_MEASURED = "Re-measured alone since: "


def merge(document: str, sections: list[str], names: list[str], when: str) -> str:
    """The document with each new section in place of the one under the same heading (new
    headings go at the end), and a line in the header saying what was re-measured when
    (earlier such lines keep only the benchmarks not measured again)."""
    head, *old = document.split("\n## ")
    parts = {part.split("\n", 1)[0]: part for part in old}
    for section in sections:
        title = section.removeprefix("## ").split("\n", 1)[0]
        parts[title] = section.removeprefix("## ")
    lines = []
    for line in head.rstrip("\n").split("\n"):
        if line.startswith(RE_MEASURED):
            earlier, _, rest = line.removeprefix(RE_MEASURED).partition(" 20")
            kept = [name for name in earlier.split(", ") if name not in names]
            if not kept:
                continue
            line = f"{RE_MEASURED}{', '.join(kept)} 20{rest}"
        lines.append(line)
    lines.append(f"{RE_MEASURED}{', '.join(names)} {when}.")
    return (
        "\n".join(lines)
        + "\n\n"
        + "\n".join("## " + part.rstrip("\n") + "\n" for part in parts.values())
    )


def main(argv: list[str]) -> int:
    """Run the named benchmarks (default: all) and write BENCHMARKS.md."""
    names = argv or sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    sections = []
    for name in names:
        print(f"running {name} …", file=sys.stderr, flush=True)
        # each benchmark in a process of its own: memory figures and warm caches must not
        # carry over from the one before
        result = subprocess.run(
            [sys.executable, "-c", f"import bench.{name} as b; print(b.run(), end='')"],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            raise SystemExit(f"bench {name} failed")
        sections.append(result.stdout)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT, check=False).stdout.strip()  # fmt: skip
    stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC at commit {commit or '?'}"
    speed = yardstick()
    target = ROOT / "BENCHMARKS.md"
    if argv and target.exists():
        # some benchmarks only: their sections are replaced, the others kept as measured
        text = merge(target.read_text(encoding="utf-8"), sections, names, f"{stamp} ({speed})")
    else:
        text = (
            f"# Benchmarks\n\nMeasured {stamp} on {machine()} ({speed}). Each figure stands "
            "beside a baseline measured in the same run. Re-run with `make bench`.\n\n"
            + "\n".join(sections)
        )
    target.write_text(text, encoding="utf-8")
    print((ROOT / "BENCHMARKS.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
