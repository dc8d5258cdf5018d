"""The personal video: a few short scenes, each drawn once with Pillow, joined by moviepy.

A scene is data (`Scene` with `Line`s); `SCENES` lists them in order. Drawing turns a scene and a
`DebtorView` into one 1280×720 RGB image; the video is those images as still clips with short
fades to the background colour between them. Captions (WebVTT) and the poster come from the
very same scene data, so texts and timings always agree.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

from kindly.paths import FONTS
from kindly.renderer.qr import qr_png
from kindly.renderer.texts import load_texts
from kindly.renderer.view import DebtorView

try:  # a shared error type, if the renderer package has one by now
    from kindly.renderer.errors import RenderError
except ImportError:  # pragma: no cover - depends on what else is in the package

    class RenderError(Exception):
        """Rendering a debtor's material failed (missing font, encoder error, …)."""


__all__ = [
    "SCENES",
    "Line",
    "RenderError",
    "Scene",
    "render_captions",
    "render_poster",
    "render_video",
]

WIDTH, HEIGHT = 1280, 720
FPS = 24
FADE_SECONDS = 0.4
MARGIN_X = 96

REGULAR_FONT = FONTS / "DejaVuSans.ttf"
BOLD_FONT = FONTS / "DejaVuSans-Bold.ttf"
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_FONT_SIZE = 109  # the only size the bitmap emoji font has

HAS_RAQM = features.check("raqm")  # without it: no bidi reordering or Arabic shaping, no crash

DEFAULT_BRAND = "#1f5f8b"
WHITE = (255, 255, 255)
INK = (22, 26, 31)
QR_TARGET_PX = 440

Colour = tuple[int, int, int]


# --------------------------------------------------------------------------- scene data


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
    name: str
    seconds: float
    layout: str  # "stack" (centred lines) or "qr" (QR card beside the lines)
    lines: tuple[Line, ...]


SCENES: tuple[Scene, ...] = (
    Scene(
        "greeting",
        3.0,
        "stack",
        (Line("title", key="hello_title"), Line("subtitle", key="hello_sub")),
    ),
    Scene(
        "amount",
        4.0,
        "stack",
        (
            Line("body", key="amount_intro"),
            Line("hero", value="{amount}", joins=True),
            Line("body", key="amount_creditor", joins=True),
            Line("emphasis", key="amount_due"),
        ),
    ),
    Scene(
        "options",
        3.0,
        "stack",
        (Line("title", key="options_title"), Line("subtitle", key="options_sub")),
    ),
    Scene(
        "qr",
        4.5,
        "qr",
        (
            Line("title", key="qr_title"),
            Line("subtitle", key="qr_or", joins=True),
            Line("url", value="{short_url}", joins=True),
            Line("subtitle", key="qr_thanks"),
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class Style:
    bold: bool
    size: int
    min_size: int
    max_lines: int
    muted: bool = False


STYLES: dict[str, Style] = {
    "title": Style(bold=True, size=76, min_size=36, max_lines=2),
    "subtitle": Style(bold=False, size=40, min_size=26, max_lines=2, muted=True),
    "body": Style(bold=False, size=42, min_size=26, max_lines=2),
    "hero": Style(bold=True, size=124, min_size=48, max_lines=1),
    "emphasis": Style(bold=True, size=44, min_size=26, max_lines=2),
    "url": Style(bold=True, size=38, min_size=22, max_lines=3),
    "footer": Style(bold=False, size=24, min_size=18, max_lines=1, muted=True),
}


# --------------------------------------------------------------------------- fonts and text


@lru_cache(maxsize=128)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """A font by .ttf path and pixel size, loaded once per process."""
    if not path.is_file():
        raise RenderError(f"font not found: {path}")
    engine = ImageFont.Layout.RAQM if HAS_RAQM else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(path), size, layout_engine=engine)


@lru_cache(maxsize=1)
def _emoji_font() -> ImageFont.FreeTypeFont | None:
    """Noto Color Emoji if the system has it (and Pillow can load it), else None."""
    if not EMOJI_FONT.is_file():
        return None
    try:
        return _font(EMOJI_FONT, EMOJI_FONT_SIZE)
    except OSError:
        return None


_EMOJI_BASE = "[\U0001f000-\U0001faff]|[\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff]\ufe0f"
_EMOJI_RE = re.compile(
    f"(?:{_EMOJI_BASE})"
    "(?:[\ufe0f\u20e3\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]"
    "|\u200d(?:[\U0001f000-\U0001faff\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff]\ufe0f?))*"
)
_IGNORABLE_RE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufe00-\ufe0f]")
_SPACES_RE = re.compile(r"\s+")


def _clean(text: str) -> str:
    """Plain single-line text: control characters gone, runs of whitespace one space."""
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    return _SPACES_RE.sub(" ", text).strip()


def _runs(text: str) -> list[tuple[str, bool]]:
    """Split text into (run, is_emoji). Without the emoji font, emoji are dropped (no tofu)."""
    have_emoji = _emoji_font() is not None
    out: list[tuple[str, bool]] = []
    pos = 0
    for match in _EMOJI_RE.finditer(text):
        if match.start() > pos:
            out.append((text[pos : match.start()], False))
        if have_emoji:
            out.append((match.group(), True))
        pos = match.end()
    if pos < len(text):
        out.append((text[pos:], False))
    if not HAS_RAQM:  # the basic layout draws boxes for invisible format characters
        out = [(run if emoji else _IGNORABLE_RE.sub("", run), emoji) for run, emoji in out]
    else:
        out = [(run if emoji else run.replace("\ufe0f", ""), emoji) for run, emoji in out]
    if not have_emoji:
        joined = _SPACES_RE.sub(" ", "".join(run for run, _ in out)).strip()
        return [(joined, False)] if joined else []
    return [(run, emoji) for run, emoji in out if run]


class _Typeset:
    """Measures and draws one line of text (with emoji runs) in one font and direction."""

    def __init__(self, path: Path, size: int, direction: str):
        self.font = _font(path, size)
        self.size = size
        self.direction = direction if HAS_RAQM else None
        self.ascent, self.descent = self.font.getmetrics()
        self._scale = size / EMOJI_FONT_SIZE

    def _run_width(self, run: str, emoji: bool) -> float:
        if emoji:
            font = _emoji_font()
            assert font is not None
            return font.getlength(run) * self._scale
        return self.font.getlength(run, direction=self.direction)

    def width(self, text: str) -> float:
        return sum(self._run_width(run, emoji) for run, emoji in _runs(text))

    def draw(self, image: Image.Image, x: float, baseline: float, text: str, fill: Colour) -> None:
        runs = _runs(text)
        if self.direction == "rtl":
            runs.reverse()
        draw = ImageDraw.Draw(image)
        for run, emoji in runs:
            if emoji:
                glyphs, (left, top) = _emoji_image(run)
                size = (
                    max(1, round(glyphs.width * self._scale)),
                    max(1, round(glyphs.height * self._scale)),
                )
                scaled = glyphs.resize(size, Image.Resampling.LANCZOS)
                image.paste(
                    scaled,
                    (round(x + left * self._scale), round(baseline + top * self._scale)),
                    scaled,
                )
            else:
                draw.text(
                    (x, baseline),
                    run,
                    font=self.font,
                    fill=fill,
                    anchor="ls",
                    direction=self.direction,
                )
            x += self._run_width(run, emoji)


@lru_cache(maxsize=256)
def _emoji_image(run: str) -> tuple[Image.Image, tuple[int, int]]:
    """An emoji cluster at the font's native size, and its offset from the pen position."""
    font = _emoji_font()
    assert font is not None
    left, top, right, bottom = font.getbbox(run, anchor="ls")
    image = Image.new("RGBA", (max(1, right - left), max(1, bottom - top)), (0, 0, 0, 0))
    ImageDraw.Draw(image).text((-left, -top), run, font=font, anchor="ls", embedded_color=True)
    return image, (left, top)


_BREAK_AFTER = "/-._?&=#,;:"


def _break_word(word: str, fits: Callable[[str], bool]) -> list[str]:
    """Cut a word wider than the line (a URL, a giant name), preferring after / . - etc."""
    pieces: list[str] = []
    current = ""
    for ch in word:
        if current and not fits(current + ch):
            cut = max(current.rfind(c) for c in _BREAK_AFTER) + 1
            if cut < len(current) // 2:
                cut = len(current)
            pieces.append(current[:cut])
            current = current[cut:]
        current += ch
    if current:
        pieces.append(current)
    return pieces


def _wrap(text: str, fits: Callable[[str], bool]) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if fits(candidate):
            current = candidate
            continue
        if current:
            lines.append(current)
        if fits(word):
            current = word
        else:
            *full, current = _break_word(word, fits)
            lines.extend(full)
    if current:
        lines.append(current)
    return lines


def _ellipsize(text: str, fits: Callable[[str], bool]) -> str:
    while text and not fits(text + "…"):
        text = text[:-1]
    return text.rstrip() + "…"


@dataclass(slots=True)
class _Block:
    """A piece of text fitted into a width: its typesetter, wrapped lines and colour."""

    typeset: _Typeset
    lines: list[str]
    fill: Colour

    @property
    def line_height(self) -> float:
        return (self.typeset.ascent + self.typeset.descent) * 1.12

    @property
    def height(self) -> float:
        return self.line_height * len(self.lines)


def _fit(text: str, style: Style, max_width: float, scale: float, direction: str) -> _Block:
    """Wrap text into at most `style.max_lines` lines, shrinking the type (then ellipsizing)."""
    path = BOLD_FONT if style.bold else REGULAR_FONT
    size = max(8, round(style.size * scale))
    min_size = max(8, min(size, round(style.min_size * scale)))
    while True:
        typeset = _Typeset(path, size, direction)

        def fits(candidate: str, typeset: _Typeset = typeset) -> bool:
            return typeset.width(candidate) <= max_width

        lines = _wrap(text, fits)
        if len(lines) <= style.max_lines or size <= min_size:
            break
        size = max(min_size, int(size * 0.9))
    if len(lines) > style.max_lines:
        lines = lines[: style.max_lines]
        lines[-1] = _ellipsize(lines[-1], fits)
    elif len(lines) > 1:
        lines = _balance(text, typeset, max_width, len(lines))
    return _Block(typeset, lines, WHITE)


def _balance(text: str, typeset: _Typeset, max_width: float, count: int) -> list[str]:
    """The narrowest wrap with the same number of lines, so no line is left with one word."""
    lo, hi = max_width * 0.4, max_width

    def wrap(limit: float) -> list[str]:
        return _wrap(text, lambda candidate: typeset.width(candidate) <= limit)

    for _ in range(7):
        mid = (lo + hi) / 2
        if len(wrap(mid)) <= count:
            hi = mid
        else:
            lo = mid
    return wrap(hi)


# --------------------------------------------------------------------------- colours


@dataclass(frozen=True, slots=True)
class Palette:
    background: Colour
    text: Colour
    muted: Colour
    accent: Colour


def _parse_colour(value: str) -> Colour | None:
    value = (value or "").strip().lstrip("#")
    if len(value) == 3:
        value = "".join(ch * 2 for ch in value)
    if len(value) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in value):
        return None
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def _luminance(colour: Colour) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: Colour, b: Colour) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _mix(a: Colour, b: Colour, amount: float) -> Colour:
    r, g, bl = (round(x + (y - x) * amount) for x, y in zip(a, b, strict=True))
    return (r, g, bl)


@lru_cache(maxsize=64)
def palette(brand_color: str) -> Palette:
    """Brand background with white or ink text, adjusted until the contrast is at least 4.5:1."""
    background = _parse_colour(brand_color) or _parse_colour(DEFAULT_BRAND)
    assert background is not None
    text = WHITE if _contrast(WHITE, background) >= _contrast(INK, background) else INK
    away = (0, 0, 0) if text == WHITE else WHITE
    for _ in range(30):
        if _contrast(text, background) >= 4.5:
            break
        background = _mix(background, away, 0.08)
    muted = _mix(text, background, 0.18)
    if _contrast(muted, background) < 4.5:
        muted = text
    return Palette(background, text, muted, _mix(background, text, 0.1))


# --------------------------------------------------------------------------- drawing


_KEEP_TOGETHER = frozenset({"amount", "due_date"})  # never wrapped in the middle
RTL_LANGS = frozenset({"ar", "fa", "he", "ur"})


def _direction(view: DebtorView) -> str:
    """The paragraph direction follows the language of the texts, not the debtor's name.

    `view.text_direction` may say "rtl" for an Arabic name in an English video; laying the
    English sentences out right-to-left would scramble them ("€ 1.234,56", ".2026"). Names are
    bidi-isolated instead (see `_values`), so they read correctly inside any sentence.
    """
    return "rtl" if view.lang.split("-")[0].lower() in RTL_LANGS else "ltr"


def _has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text)


def _values(view: DebtorView) -> dict[str, str]:
    """The view's text fields for the templates; right-to-left ones wrapped in FSI … PDI."""
    out: dict[str, str] = {}
    for f in fields(view):
        value = getattr(view, f.name)
        if not isinstance(value, str):
            continue
        if f.name in _KEEP_TOGETHER:
            value = value.replace(" ", "\u00a0")
        if _has_rtl(value):
            value = f"\u2068{value}\u2069"
        out[f.name] = value
    return out


def _scene_texts(view: DebtorView, scene: Scene) -> list[str]:
    texts = load_texts("video").for_lang(view.lang)
    values = _values(view)  # note: has a "lang" field, so Texts.get(lang, ...) cannot take it
    out = []
    for line in scene.lines:
        raw = (texts[line.key] if line.key else line.value).format(**values)
        out.append(_clean(raw))
    return out


def _background(colours: Palette, index: int, creditor: str, direction: str) -> Image.Image:
    """The brand background with soft shapes, the creditor's name and progress dots."""
    image = Image.new("RGB", (WIDTH, HEIGHT), colours.background)
    draw = ImageDraw.Draw(image)
    draw.ellipse((WIDTH - 330, -260, WIDTH + 290, 360), fill=colours.accent)
    draw.ellipse((-200, HEIGHT - 150, 160, HEIGHT + 210), fill=colours.accent)
    footer = _fit(creditor, STYLES["footer"], WIDTH - 2 * MARGIN_X - 200, 1.0, direction)
    if footer.lines:
        footer.typeset.draw(image, MARGIN_X, HEIGHT - 40, footer.lines[0], colours.muted)
    for i in range(len(SCENES)):
        cx = WIDTH - MARGIN_X - (len(SCENES) - 1 - i) * 28
        r = 7 if i == index else 5
        fill = colours.text if i == index else colours.muted
        if i == index:
            draw.ellipse((cx - r, HEIGHT - 56 - r, cx + r, HEIGHT - 56 + r), fill=fill)
        else:
            draw.ellipse((cx - r, HEIGHT - 56 - r, cx + r, HEIGHT - 56 + r), outline=fill, width=2)
    return image


def _fit_blocks(
    scene: Scene,
    texts: list[str],
    width: float,
    max_height: float,
    colours: Palette,
    direction: str,
) -> tuple[list[_Block], float]:
    """Fit every line of a scene into `width`, shrinking all of them until they fit `max_height`."""
    gap = 0.0
    scale = 1.0
    blocks: list[_Block] = []
    for _ in range(12):
        blocks = []
        for line, text in zip(scene.lines, texts, strict=True):
            style = STYLES[line.style]
            block = _fit(text, style, width, scale, direction)
            block.fill = colours.muted if style.muted else colours.text
            blocks.append(block)
        gap = 26 * scale
        total = sum(b.height for b in blocks) + gap * (len(blocks) - 1)
        if total <= max_height:
            break
        scale *= 0.9
    return blocks, gap


def _draw_blocks(
    image: Image.Image,
    blocks: list[_Block],
    gap: float,
    left: float,
    right: float,
    top: float,
    align: str,
) -> None:
    y = top
    for block in blocks:
        for text in block.lines:
            width = block.typeset.width(text)
            if align == "center":
                x = left + (right - left - width) / 2
            elif align == "right":
                x = right - width
            else:
                x = left
            baseline = y + (block.line_height - block.typeset.ascent - block.typeset.descent) / 2
            block.typeset.draw(image, x, baseline + block.typeset.ascent, text, block.fill)
            y += block.line_height
        y += gap


def _qr_image(url: str) -> Image.Image:
    """The QR code as RGB, scaled by whole modules to roughly QR_TARGET_PX."""
    qr = Image.open(io.BytesIO(qr_png(url, scale=1, border=4))).convert("RGB")
    factor = QR_TARGET_PX // qr.width
    size = qr.width * factor if factor >= 1 else QR_TARGET_PX
    if size < 300:  # very dense code: stretch anyway rather than be too small to scan
        size = QR_TARGET_PX
    return qr.resize((size, size), Image.Resampling.NEAREST)


def _draw_scene(view: DebtorView, index: int) -> Image.Image:
    scene = SCENES[index]
    direction = _direction(view)
    colours = palette(view.brand_color)
    image = _background(colours, index, _clean(view.creditor), direction)
    texts = _scene_texts(view, scene)
    top_limit, bottom_limit = 60, HEIGHT - 100
    if scene.layout == "qr":
        qr = _qr_image(view.site_url)
        pad = 14
        card = qr.width + 2 * pad
        card_y = (HEIGHT - card) // 2 - 10
        card_x = MARGIN_X if direction == "ltr" else WIDTH - MARGIN_X - card
        ImageDraw.Draw(image).rounded_rectangle(
            (card_x, card_y, card_x + card, card_y + card), radius=22, fill=WHITE
        )
        image.paste(qr, (card_x + pad, card_y + pad))
        if direction == "ltr":
            left, right, align = card_x + card + 64, WIDTH - MARGIN_X, "left"
        else:
            left, right, align = MARGIN_X, card_x - 64, "right"
        blocks, gap = _fit_blocks(scene, texts, right - left, card, colours, direction)
        total = sum(b.height for b in blocks) + gap * (len(blocks) - 1)
        top = card_y + (card - total) / 2
    else:
        left, right, align = MARGIN_X, WIDTH - MARGIN_X, "center"
        max_height = bottom_limit - top_limit
        blocks, gap = _fit_blocks(scene, texts, right - left, max_height, colours, direction)
        total = sum(b.height for b in blocks) + gap * (len(blocks) - 1)
        top = top_limit + (max_height - total) / 2
    _draw_blocks(image, blocks, gap, left, right, top, align)
    return image


def _scene_images(view: DebtorView) -> list[Image.Image]:
    return [_draw_scene(view, i) for i in range(len(SCENES))]


# --------------------------------------------------------------------------- public API


def render_poster(view: DebtorView) -> bytes:
    """The greeting scene as a 1280×720 JPEG, for the video tag's poster attribute."""
    out = io.BytesIO()
    _draw_scene(view, 0).save(out, format="JPEG", quality=88, optimize=True)
    return out.getvalue()


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_captions(view: DebtorView) -> bytes:
    """WebVTT captions: one cue per scene, the scene's own texts at the scene's own times."""
    parts = ["WEBVTT", ""]
    start = 0.0
    for scene in SCENES:
        texts = _scene_texts(view, scene)
        rows: list[str] = []
        for line, text in zip(scene.lines, texts, strict=True):
            if line.joins and rows:
                rows[-1] = f"{rows[-1]} {text}"
            else:
                rows.append(text)
        end = start + scene.seconds
        parts.append(scene.name)
        parts.append(f"{_timestamp(start)} --> {_timestamp(end)}")
        parts.extend(_vtt_escape(row) for row in rows if row)
        parts.append("")
        start = end
    return "\n".join(parts).encode("utf-8")


def video_duration() -> float:
    """The length of every video, in seconds."""
    return sum(scene.seconds for scene in SCENES)


def render_video(view: DebtorView, out_path: str | os.PathLike) -> None:
    """Write the debtor's video to `out_path`: 1280×720 H.264 (yuv420p) MP4, 24 fps, silent."""
    from moviepy import ImageClip, concatenate_videoclips, vfx

    images = _scene_images(view)
    fade_colour = list(palette(view.brand_color).background)
    clips = []
    for i, (scene, image) in enumerate(zip(SCENES, images, strict=True)):
        clip = ImageClip(np.asarray(image), duration=scene.seconds)
        effects = []
        if i > 0:
            effects.append(vfx.FadeIn(FADE_SECONDS, initial_color=fade_colour))
        if i < len(SCENES) - 1:
            effects.append(vfx.FadeOut(FADE_SECONDS, final_color=fade_colour))
        clips.append(clip.with_effects(effects) if effects else clip)
    video = concatenate_videoclips(clips, method="chain")

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # beside the target (same file system, so the final rename is atomic); ffmpeg creates it
    tmp = out.parent / f".{out.stem}.{secrets.token_hex(6)}.tmp.mp4"
    try:
        video.write_videofile(
            str(tmp),
            fps=FPS,
            codec="libx264",
            audio=False,
            preset="veryfast",
            ffmpeg_params=["-movflags", "+faststart", "-pix_fmt", "yuv420p"],
            logger=None,
        )
        os.replace(tmp, out)
    except (OSError, ValueError) as exc:
        raise RenderError(f"video encoding failed for {out}: {exc}") from exc
    finally:
        video.close()
        for clip in clips:
            clip.close()
        tmp.unlink(missing_ok=True)
