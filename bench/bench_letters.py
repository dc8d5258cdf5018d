"""Letters per second: a fresh `weasyprint` process per letter against warm workers."""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from renderer.view import DebtorView
from tests.support.views import english_view, make_view

NAIVE_LETTERS = 4  # each costs a process start and a WeasyPrint import
WARM_LETTERS = 60  # per measurement
BATCH_SIZE = 30
LETTER = dict(
    payee_name="Stadtwerke Beispielstadt GmbH",
    iban="DE89370400440532013000",
    bic="COBADEFFXXX",
    creditor_address=("Am Markt 1", "12345 Beispielstadt"),
    contact="030 1234567",
)


def sample_views(count: int) -> list[DebtorView]:
    """Distinct one-page letters (their own reference and QR codes), German and English."""
    views = []
    for i in range(count):
        base = make_view(**LETTER) if i % 3 else english_view()
        token = f"BenchToken{i:022d}"
        views.append(
            replace(base, reference=f"K-2026-{i:06d}", site_url=f"https://pay.example/s/{token}",
                    short_url=f"pay.example/s/{token}",
                    letter_url=f"https://pay.example/c/{token}?c=letter")
        )  # fmt: skip
    return views


def _quiet() -> None:
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)


def _peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


_renderer = None


def _warm() -> None:
    """Pool initialiser: warmed as `kindly worker render` warms (a sample letter, gc.freeze)."""
    global _renderer
    _quiet()
    from renderer.letter import default_renderer
    from workers import queues
    from workers.worker import preload

    preload([queues.RENDER])
    _renderer = default_renderer()
    _renderer.render(make_view(**LETTER))


def _render_one(view: DebtorView) -> int:
    return len(_renderer.render(view))


def _render_batch(views: list[DebtorView]) -> int:
    pdf, _ = _renderer.render_batch(views, pad_to=2)
    return len(pdf)


def _worker_peak(_: object) -> float:
    time.sleep(0.2)  # so that each worker answers once
    return _peak_mb(resource.RUSAGE_SELF)


def naive(views: list[DebtorView]) -> float:
    """Seconds per letter with one `weasyprint` command per letter, as a script would do it."""
    _warm()
    weasyprint = Path(sys.executable).with_name("weasyprint")
    with tempfile.TemporaryDirectory() as folder:
        sheet = Path(folder) / "letter.css"
        from renderer.letter import _FONT_FACES, LETTER_TEMPLATES

        sheet.write_text(_FONT_FACES + (LETTER_TEMPLATES / "letter.css").read_text("utf-8"))
        started = time.perf_counter()
        for i, view in enumerate(views):
            html = Path(folder) / f"{i}.html"
            html.write_text(_renderer.html(view), encoding="utf-8")
            subprocess.run([str(weasyprint), "-q", "-s", str(sheet), "-u",
                            LETTER_TEMPLATES.as_uri() + "/", str(html), str(html) + ".pdf"],
                           check=True)  # fmt: skip
        return (time.perf_counter() - started) / len(views)


def warm_single(views: list[DebtorView]) -> float:
    """Seconds per letter in this (warm) process, one PDF per letter."""
    started = time.perf_counter()
    for view in views:
        _render_one(view)
    return (time.perf_counter() - started) / len(views)


def warm_batch_single(views: list[DebtorView]) -> float:
    """Seconds per letter in this process, letters joined into print batches."""
    started = time.perf_counter()
    for i in range(0, len(views), BATCH_SIZE):
        _render_batch(views[i : i + BATCH_SIZE])
    return (time.perf_counter() - started) / len(views)


def pooled(views: list[DebtorView], *, batches: bool) -> tuple[float, list[float]]:
    """Seconds per letter with two warm worker processes, and each worker's peak memory."""
    context = multiprocessing.get_context("spawn")  # a worker as `kindly worker` starts it
    with context.Pool(2, initializer=_warm) as pool:
        pool.map(_worker_peak, range(2), chunksize=1)  # both warm before the clock starts
        started = time.perf_counter()
        if batches:
            parts = [views[i : i + BATCH_SIZE] for i in range(0, len(views), BATCH_SIZE)]
            pool.map(_render_batch, parts, chunksize=1)
        else:
            pool.map(_render_one, views, chunksize=4)
        seconds = (time.perf_counter() - started) / len(views)
        peaks = pool.map(_worker_peak, range(2), chunksize=1)
    return seconds, peaks


def run() -> str:
    """The Markdown section for BENCHMARKS.md."""
    _quiet()
    views = sample_views(WARM_LETTERS)
    base = naive(sample_views(NAIVE_LETTERS))
    single = warm_single(views)
    batch_single = warm_batch_single(views)
    self_peak = _peak_mb(resource.RUSAGE_SELF)
    pool_one, peaks_one = pooled(views, batches=False)
    pool_batch, peaks_batch = pooled(views, batches=True)
    rows = [
        ("naive: fresh `weasyprint` process per letter", base, "1 process", "—"),
        ("warm process, one PDF per letter", single, "1 core", f"{self_peak:.0f}"),
        ("warm process, print batches of 30", batch_single, "1 core", f"{self_peak:.0f}"),
        ("2 warm workers, one PDF per letter", pool_one, "2 cores",
         " / ".join(f"{p:.0f}" for p in peaks_one)),
        ("2 warm workers, print batches of 30", pool_batch, "2 cores",
         " / ".join(f"{p:.0f}" for p in peaks_batch)),
    ]  # fmt: skip
    lines = [
        "## Letters (WeasyPrint PDF, DIN 5008 with two QR codes)",
        "",
        f"{WARM_LETTERS} distinct one-page letters (German with GiroCode, English without); the "
        f"naive baseline renders {NAIVE_LETTERS} letters, one `weasyprint` command each, in the "
        "same run. Goal: 25 letters/s on 2 cores, under 400 MB peak per worker.",
        "",
        "| how | ms per letter | letters/s | × naive | cores | peak RSS MB per worker |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, seconds, cores, peak in rows:
        lines.append(
            f"| {name} | {seconds * 1000:.0f} | {1 / seconds:.1f} | {base / seconds:.1f} "
            f"| {cores} | {peak} |"
        )
    lines.append("")
    load = os.getloadavg()[0]
    lines.append(f"CPU count: {os.cpu_count()}; load average at the end: {load:.2f} (other work")
    lines.append("on the machine slows every row alike).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
