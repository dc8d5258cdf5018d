"""WebVTT captions from the very same scene data as the pictures, so texts and timings agree."""

from __future__ import annotations

from renderer.video.scenes import scene_texts, template_for
from renderer.view import DebtorView


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_captions(view: DebtorView, *, template: str | None = None) -> bytes:
    """WebVTT captions in the debtor's language: one cue per scene, the scene's own texts."""
    chosen = template_for(view, template)
    parts = ["WEBVTT", f"Language: {chosen.lang}", ""]
    starts = chosen.starts()
    for scene, start in zip(chosen.scenes, starts, strict=True):
        texts = scene_texts(view, chosen, scene)
        rows: list[str] = []
        for line, text in zip(scene.lines, texts, strict=True):
            if line.joins and rows:
                rows[-1] = f"{rows[-1]} {text}"
            else:
                rows.append(text)
        end = start + chosen.scene_frames(scene) / chosen.fps
        parts.append(scene.name)
        parts.append(f"{_timestamp(start)} --> {_timestamp(end)}")
        parts.extend(_vtt_escape(row) for row in rows if row)
        parts.append("")
    return "\n".join(parts).encode("utf-8")
