"""ffmpeg for the video: stills to H.264 segments, one AAC track, and a join without re-encoding.

Every segment is encoded with exactly `VIDEO_ARGS` (same codec, profile, level, size, frame
rate, pixel format and time base) and starts on a keyframe; `check_joinable` verifies both
before a join, because the concat demuxer with `-c copy` silently produces a broken file
otherwise. Filter graphs and command lines are built from numbers and our own file names
only; no text from a debtor ever reaches ffmpeg (it is drawn into the pixels beforehand).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image

WIDTH, HEIGHT = 1280, 720
FPS = 25
TIMESCALE = 12800  # the MP4 track time base of every segment: 512 ticks per frame at 25 fps
AUDIO_RATE = 44100

VIDEO_ARGS: tuple[str, ...] = (
    "-c:v", "libx264",
    "-preset", "ultrafast",
    "-tune", "stillimage",
    "-qp", "17",  # constant QP: ~25 % less x264 time than CRF on still scenes, same PSNR (45 dB)
    "-profile:v", "baseline",
    "-level:v", "3.1",
    "-pix_fmt", "yuv420p",
    "-g", "250",
    "-bf", "0",
    "-threads", "1",  # one worker per core: parallelism comes from processes, not threads
    "-video_track_timescale", str(TIMESCALE),
    "-an",
)  # fmt: skip
"""The encoder settings every segment shares; part of every segment's cache key."""

AUDIO_ARGS: tuple[str, ...] = ("-c:a", "aac", "-b:a", "96k", "-ar", str(AUDIO_RATE), "-ac", "2")


class EncodeError(RuntimeError):
    """ffmpeg failed or produced segments that cannot be joined."""


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The system ffmpeg if there is one, else the one bundled with imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@lru_cache(maxsize=1)
def encoder_id() -> str:
    """ffmpeg's version line: segments from another build may not join, so it keys the cache."""
    out = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0]


def run_ffmpeg(args: Sequence[str]) -> None:
    """Run ffmpeg with a list of arguments (never a shell); EncodeError with its message."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise EncodeError(f"ffmpeg failed ({result.returncode}): {result.stderr.strip()[-800:]}")


@dataclass(frozen=True, slots=True)
class Still:
    """One scene as a picture on screen for `frames`, fading in and out.

    With a `background` (the same picture without its text and QR card), fades dissolve only
    what differs from it; otherwise the whole picture dips to `fade_colour`.
    """

    image: Image.Image
    frames: int
    fade_in: int  # frames of fade at the start (0: none)
    fade_out: int  # frames of fade at the end (0: none)
    fade_colour: tuple[int, int, int]
    background: Image.Image | None = None


def encode_stills(
    stills: Sequence[Still], folder: Path, *, pieces: bool = True, prefix: str = "segment"
) -> list[Path]:
    """Encode stills into MP4 segments in a single ffmpeg run; returns them in playing order.

    Each still is handed over once as a raw RGB frame, converted to YUV once and repeated by
    the `loop` filter, so ffmpeg neither decodes nor converts the same picture 250 times.
    With `pieces`, a still's fade-in becomes a segment of its own and the rest (the unchanged
    middle and any fade-out) another, each a fresh encoder session starting on a keyframe:
    x264 spends ~3 ms on every unchanged frame that follows a fade-in in the same session but
    ~1 ms after a keyframe of the finished picture (a forced keyframe inside one session does
    not help; measured). Without `pieces`, one segment per still (for invariant scenes,
    encoded once).
    """
    inputs: list[str] = []
    chains: list[str] = []
    maps: list[str] = []
    outputs: list[Path] = []

    def add_input(image: Image.Image, name: str) -> int:
        """Hand ffmpeg one picture as a raw frame; its input number."""
        raw = folder / f"{prefix}-{name}.raw"
        raw.write_bytes(image.tobytes())
        pix_fmt = "rgba" if image.mode == "RGBA" else "rgb24"
        inputs.extend(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", "{}x{}".format(*image.size)])
        inputs.extend(["-framerate", str(FPS), "-i", str(raw)])
        return inputs.count("-i") - 1

    for index, still in enumerate(stills):
        if still.image.size != (WIDTH, HEIGHT) or still.image.mode != "RGB":
            raise ValueError(f"stills are {WIDTH}x{HEIGHT} RGB")
        full = add_input(still.image, f"{index}")
        dissolve = None
        if still.background is not None and (still.fade_in or still.fade_out):
            layer, (x, y) = _difference_layer(still.image, still.background)
            if layer is not None:
                dissolve = (
                    add_input(still.background, f"{index}-bg"),
                    add_input(layer, f"{index}-layer"),
                    x,
                    y,
                )
        parts = _still_parts(still, index, full, dissolve, chains)
        # with pieces, the fade-in alone; the rest (middle, fade-out) may share a session
        groups = [parts[:1], parts[1:]] if pieces and still.fade_in else [parts]
        for group_no, group in enumerate(groups):
            label = f"[v{index}_{group_no}]"
            labels = "".join(name for name, _ in group)
            if len(group) > 1:
                chains.append(f"{labels}concat=n={len(group)}:v=1:a=0{label}")
            else:
                chains.append(f"{labels}null{label}")
            out = folder / f"{prefix}-{index}-{group_no}.mp4"
            maps += ["-map", label, *VIDEO_ARGS, "-r", str(FPS)]
            maps += ["-frames:v", str(sum(frames for _, frames in group)), str(out)]
            outputs.append(out)
    graph = ["-filter_complex_threads", "1", "-filter_complex", ";".join(chains)]
    run_ffmpeg([*inputs, *graph, *maps])  # one core per worker: filters single-threaded too
    return outputs


def _difference_layer(
    image: Image.Image, background: Image.Image
) -> tuple[Image.Image | None, tuple[int, int]]:
    """What `image` adds to `background`, as an opaque RGBA crop and its (even) position.

    Opaque where the pictures differ and clear elsewhere, so at full strength the overlay is
    exactly `image`, and part way it is a crossfade of the two that leaves the rest untouched.
    """
    from PIL import ImageChops

    diff = ImageChops.difference(image, background).convert("L").point(lambda v: 255 if v else 0)
    box = diff.getbbox()
    if box is None:
        return None, (0, 0)
    left, top = box[0] - box[0] % 2, box[1] - box[1] % 2
    right, bottom = min(WIDTH, box[2] + box[2] % 2), min(HEIGHT, box[3] + box[3] % 2)
    layer = image.crop((left, top, right, bottom)).convert("RGBA")
    layer.putalpha(diff.crop((left, top, right, bottom)))
    return layer, (left, top)


def _still_parts(
    still: Still,
    index: int,
    full: int,
    dissolve: tuple[int, int, int, int] | None,
    chains: list[str],
) -> list[tuple[str, int]]:
    """Filter chains for one still's fade-in, middle and fade-out: (label, frames) each.

    Only the frames that fade go through a fade (given every frame it costs ~2 ms each). With
    `dissolve` (background input, layer input, x, y) a fade is the layer's alpha fading over
    the background: only the text's macroblocks change, which x264 encodes ~2× faster than a
    whole frame dipping to a colour.
    """
    colour = "0x{:02x}{:02x}{:02x}".format(*still.fade_colour)
    middle = still.frames - still.fade_in - still.fade_out
    if middle < 1:
        raise ValueError("a scene must be longer than its fades")
    fades = [kind for kind, n in (("in", still.fade_in), ("out", still.fade_out)) if n]
    frames_of = {"in": still.fade_in, "out": still.fade_out}

    def loop(frames: int) -> str:
        return f"loop=loop={frames - 1}:size=1:start=0,setpts=N/({FPS}*TB)"

    if dissolve is None:
        names = ["mid", *fades]
        if len(names) > 1:
            labels = "".join(f"[p{index}_{n}]" for n in names)
            chains.append(f"[{full}:v]format=yuv420p,split={len(names)}{labels}")
        else:
            chains.append(f"[{full}:v]format=yuv420p[p{index}_mid]")
        for kind in fades:
            n = frames_of[kind]
            chains.append(
                f"[p{index}_{kind}]{loop(n)},fade=t={kind}:s=0:n={n}:c={colour}[s{index}_{kind}]"
            )
    else:
        bg, layer, x, y = dissolve
        chains.append(f"[{full}:v]format=yuv420p[p{index}_mid]")
        split = len(fades)
        bgs = "".join(f"[b{index}_{k}]" for k in fades)
        layers = "".join(f"[l{index}_{k}]" for k in fades)
        chains.append(
            f"[{bg}:v]format=yuv420p,split={split}{bgs}"
            if split > 1
            else f"[{bg}:v]format=yuv420p{bgs}"
        )
        chains.append(
            f"[{layer}:v]format=yuva420p,split={split}{layers}"
            if split > 1
            else f"[{layer}:v]format=yuva420p{layers}"
        )
        for kind in fades:
            n = frames_of[kind]
            chains.append(f"[b{index}_{kind}]{loop(n)}[bl{index}_{kind}]")
            chains.append(
                f"[l{index}_{kind}]{loop(n)},fade=t={kind}:s=0:n={n}:alpha=1[ll{index}_{kind}]"
            )
            chains.append(
                f"[bl{index}_{kind}][ll{index}_{kind}]overlay=x={x}:y={y}:format=yuv420"
                f"[s{index}_{kind}]"
            )
    chains.append(f"[p{index}_mid]{loop(middle)}[s{index}_mid]")
    order = (["in"] if still.fade_in else []) + ["mid"] + (["out"] if still.fade_out else [])
    lengths = {"in": still.fade_in, "mid": middle, "out": still.fade_out}
    return [(f"[s{index}_{kind}]", lengths[kind]) for kind in order]


def encode_audio(music: Path | None, seconds: float, volume: float, out: Path) -> None:
    """One continuous AAC track of exactly `seconds`: the music looped or cut, or silence."""
    if music is None:
        source = ["-f", "lavfi", "-i", f"anullsrc=r={AUDIO_RATE}:cl=stereo"]
        filters = "anull"
    else:
        source = ["-stream_loop", "-1", "-i", str(music)]
        fade_out = min(1.5, seconds / 3)
        filters = (
            f"aresample={AUDIO_RATE},volume={volume:.3f},afade=t=in:d=0.3,"
            f"afade=t=out:st={seconds - fade_out:.3f}:d={fade_out:.3f}"
        )
    samples = round(seconds * AUDIO_RATE)
    run_ffmpeg(
        [*source, "-af", f"{filters},atrim=end_sample={samples}", "-vn", *AUDIO_ARGS, str(out)]
    )


def join(segments: Sequence[Path], audio: Path, out: Path, folder: Path) -> None:
    """Concatenate the segments without re-encoding, add the audio, put `moov` first."""
    check_joinable(segments)
    listing = folder / "segments.txt"
    # the paths are ours (temp folder or cache folder of hex names): nothing to escape
    listing.write_text("ffconcat version 1.0\n" + "".join(f"file '{p}'\n" for p in segments))
    run_ffmpeg(
        [
            "-f", "concat", "-safe", "0", "-i", str(listing),
            "-i", str(audio),
            "-map", "0:v:0", "-map", "1:a:0",
            "-c", "copy",
            "-movflags", "+faststart",
            str(out),
        ]
    )  # fmt: skip


# --------------------------------------------------------------------------- MP4 inspection


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    """(type, payload start, box end) of the boxes in data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            raise EncodeError(f"broken MP4 box at {pos}")
        yield kind.decode("latin-1"), pos + header, pos + size
        pos += size


def _find(data: bytes, path: Sequence[str], start: int = 0, end: int | None = None):
    for kind, payload, box_end in _boxes(data, start, end):
        if kind == path[0]:
            if len(path) == 1:
                return payload, box_end
            found = _find(data, path[1:], payload, box_end)
            if found:
                return found
    return None


def segment_signature(path: Path) -> tuple[bytes, int, bool]:
    """(avcC decoder configuration, track time base, first frame is a keyframe) of a segment."""
    data = path.read_bytes()
    stbl = _find(data, ["moov", "trak", "mdia", "minf", "stbl"])
    mdhd = _find(data, ["moov", "trak", "mdia", "mdhd"])
    if not stbl or not mdhd:
        raise EncodeError(f"{path.name}: no video track")
    version = data[mdhd[0]]
    timescale_at = mdhd[0] + (20 if version == 1 else 12)
    timescale = struct.unpack(">I", data[timescale_at : timescale_at + 4])[0]
    stsd_at = data.find(b"avcC", stbl[0], stbl[1])
    if stsd_at < 0:
        raise EncodeError(f"{path.name}: not H.264")
    size = struct.unpack(">I", data[stsd_at - 4 : stsd_at])[0]
    avcc = data[stsd_at + 4 : stsd_at - 4 + size]
    stss = _find(data, ["stss"], stbl[0], stbl[1])
    if stss is None:  # no sync sample table: every frame is a keyframe
        keyframe_first = True
    else:
        count = struct.unpack(">I", data[stss[0] + 4 : stss[0] + 8])[0]
        first = struct.unpack(">I", data[stss[0] + 8 : stss[0] + 12])[0] if count else 0
        keyframe_first = first == 1
    return avcc, timescale, keyframe_first


def check_joinable(segments: Sequence[Path]) -> None:
    """Refuse to join segments whose encoder settings differ or that start off a keyframe."""
    reference = None
    for path in segments:
        avcc, timescale, keyframe_first = segment_signature(path)
        if not keyframe_first:
            raise EncodeError(f"{path.name} does not start on a keyframe")
        if timescale != TIMESCALE:
            raise EncodeError(f"{path.name} has time base 1/{timescale}, not 1/{TIMESCALE}")
        if reference is None:
            reference = avcc
        elif avcc != reference:
            raise EncodeError(f"{path.name} was encoded with other settings than the first segment")
