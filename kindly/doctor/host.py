"""The doctor's checks of this host's libraries and programs: HarfBuzz's subsetter, ffmpeg."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from kindly.doctor import ERROR, OK, Finding

if TYPE_CHECKING:
    from kindly.doctor import Installation

HARFBUZZ_FIX = (
    "install HarfBuzz's subset library (Debian/Ubuntu: apt-get install libharfbuzz-subset0; "
    "Alpine: harfbuzz; Fedora: harfbuzz) and make sure no LD_LIBRARY_PATH shadows it"
)


def harfbuzz(installation: Installation) -> Finding:
    """WeasyPrint subsets fonts with libharfbuzz-subset; without it, with fontTools, 4–6× slower."""
    try:
        from weasyprint.text import ffi
    except OSError as exc:  # Pango or HarfBuzz itself is missing: no letter renders at all
        return Finding(
            "harfbuzz", ERROR, f"WeasyPrint cannot load its libraries: {exc}",
            "install Pango and HarfBuzz (Debian/Ubuntu: apt-get install libpango-1.0-0 "
            "libpangoft2-1.0-0 libharfbuzz-subset0)",
        )  # fmt: skip
    slow = "letters fall back to fontTools' subsetter, 4–6× slower"
    library = ffi.harfbuzz_subset  # loaded exactly as WeasyPrint loads it, or None
    if library is None:
        return Finding("harfbuzz", ERROR, f"no libharfbuzz-subset found: {slow}", HARFBUZZ_FIX)
    where = _loaded("libharfbuzz-subset") or "libharfbuzz-subset"
    try:
        library.hb_subset_input_create_or_fail  # noqa: B018 - resolving the symbol is the test
    except AttributeError:
        return Finding(
            "harfbuzz", ERROR, f"{where} is not HarfBuzz's subset library (no hb_subset_*)",
            HARFBUZZ_FIX,
        )  # fmt: skip
    if not ffi.harfbuzz.hb_version_atleast(4, 1, 0):
        return Finding(
            "harfbuzz", ERROR, f"HarfBuzz older than 4.1 at {where}: WeasyPrint ignores it, {slow}",
            "upgrade HarfBuzz to 4.1 or newer",
        )  # fmt: skip
    return Finding("harfbuzz", OK, f"WeasyPrint subsets fonts with {where}")


def _loaded(name: str) -> str | None:
    """The file of a shared library this process has mapped (Linux), for the report."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split(maxsplit=5)[-1]
        if Path(path).name.startswith(name):
            return path
    return None


def ffmpeg(installation: Installation) -> Finding:
    """The ffmpeg the video renderer runs, with the encoders it asks for."""
    from renderer.video.encode import AUDIO_ARGS, VIDEO_ARGS, ffmpeg_exe

    fix = "install ffmpeg with libx264 and aac (Debian/Ubuntu: apt-get install ffmpeg)"
    try:
        exe = ffmpeg_exe.__wrapped__()  # looked up afresh: PATH may differ from the cached one
        listing = subprocess.run(
            [exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30
        )
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return Finding("ffmpeg", ERROR, f"no working ffmpeg: videos cannot render ({exc})", fix)
    if listing.returncode != 0:
        return Finding("ffmpeg", ERROR, f"{exe} -encoders failed: {listing.stderr.strip()}", fix)
    needed = [_codec(VIDEO_ARGS, "-c:v"), _codec(AUDIO_ARGS, "-c:a")]
    offered = {line.split()[1] for line in listing.stdout.splitlines() if len(line.split()) > 1}
    missing = [codec for codec in needed if codec not in offered]
    which = "system" if exe == shutil.which("ffmpeg") else "bundled"
    if missing:
        return Finding(
            "ffmpeg", ERROR,
            f"{exe} lacks the encoder(s) {', '.join(missing)}: videos cannot render", fix,
        )  # fmt: skip
    return Finding("ffmpeg", OK, f"{which} ffmpeg {exe} with {', '.join(needed)}")


def _codec(args: tuple[str, ...], option: str) -> str:
    """The codec an encoder argument list selects with `option`."""
    return args[args.index(option) + 1]
