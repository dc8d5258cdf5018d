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
    "-crf", "20",
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
    """One scene as a picture on screen for `frames`, fading from/to `fade_colour`."""

    image: Image.Image
    frames: int
    fade_in: int  # frames of fade from the colour at the start (0: none)
    fade_out: int  # frames of fade to the colour at the end (0: none)
    fade_colour: tuple[int, int, int]


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
    for index, still in enumerate(stills):
        if still.image.size != (WIDTH, HEIGHT) or still.image.mode != "RGB":
            raise ValueError(f"stills are {WIDTH}x{HEIGHT} RGB")
        raw = folder / f"{prefix}-{index}.rgb"
        raw.write_bytes(still.image.tobytes())
        inputs += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}"]
        inputs += ["-framerate", str(FPS), "-i", str(raw)]
        parts = _still_parts(still, index, chains)
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


def _still_parts(still: Still, index: int, chains: list[str]) -> list[tuple[str, int]]:
    """Filter chains for one still's fade-in, middle and fade-out: (label, frames) each.

    The fade filter sees only the frames that fade (given every frame it costs ~2 ms each).
    """
    colour = "0x{:02x}{:02x}{:02x}".format(*still.fade_colour)
    middle = still.frames - still.fade_in - still.fade_out
    if middle < 1:
        raise ValueError("a scene must be longer than its fades")
    parts: list[tuple[int, str]] = []  # (frames, extra filter)
    if still.fade_in:
        parts.append((still.fade_in, f",fade=t=in:s=0:n={still.fade_in}:c={colour}"))
    parts.append((middle, ""))
    if still.fade_out:
        parts.append((still.fade_out, f",fade=t=out:s=0:n={still.fade_out}:c={colour}"))
    if len(parts) > 1:
        sources = [f"[p{index}_{i}]" for i in range(len(parts))]
        chains.append(f"[{index}:v]format=yuv420p,split={len(parts)}{''.join(sources)}")
    else:
        sources = [f"[p{index}_0]"]
        chains.append(f"[{index}:v]format=yuv420p{sources[0]}")
    out = []
    for i, ((frames, extra), source) in enumerate(zip(parts, sources, strict=True)):
        label = f"[s{index}_{i}]"
        loop = f"loop=loop={frames - 1}:size=1:start=0,setpts=N/({FPS}*TB)"
        chains.append(f"{source}{loop}{extra}{label}")
        out.append((label, frames))
    return out


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
