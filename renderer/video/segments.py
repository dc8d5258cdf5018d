"""Stills and the segment cache: what an invariant segment's pixels depend on, made once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from renderer.video import encode
from renderer.video.cache import SegmentCache
from renderer.video.palette import palette
from renderer.video.scenes import draw_content, logo_id, scene_background
from renderer.video.template import VideoTemplate, scene_text
from renderer.video.typeset import BOLD_FONT, REGULAR_FONT, fallbacks
from renderer.view import DebtorView


def code_hash(package: Path) -> str:
    """A hash of every .py file under `package`, the sibling qr.py it draws with, and the fonts."""
    digest = hashlib.sha256()
    # walked, not listed: a module added by a later split is hashed without anyone remembering to
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    digest.update((package.parent / "qr.py").read_bytes())
    for font in (REGULAR_FONT, BOLD_FONT, *fallbacks(False), *fallbacks(True)):
        digest.update(f"{font}:{font.stat().st_size if font.is_file() else -1}".encode())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def code_id() -> str:
    """The hash of this video package's code and fonts: changing any of them renews segments."""
    return code_hash(Path(__file__).resolve().parent)


def _key(kind: str, ext: str, inputs: dict[str, Any]) -> str:
    inputs = {**inputs, "code": code_id(), "encoder": encode.encoder_id()}
    blob = json.dumps(inputs, sort_keys=True, ensure_ascii=False, default=str)
    return f"{kind}/{hashlib.sha256(blob.encode()).hexdigest()}.{ext}"


def _invariant_key(view: DebtorView, template: VideoTemplate, index: int) -> str:
    """Everything an invariant scene's pixels depend on (the template forbids debtor fields)."""
    scene = template.scenes[index]
    return _key(
        "scene",
        "mp4",
        {
            "template": template.name,
            "scene": repr(scene),
            "index": index,
            "count": len(template.scenes),
            "lang": template.lang,
            "tone": template.tone,
            "texts": [
                scene_text(template.lang, template.tone, ln.key) for ln in scene.lines if ln.key
            ],
            "creditor": view.creditor,
            "campaign_name": view.campaign_name,
            "brand_color": view.brand_color,
            "logo": logo_id(getattr(view, "logo", "")),
            "fps": template.fps,
            "fade": template.fade_seconds,
            "video_args": encode.VIDEO_ARGS,
        },
    )


def audio_key(template: VideoTemplate) -> str:
    """The cache key of a template's audio track."""
    music = template.music
    return _key(
        "audio",
        "m4a",
        {
            "music": hashlib.sha256(music.read_bytes()).hexdigest() if music else None,
            "frames": template.frames,
            "fps": template.fps,
            "volume": template.volume,
            "audio_args": encode.AUDIO_ARGS,
        },
    )


def still(view: DebtorView, template: VideoTemplate, index: int) -> encode.Still:
    """Scene `index` as a still for the encoder: the picture, its background and its fades."""
    scene = template.scenes[index]
    fade = round(template.fade_seconds * template.fps)
    background = scene_background(view, template, index)
    image = background.copy()
    draw_content(image, view, template, index)
    return encode.Still(
        image=image,
        background=background,
        frames=template.scene_frames(scene),
        fade_in=fade if scene.fade_in else 0,
        fade_out=fade if scene.fade_out else 0,
        fade_colour=palette(view.brand_color).background,
    )


def _cached_file(cache: SegmentCache, key: str, folder: Path) -> Path | None:
    """A cached segment as a file ffmpeg can read: the cache's own file if it has one."""
    own = getattr(cache, "path", None)
    if own is not None:
        path = own(key)
        return path if path.is_file() else None
    data = cache.get(key)
    if data is None:
        return None
    path = folder / key.replace("/", "-")
    path.write_bytes(data)
    return path


def ensure(cache: SegmentCache, key: str, folder: Path, make: Callable[[Path], None]) -> Path:
    """The cached file for `key`, made once with `make(path)` on a miss."""
    found = _cached_file(cache, key, folder)
    if found is not None:
        return found
    made = folder / f"made-{key.replace('/', '-')}"
    make(made)
    cache.put(key, made.read_bytes())
    return _cached_file(cache, key, folder) or made


def invariant_segment(
    view: DebtorView, template: VideoTemplate, index: int, cache: SegmentCache, folder: Path
) -> Path:
    """An invariant scene's segment: from the cache, or encoded once and cached."""

    def make(path: Path) -> None:
        picture = still(view, template, index)
        (made,) = encode.encode_stills([picture], folder, pieces=False, prefix=f"scene{index}")
        made.rename(path)

    return ensure(cache, _invariant_key(view, template, index), folder, make)
