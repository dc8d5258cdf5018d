"""The public renderers: the video file, its poster, its length, and warming a worker up."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from renderer.errors import RenderError
from renderer.video import encode, segments
from renderer.video.cache import SegmentCache, default_cache
from renderer.video.scenes import HEIGHT, WIDTH, draw_scene, template_for
from renderer.video.template import DEFAULT_TEMPLATE, load_template, template_names
from renderer.video.typeset import (
    BOLD_FONT,
    REGULAR_FONT,
    STYLES,
    coverage,
    emoji_font,
    fallbacks,
    load_font,
)
from renderer.view import DebtorView


def render_poster(view: DebtorView, *, template: str | None = None) -> bytes:
    """The greeting scene as a 1280×720 JPEG, for the video tag's poster attribute."""
    out = io.BytesIO()
    draw_scene(view, 0, template_for(view, template)).save(
        out, format="JPEG", quality=88, optimize=True
    )
    return out.getvalue()


def video_duration(template: str = DEFAULT_TEMPLATE, lang: str = "en") -> float:
    """The length of a template's video in seconds."""
    return load_template(template, lang).duration


def render_video(
    view: DebtorView,
    out_path: str | os.PathLike,
    *,
    template: str | None = None,
    cache: SegmentCache | None = None,
) -> None:
    """Write the debtor's video to `out_path`: 1280×720 25 fps H.264 + AAC MP4, moov first.

    Invariant scenes and the audio track come from `cache` (encoded on a miss); the personal
    scenes are drawn with Pillow and encoded in one ffmpeg run; everything is joined without
    re-encoding.
    """
    chosen = template_for(view, template)
    if (chosen.width, chosen.height, chosen.fps) != (WIDTH, HEIGHT, encode.FPS):
        raise RenderError(f"template {chosen.name}: only {WIDTH}x{HEIGHT} at 25 fps is supported")
    cache = cache if cache is not None else default_cache()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="kindly-video-") as tmp:
            folder = Path(tmp)
            # personal scenes first, in one ffmpeg run; invariant ones from the cache
            personal = [i for i, scene in enumerate(chosen.scenes) if scene.personal]
            stills = [segments.still(view, chosen, i) for i in personal]
            pieces = encode.encode_stills(stills, folder, prefix="personal") if stills else []
            parts: list[Path] = []
            for index, scene in enumerate(chosen.scenes):
                if scene.personal:
                    prefix = f"personal-{personal.index(index)}-"
                    parts += [p for p in pieces if p.name.startswith(prefix)]
                else:
                    parts.append(segments.invariant_segment(view, chosen, index, cache, folder))
            audio = segments.ensure(
                cache,
                segments.audio_key(chosen),
                folder,
                lambda path: encode.encode_audio(
                    chosen.music, chosen.duration, chosen.volume, path
                ),
            )
            tmp_out = folder / "video.mp4"
            encode.join(parts, audio, tmp_out, folder)
            # beside the target (same file system), then renamed: readers never see half a file
            fd, beside = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle, tmp_out.open("rb") as source:
                    handle.write(source.read())
                os.replace(beside, out)
            except BaseException:
                Path(beside).unlink(missing_ok=True)
                raise
    except encode.EncodeError as exc:
        raise RenderError(f"video encoding failed for {out}: {exc}") from exc


def warm(templates: tuple[str, ...] | None = None) -> None:
    """Load templates, fonts and the encoder's identity once, before a worker forks its jobs."""
    for name in templates or tuple(template_names()):
        for lang in load_texts_langs():
            load_template(name, lang)
    for style in STYLES.values():
        for path in (REGULAR_FONT, BOLD_FONT):
            load_font(path, style.size)
    emoji_font()
    for path in (REGULAR_FONT, BOLD_FONT, *fallbacks(False), *fallbacks(True)):
        coverage(path)
    segments.code_id()
    encode.encoder_id()


def load_texts_langs() -> list[str]:
    """The languages the video texts exist in."""
    from renderer.texts import load_texts

    return load_texts("video").languages()
