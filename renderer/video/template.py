"""Video templates: scenes, timings, motion, audio and call-to-action times, read from JSON.

A template is `templates/video/<name>.json`. Each scene says how long it lasts, its background,
its lines of text (keys in `texts.json` or `{field}` templates of the DebtorView), how it fades
in and out, and whether it is `personal` (drawn per debtor) or invariant (rendered once per
template, language, tone and campaign, then reused from the segment cache).

Variants: `"variants": {"de": {"greeting": {"seconds": 2.5}}}` overrides scene fields for a
language, a tone, or `"<lang>/<tone>"`. A tone also picks `"<key>.<tone>"` texts where the
language has them (never falling back to another language's tone text).
"""

from __future__ import annotations

import json
import math
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from kindly.infra.paths import ROOT, TEMPLATES

TEMPLATE_DIR = TEMPLATES / "video"
DEFAULT_TEMPLATE = "reminder"

CAMPAIGN_FIELDS = frozenset({"creditor", "campaign_name", "brand_color"})
"""The only view fields an invariant scene may show: the same for a whole campaign.

(`contract` is not one: portfolios often carry a contract number per debtor.)"""

MOTIONS = frozenset({"none", "fade"})


class TemplateError(ValueError):
    """A video template is malformed or unsafe to cache."""


@dataclass(frozen=True, slots=True)
class Line:
    """One line of text in a scene: a key in texts.json, or a `{field}` template of the view.

    `joins` says the caption continues the previous line's sentence (space, not newline).
    """

    style: str
    key: str = ""
    value: str = ""
    joins: bool = False


@dataclass(frozen=True, slots=True)
class Scene:
    """One scene of a video: a still picture with fades, on screen for `seconds`."""

    name: str
    seconds: float
    layout: str  # "stack" (centred lines) or "qr" (QR card beside the lines)
    lines: tuple[Line, ...]
    personal: bool = True
    background: str = "brand"  # "brand", "#rrggbb", or "image:<path under assets/>"
    fade_in: bool = False
    fade_out: bool = False


@dataclass(frozen=True, slots=True)
class VideoTemplate:
    """A template resolved for one language and tone: the scenes in order and the rest."""

    name: str
    lang: str
    tone: str
    width: int
    height: int
    fps: int
    fade_seconds: float
    scenes: tuple[Scene, ...]
    music: Path | None
    volume: float
    ctas: tuple[dict[str, Any], ...]

    @property
    def duration(self) -> float:
        """The whole video's length in seconds (a whole number of frames)."""
        return self.frames / self.fps

    @property
    def frames(self) -> int:
        """The whole video's length in frames."""
        return sum(self.scene_frames(s) for s in self.scenes)

    def scene_frames(self, scene: Scene) -> int:
        """A scene's length in whole frames, so segments join without rounding drift."""
        return math.floor(scene.seconds * self.fps + 0.5)  # not round(): 62.5 must give 63

    def starts(self) -> list[float]:
        """Each scene's start time in seconds."""
        out, frame = [], 0
        for scene in self.scenes:
            out.append(frame / self.fps)
            frame += self.scene_frames(scene)
        return out


def _fields(text: str) -> set[str]:
    return {
        name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(text) if name
    }


@lru_cache(maxsize=4)
def _texts() -> dict[str, dict[str, str]]:
    return json.loads((TEMPLATE_DIR / "texts.json").read_text(encoding="utf-8"))


def scene_text(lang: str, tone: str, key: str) -> str:
    """The text for `key` in `lang`: the tone's own wording if the language has one."""
    texts = _texts()
    own = texts.get(lang, {})
    if tone and f"{key}.{tone}" in own:
        return own[f"{key}.{tone}"]
    if key in own:
        return own[key]
    return texts["en"][key]


def text_key(lang: str, key: str, overdue: bool) -> str:
    """`key`, or its `<key>_overdue` wording for a claim past its due date where the texts
    have one (in the language or in English)."""
    texts = _texts()
    late = f"{key}_overdue"
    return late if overdue and (late in texts.get(lang, {}) or late in texts["en"]) else key


@lru_cache(maxsize=8)
def _raw(name: str) -> dict[str, Any]:
    if not name.replace("_", "").replace("-", "").isalnum():
        raise TemplateError(f"bad template name {name!r}")
    path = TEMPLATE_DIR / f"{name}.json"
    if not path.is_file():
        raise TemplateError(f"no video template {name!r} in {TEMPLATE_DIR}")
    return json.loads(path.read_text(encoding="utf-8"))


def _scene(raw: dict[str, Any], fps: int) -> Scene:
    motion = raw.get("motion", {})
    for side in ("in", "out"):
        if motion.get(side, "none") not in MOTIONS:
            raise TemplateError(
                f"scene {raw['name']}: motion {side} must be one of {sorted(MOTIONS)}"
            )
    background = raw.get("background", {"color": "brand"})
    if "image" in background:
        bg = f"image:{background['image']}"
    else:
        bg = str(background.get("color", "brand"))
    seconds = float(raw["seconds"])
    if not 0.2 <= seconds <= 60:
        raise TemplateError(f"scene {raw['name']}: seconds must be between 0.2 and 60")
    if abs(seconds * fps - round(seconds * fps)) > 1e-6:  # else joins drift by part-frames
        raise TemplateError(f"scene {raw['name']}: {seconds} s is not a whole number of frames")
    return Scene(
        name=str(raw["name"]),
        seconds=seconds,
        layout=raw.get("layout", "stack"),
        lines=tuple(
            Line(
                style=line["style"],
                key=line.get("key", ""),
                value=line.get("value", ""),
                joins=bool(line.get("joins", False)),
            )
            for line in raw["lines"]
        ),
        personal=bool(raw.get("personal", True)),
        background=bg,
        fade_in=motion.get("in", "none") == "fade",
        fade_out=motion.get("out", "none") == "fade",
    )


def _check_invariant(template: VideoTemplate) -> None:
    """An invariant scene showing a debtor's field would leak it to every debtor via the cache."""
    for scene in template.scenes:
        if scene.personal:
            continue
        if scene.layout == "qr":
            raise TemplateError(f"scene {scene.name}: a QR end card is personal")
        for line in scene.lines:
            text = line.value or scene_text(template.lang, template.tone, line.key)
            leaked = _fields(text) - CAMPAIGN_FIELDS
            if leaked:
                raise TemplateError(
                    f"scene {scene.name} is marked invariant but shows {sorted(leaked)}; "
                    "mark it personal"
                )


@lru_cache(maxsize=64)
def load_template(name: str = DEFAULT_TEMPLATE, lang: str = "en", tone: str = "") -> VideoTemplate:
    """The template `name` for one language and tone, checked; loaded once per process."""
    raw = _raw(name)
    variants = raw.get("variants", {})
    scenes = []
    for raw_scene in raw["scenes"]:
        merged = dict(raw_scene)
        for variant in (lang, tone, f"{lang}/{tone}"):
            merged.update(variants.get(variant, {}).get(raw_scene["name"], {}))
        scenes.append(_scene(merged, int(raw.get("fps", 25))))
    audio = raw.get("audio") or {}
    music = audio.get("music")
    width, height = raw.get("size", [1280, 720])
    template = VideoTemplate(
        name=raw.get("name", name),
        lang=lang,
        tone=tone,
        width=int(width),
        height=int(height),
        fps=int(raw.get("fps", 25)),
        fade_seconds=float(raw.get("fade_seconds", 0.4)),
        scenes=tuple(scenes),
        music=(ROOT / music) if music else None,
        volume=float(audio.get("volume", 1.0)),
        ctas=tuple(
            {"cta": str(c["cta"]), "from": float(c["from"]), "to": float(c["to"])}
            for c in raw.get("ctas", [])
        ),
    )
    _check_invariant(template)
    return template


def clear_cache() -> None:
    """Forget the templates and texts read so far, so a changed TEMPLATE_DIR is read afresh."""
    _texts.cache_clear()
    _raw.cache_clear()
    load_template.cache_clear()


def template_names() -> list[str]:
    """Every video template on disk."""
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.json") if p.stem != "texts")


def video_ctas(template_name: str = DEFAULT_TEMPLATE) -> list[dict[str, Any]]:
    """Call-to-action overlays for the player: `[{"cta": "pay", "from": 7.5, "to": 15.0}, …]`."""
    return [dict(cta) for cta in load_template(template_name).ctas]
