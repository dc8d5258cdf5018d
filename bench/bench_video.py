"""Video rendering: the segment-cached path beside the naive moviepy composite and a still encode.

All figures come from one run on this machine:

- naive: moviepy 2.2.1 composes the same 15 s video per debtor (background clip, text-and-QR
  layer with its alpha mask, fades, music) with CompositeVideoClip and `write_videofile`
  (libx264 ultrafast, like ours);
- still: ffmpeg encodes 15 s of one still picture (`-loop 1`, libx264 ultrafast,
  `-tune stillimage`), the issue's lower bound, with ffmpeg's default threads and with one;
- ours: `render_video` with a warm segment cache (invariant scenes and audio already stored),
  one process, then two worker processes (one per core, x264 `-threads 1`) for videos/hour.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from renderer import video
from renderer.video import encode as video_encode
from renderer.video import scenes, segments
from renderer.video.cache import LocalSegmentCache
from renderer.video.palette import palette
from tests.support.views import english_view, make_view

SINGLE_RUNS = 8
WORKER_VIDEOS = 16  # per worker process in the two-process run
GOALS = {"naive_ratio": 25.0, "still_ratio": 1.5, "per_hour": 4000, "rss_mb": 300}


def _views(count: int, salt: str) -> list:
    """Distinct debtors (personal scenes differ), alternating German and English."""
    out = []
    for i in range(count):
        base = make_view() if i % 2 == 0 else english_view()
        out.append(replace(base, first_name=f"{base.first_name} {salt}{i}", amount=f"{i},50 €"))
    return out


def _naive(view, out: Path, template_name: str = "reminder") -> None:
    """The same video composed per frame by moviepy: what the issue calls the naive way."""
    import numpy as np
    from moviepy import (
        AudioFileClip,
        CompositeVideoClip,
        ImageClip,
        concatenate_videoclips,
        vfx,
    )
    from moviepy.audio.fx import AudioFadeOut

    template = scenes.template_for(view, template_name)
    colour = list(palette(view.brand_color).background)
    clips = []
    for index, scene in enumerate(template.scenes):
        seconds = template.scene_frames(scene) / template.fps
        background, layer = scenes.scene_layers(view, template, index)
        rgba = np.asarray(layer)
        mask = ImageClip(rgba[..., 3] / 255.0, is_mask=True, duration=seconds)
        text = ImageClip(rgba[..., :3], duration=seconds).with_mask(mask)
        clip = CompositeVideoClip([ImageClip(np.asarray(background), duration=seconds), text])
        effects = []
        if scene.fade_in:
            effects.append(vfx.FadeIn(template.fade_seconds, initial_color=colour))
        if scene.fade_out:
            effects.append(vfx.FadeOut(template.fade_seconds, final_color=colour))
        clips.append(clip.with_effects(effects) if effects else clip)
    movie = concatenate_videoclips(clips, method="chain")
    music = AudioFileClip(str(template.music)).subclipped(0, template.duration)
    movie = movie.with_audio(music.with_effects([AudioFadeOut(1.5)]))
    # ultrafast like ours, so the ratio measures composing, not x264's preset (moviepy's
    # default "medium" roughly doubles the naive time here and would flatter the ratio)
    movie.write_videofile(
        str(out),
        fps=25,
        codec="libx264",
        preset="ultrafast",
        audio_codec="aac",
        logger=None,
        temp_audiofile_path=tempfile.gettempdir(),
    )
    movie.close()


def _still(poster: Path, out: Path, threads: str | None) -> float:
    """Seconds for ffmpeg to encode 15 s of one still picture."""
    args = [video_encode.ffmpeg_exe(), "-v", "error", "-y", "-loop", "1", "-framerate", "25"]
    args += ["-t", "15", "-i", str(poster), "-c:v", "libx264", "-preset", "ultrafast"]
    args += ["-tune", "stillimage", "-pix_fmt", "yuv420p"]
    if threads:
        args += ["-threads", threads]
    start = time.perf_counter()
    subprocess.run([*args, str(out)], check=True)
    return time.perf_counter() - start


def _timed(views, folder: Path, cache, template: str | None = None) -> list[float]:
    times = []
    for i, view in enumerate(views):
        start = time.perf_counter()
        video.render_video(view, folder / f"v{i}.mp4", cache=cache, template=template)
        times.append(time.perf_counter() - start)
    return times


def _ffmpeg_peak(stop: threading.Event, peak: list[float]) -> None:
    """Sample the VmHWM of this process's ffmpeg children until `stop` (MB into peak[0]).

    getrusage can't tell: a child's ru_maxrss starts from the parent's size at fork, so it
    would count the Python worker again. VmHWM belongs to the child's own memory after exec;
    children not yet exec'd (still named python) are skipped for the same reason.
    """
    me = os.getpid()
    while not stop.is_set():
        for task in os.listdir(f"/proc/{me}/task"):
            try:
                kids = Path(f"/proc/{me}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for kid in kids:
                try:
                    status = Path(f"/proc/{kid}/status").read_text()
                except OSError:
                    continue
                name = re.search(r"^Name:\s+(\S+)", status, re.M)
                hwm = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
                if name and hwm and name.group(1) == "ffmpeg":
                    peak[0] = max(peak[0], int(hwm.group(1)) / 1024)
        stop.wait(0.01)


def _worker(args) -> tuple[int, float, float, float]:
    """One video worker, started fresh and warmed as `kindly worker video` is: render its
    debtors; (count, seconds, own peak MB, largest ffmpeg child's peak MB)."""
    from workers import queues, worker

    worker.preload([queues.VIDEO])
    worker_no, cache_root, folder = args
    cache = LocalSegmentCache(cache_root)
    views = _views(WORKER_VIDEOS, f"w{worker_no}-")
    stop, peak = threading.Event(), [0.0]
    sampler = threading.Thread(target=_ffmpeg_peak, args=(stop, peak), daemon=True)
    sampler.start()
    start = time.perf_counter()
    _timed(views, Path(folder), cache)
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    # VmHWM, not ru_maxrss: the latter starts from the parent's size at fork (exec or not)
    own = re.search(r"^VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return len(views), elapsed, int(own.group(1)) / 1024, peak[0]


def _breakdown(view, folder: Path, cache) -> dict[str, float]:
    """Where one warm render spends its time."""
    spent = {"draw": 0.0, "encode": 0.0, "join": 0.0}
    originals = (segments.still, video_encode.encode_stills, video_encode.join)

    def wrap(name, func):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start

        return timed

    segments.still = wrap("draw", originals[0])
    video_encode.encode_stills = wrap("encode", originals[1])
    video_encode.join = wrap("join", originals[2])
    try:
        start = time.perf_counter()
        video.render_video(view, folder / "breakdown.mp4", cache=cache)
        spent["total"] = time.perf_counter() - start
    finally:
        segments.still, video_encode.encode_stills, video_encode.join = originals
    return spent


def run() -> str:
    """Measure and return the Markdown section."""
    video.warm()
    with tempfile.TemporaryDirectory(prefix="kindly-bench-video-") as tmp:
        folder = Path(tmp)
        cache = LocalSegmentCache(folder / "cache")
        first = make_view()
        video.render_video(first, folder / "warm.mp4", cache=cache)  # fills the cache
        video.render_video(first, folder / "warm2.mp4", cache=cache, template="reminder_fixed_end")

        naive_start = time.perf_counter()
        _naive(first, folder / "naive.mp4")
        naive = time.perf_counter() - naive_start

        poster = folder / "poster.png"
        scenes.draw_scene(first, 0).save(poster)
        still_default = statistics.median(
            _still(poster, folder / "still.mp4", None) for _ in range(3)
        )
        still_one = statistics.median(_still(poster, folder / "still.mp4", "1") for _ in range(3))

        ours = statistics.median(_timed(_views(SINGLE_RUNS, "a"), folder, cache))
        fixed = statistics.median(
            _timed(_views(SINGLE_RUNS, "b"), folder, cache, "reminder_fixed_end")
        )
        parts = _breakdown(_views(1, "c")[0], folder, cache)

        # fresh processes, as `kindly worker video` starts: forked from this one, they would
        # carry the naive moviepy run's memory in their peak
        context = multiprocessing.get_context("spawn")
        jobs = [(n, str(folder / "cache"), tempfile.mkdtemp(dir=tmp)) for n in range(2)]
        start = time.perf_counter()
        with context.Pool(2) as pool:
            results = pool.map(_worker, jobs)
        wall = time.perf_counter() - start
    count = sum(r[0] for r in results)
    per_hour = count / wall * 3600
    own_mb = max(r[2] for r in results)
    ffmpeg_mb = max(r[3] for r in results)
    naive_ratio = naive / ours
    naive_ratio_2 = per_hour / (3600 / naive)
    still_ratio = ours / still_default

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    rows = [
        ("naive moviepy composite (1 process)", f"{naive:.2f}", "1×"),
        ("ffmpeg still encode, 15 s, default threads", f"{still_default:.2f}", ""),
        ("ffmpeg still encode, 15 s, `-threads 1`", f"{still_one:.2f}", ""),
        ("**segment-cached**, 10 s personal (median of 8)", f"{ours:.2f}", f"{naive / ours:.1f}×"),
        ("segment-cached, fixed end card, 5 s personal", f"{fixed:.2f}", f"{naive / fixed:.1f}×"),
    ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return f"""## Video rendering (15 s, 1280×720, 25 fps, H.264 + AAC)

Warm segment cache (invariant scenes and the audio track encoded once per template, language,
tone and campaign); per debtor only the personal scenes are drawn and encoded. CPU count
{os.cpu_count()}; ffmpeg `{video_encode.encoder_id()}`.

| path | s per video | vs naive |
|---|---|---|
{table}

One warm render: drawing {parts["draw"]:.2f} s, encoding the personal scenes
{parts["encode"]:.2f} s, joining with audio and faststart {parts["join"]:.2f} s
(total {parts["total"]:.2f} s).

| goal | measured | |
|---|---|---|
| ≥ {GOALS["naive_ratio"]:.0f}× naive throughput | {naive_ratio:.1f}× one process; {naive_ratio_2:.1f}× with two workers vs one naive process | {verdict(naive_ratio >= GOALS["naive_ratio"])} (one process) |
| ≤ {GOALS["still_ratio"]}× the still-image encode time | {still_ratio:.2f}× (default threads), {ours / still_one:.2f}× (`-threads 1`) | {verdict(still_ratio <= GOALS["still_ratio"])} |
| ≥ {GOALS["per_hour"]:,} videos/hour, two workers | {per_hour:,.0f} ({count} videos in {wall:.1f} s) | {verdict(per_hour >= GOALS["per_hour"])} |
| < {GOALS["rss_mb"]} MB per worker | Python {own_mb:.0f} MB + largest ffmpeg child {ffmpeg_mb:.0f} MB = {own_mb + ffmpeg_mb:.0f} MB | {verdict(own_mb + ffmpeg_mb < GOALS["rss_mb"])} |
"""
