"""The personal video: template scenes drawn as stills with Pillow, encoded and joined by ffmpeg.

A template (`templates/video/<name>.json`, see `video_template`) lists scenes; each is drawn
once per debtor (personal) or once per campaign, language and tone (invariant) into one
1280×720 RGB image. `video_encode` turns stills into H.264 segments with fades, keeps invariant
segments in a `SegmentCache`, and joins everything with one continuous AAC track without
re-encoding. Captions (WebVTT) and the poster come from the very same scene data, so texts and
timings always agree. Text is only ever drawn by Pillow: nothing from the portfolio reaches a
filter graph or a shell.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, features

from kindly.infra.paths import ASSETS, FONTS
from renderer import video_encode
from renderer.qr import qr_png
from renderer.video_cache import SegmentCache, default_cache
from renderer.video_template import (
    DEFAULT_TEMPLATE,
    Line,
    Scene,
    VideoTemplate,
    load_template,
    scene_text,
    video_ctas,
)
from renderer.view import DebtorView

try:  # a shared error type, if the renderer package has one by now
    from renderer.errors import RenderError
except ImportError:  # pragma: no cover - depends on what else is in the package

    class RenderError(Exception):
        """Rendering a debtor's material failed (missing font, encoder error, …)."""


__all__ = [
    "Line",
    "RenderError",
    "Scene",
    "render_captions",
    "render_poster",
    "render_video",
    "video_ctas",
    "video_duration",
    "warm",
]

WIDTH, HEIGHT = 1280, 720
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


SYSTEM_FONTS = Path("/usr/share/fonts/truetype")
FALLBACK_FONTS = (  # tried in order for characters DejaVu lacks; {weight} is Regular or Bold
    "noto/NotoSans-{weight}.ttf",
    "noto/NotoSansArabic-{weight}.ttf",
    "noto/NotoSansHebrew-{weight}.ttf",
    "noto/NotoRashiHebrew-{weight}.ttf",
    "noto/NotoSansDevanagari-{weight}.ttf",
    "noto/NotoSansBengali-{weight}.ttf",
    "noto/NotoSansTamil-{weight}.ttf",
    "noto/NotoSansThai-{weight}.ttf",
    "noto/NotoLoopedThai-{weight}.ttf",
    "noto/NotoSansArmenian-{weight}.ttf",
    "noto/NotoSansGeorgian-{weight}.ttf",
    "noto/NotoSansEthiopic-{weight}.ttf",
    "noto/NotoSansKhmer-{weight}.ttf",
    "droid/DroidSansFallbackFull.ttf",  # Chinese, Japanese, Korean
)


@lru_cache(maxsize=64)
def _coverage(path: Path) -> frozenset[int]:
    """The code points a font has glyphs for (read once from its cmap)."""
    from fontTools.ttLib import TTFont

    try:
        with TTFont(str(path), lazy=True) as font:
            return frozenset(font.getBestCmap() or ())
    except Exception:  # an unreadable font simply covers nothing
        return frozenset()


@lru_cache(maxsize=4)
def _fallbacks(bold: bool) -> tuple[Path, ...]:
    """The system's fallback fonts for one weight (system fonts: nothing is downloaded)."""
    out = []
    for pattern in FALLBACK_FONTS:
        for weight in ("Bold", "Regular") if bold else ("Regular",):
            path = SYSTEM_FONTS / pattern.format(weight=weight)
            if path.is_file():
                out.append(path)
                break
    return tuple(out)


def _font_runs(text: str, primary: Path, bold: bool) -> list[tuple[str, Path]]:
    """Split text into runs by the first font that has each character's glyph.

    Marks, joiners and spaces stay with the run before them, so clusters are never split.
    """
    covered = _coverage(primary)
    if all(ord(ch) in covered for ch in text):
        return [(text, primary)]
    runs: list[tuple[str, Path]] = []
    for ch in text:
        code = ord(ch)
        if runs and (unicodedata.category(ch)[0] in "MZC" or ch in "\u200c\u200d"):
            path = runs[-1][1]
        elif code in covered:
            path = primary
        else:
            path = next((f for f in _fallbacks(bold) if code in _coverage(f)), primary)
        if runs and runs[-1][1] == path:
            runs[-1] = (runs[-1][0] + ch, path)
        else:
            runs.append((ch, path))
    return runs


class _Typeset:
    """Measures and draws one line of text (with emoji runs) in one font and direction.

    Characters the font lacks (CJK, Devanagari, Thai…) are drawn with a system fallback font
    at the same size instead of boxes.
    """

    def __init__(self, path: Path, size: int, direction: str):
        self.path = path
        self.bold = path == BOLD_FONT
        self.font = _font(path, size)
        self.size = size
        self.direction = direction if HAS_RAQM else None
        self.ascent, self.descent = self.font.getmetrics()
        self._scale = size / EMOJI_FONT_SIZE

    def _pieces(self, text: str) -> list[tuple[str, ImageFont.FreeTypeFont | None]]:
        """(run, font) in logical order; font None for an emoji run."""
        out: list[tuple[str, ImageFont.FreeTypeFont | None]] = []
        for run, emoji in _runs(text):
            if emoji:
                out.append((run, None))
                continue
            for piece, path in _font_runs(run, self.path, self.bold):
                out.append((piece, self.font if path == self.path else _font(path, self.size)))
        return out

    def _run_width(self, run: str, font: ImageFont.FreeTypeFont | None) -> float:
        if font is None:
            emoji = _emoji_font()
            assert emoji is not None
            return emoji.getlength(run) * self._scale
        return font.getlength(run, direction=self.direction)

    def width(self, text: str) -> float:
        return sum(self._run_width(run, font) for run, font in self._pieces(text))

    def draw(self, image: Image.Image, x: float, baseline: float, text: str, fill: Colour) -> None:
        runs = self._pieces(text)
        if self.direction == "rtl":
            runs.reverse()
        draw = ImageDraw.Draw(image)
        for run, font in runs:
            if font is None:
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
                    font=font,
                    fill=fill,
                    anchor="ls",
                    direction=self.direction,
                )
            x += self._run_width(run, font)


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
    """The narrowest wrap with the same number of lines, so no line is left with one word.

    A narrower wrap that would cut a word the full width keeps whole ("Scansion / i il
    codice") is not taken.
    """
    lo, hi = max_width * 0.4, max_width

    def wrap(limit: float) -> list[str]:
        return _wrap(text, lambda candidate: typeset.width(candidate) <= limit)

    whole = text.split()
    must_cut = " ".join(wrap(max_width)).split() != whole  # a URL wider than the line
    for _ in range(7):
        mid = (lo + hi) / 2
        lines = wrap(mid)
        if len(lines) <= count and (must_cut or " ".join(lines).split() == whole):
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


def tone(view: DebtorView) -> str:
    """The debtor's tone variant ("" for the template's own wording)."""
    return getattr(view, "tone", "") or (view.extra or {}).get("tone", "")


def template_for(view: DebtorView, name: str | None = None) -> VideoTemplate:
    """The video template for a debtor: `name`, the view's `video_template`, or the default."""
    chosen = name or (view.extra or {}).get("video_template") or DEFAULT_TEMPLATE
    return load_template(chosen, view.lang, tone(view))


def _scene_texts(view: DebtorView, template: VideoTemplate, scene: Scene) -> list[str]:
    values = _values(view)  # note: has a "lang" field, so it cannot be passed as a keyword
    out = []
    for line in scene.lines:
        raw = line.value or scene_text(template.lang, template.tone, line.key)
        out.append(_clean(raw.format(**values)))
    return out


@lru_cache(maxsize=8)
def _background_image(path: str) -> Image.Image:
    """A background picture from assets/, cover-scaled to the frame."""
    full = (ASSETS / path).resolve()
    if ASSETS.resolve() not in full.parents or not full.is_file():
        raise RenderError(f"background image not found under assets/: {path}")
    image = Image.open(full).convert("RGB")
    scale = max(WIDTH / image.width, HEIGHT / image.height)
    size = (round(image.width * scale), round(image.height * scale))
    image = image.resize(size, Image.Resampling.LANCZOS)
    left, top = (image.width - WIDTH) // 2, (image.height - HEIGHT) // 2
    return image.crop((left, top, left + WIDTH, top + HEIGHT))


@lru_cache(maxsize=16)
def _logo(uri: str) -> Image.Image | None:
    """The creditor's logo (a data:image URI), at most 200×56 px; None without a readable one."""
    if not uri.startswith("data:image/") or ";base64," not in uri:
        return None  # never a path: the renderer reads no file it is told of
    try:
        data = base64.b64decode(uri.split(";base64,", 1)[1], validate=True)
        image = Image.open(io.BytesIO(data)).convert("RGBA")
    except (OSError, ValueError):
        return None
    image.thumbnail((200, 56), Image.Resampling.LANCZOS)
    return image


@lru_cache(maxsize=16)
def _logo_id(uri: str) -> str:
    """What the logo's pixels depend on, for cache keys."""
    return hashlib.sha256(uri.encode()).hexdigest() if uri else ""


def _background(
    colours: Palette,
    scene: Scene,
    index: int,
    count: int,
    creditor: str,
    direction: str,
    logo: Image.Image | None = None,
) -> Image.Image:
    """The brand background with soft shapes, the creditor's name and progress dots."""
    if scene.background.startswith("image:"):
        image = _background_image(scene.background.removeprefix("image:")).copy()
    else:
        fill = colours.background
        if scene.background != "brand":
            fill = _parse_colour(scene.background) or colours.background
        image = Image.new("RGB", (WIDTH, HEIGHT), fill)
        draw = ImageDraw.Draw(image)
        draw.ellipse((WIDTH - 330, -260, WIDTH + 290, 360), fill=colours.accent)
        draw.ellipse((-200, HEIGHT - 150, 160, HEIGHT + 210), fill=colours.accent)
    if logo is not None:
        image.paste(logo, (MARGIN_X, 36), logo)
    draw = ImageDraw.Draw(image)
    footer = _fit(creditor, STYLES["footer"], WIDTH - 2 * MARGIN_X - 200, 1.0, direction)
    if footer.lines:
        footer.typeset.draw(image, MARGIN_X, HEIGHT - 40, footer.lines[0], colours.muted)
    for i in range(count):
        cx = WIDTH - MARGIN_X - (count - 1 - i) * 28
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


def _draw_content(
    target: Image.Image, view: DebtorView, template: VideoTemplate, index: int
) -> None:
    """Draw a scene's QR card and text onto `target` (the background, or a clear layer)."""
    scene = template.scenes[index]
    direction = _direction(view)
    colours = palette(view.brand_color)
    texts = _scene_texts(view, template, scene)
    top_limit, bottom_limit = 60, HEIGHT - 100
    if scene.layout == "qr":
        qr = _qr_image(view.site_url)
        pad = 14
        card = qr.width + 2 * pad
        card_y = (HEIGHT - card) // 2 - 10
        card_x = MARGIN_X if direction == "ltr" else WIDTH - MARGIN_X - card
        ImageDraw.Draw(target).rounded_rectangle(
            (card_x, card_y, card_x + card, card_y + card), radius=22, fill=WHITE
        )
        target.paste(qr, (card_x + pad, card_y + pad))
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
    _draw_blocks(target, blocks, gap, left, right, top, align)


def _scene_background(view: DebtorView, template: VideoTemplate, index: int) -> Image.Image:
    scene = template.scenes[index]
    colours = palette(view.brand_color)
    count = len(template.scenes)
    logo = _logo(getattr(view, "logo", ""))
    creditor = _clean(view.creditor)
    return _background(colours, scene, index, count, creditor, _direction(view), logo)


def _draw_scene(view: DebtorView, index: int, template: VideoTemplate | None = None) -> Image.Image:
    """Scene `index` of the debtor's video as one 1280×720 RGB picture."""
    template = template or template_for(view)
    image = _scene_background(view, template, index)
    _draw_content(image, view, template, index)
    return image


def scene_layers(
    view: DebtorView, template: VideoTemplate, index: int
) -> tuple[Image.Image, Image.Image]:
    """The background and, separately, the text and QR as an RGBA layer: what the naive
    moviepy baseline in bench/bench_video.py composites per frame."""
    background = _scene_background(view, template, index)
    layer = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    _draw_content(layer, view, template, index)
    return background, layer


# --------------------------------------------------------------------------- public API


def render_poster(view: DebtorView, *, template: str | None = None) -> bytes:
    """The greeting scene as a 1280×720 JPEG, for the video tag's poster attribute."""
    out = io.BytesIO()
    _draw_scene(view, 0, template_for(view, template)).save(
        out, format="JPEG", quality=88, optimize=True
    )
    return out.getvalue()


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
        texts = _scene_texts(view, chosen, scene)
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


def video_duration(template: str = DEFAULT_TEMPLATE, lang: str = "en") -> float:
    """The length of a template's video in seconds."""
    return load_template(template, lang).duration


# --------------------------------------------------------------------------- the fast path


@lru_cache(maxsize=1)
def _code_id() -> str:
    """A hash of the drawing and encoding code and fonts: changing any of them renews segments."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("video.py", "video_encode.py", "video_template.py", "qr.py"):
        digest.update((here / name).read_bytes())
    for font in (REGULAR_FONT, BOLD_FONT, *_fallbacks(False), *_fallbacks(True)):
        digest.update(f"{font}:{font.stat().st_size if font.is_file() else -1}".encode())
    return digest.hexdigest()


def _key(kind: str, ext: str, inputs: dict[str, Any]) -> str:
    inputs = {**inputs, "code": _code_id(), "encoder": video_encode.encoder_id()}
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
            "logo": _logo_id(getattr(view, "logo", "")),
            "fps": template.fps,
            "fade": template.fade_seconds,
            "video_args": video_encode.VIDEO_ARGS,
        },
    )


def _audio_key(template: VideoTemplate) -> str:
    music = template.music
    return _key(
        "audio",
        "m4a",
        {
            "music": hashlib.sha256(music.read_bytes()).hexdigest() if music else None,
            "frames": template.frames,
            "fps": template.fps,
            "volume": template.volume,
            "audio_args": video_encode.AUDIO_ARGS,
        },
    )


def _still(view: DebtorView, template: VideoTemplate, index: int) -> video_encode.Still:
    scene = template.scenes[index]
    fade = round(template.fade_seconds * template.fps)
    background = _scene_background(view, template, index)
    image = background.copy()
    _draw_content(image, view, template, index)
    return video_encode.Still(
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


def _ensure(cache: SegmentCache, key: str, folder: Path, make: Callable[[Path], None]) -> Path:
    """The cached file for `key`, made once with `make(path)` on a miss."""
    found = _cached_file(cache, key, folder)
    if found is not None:
        return found
    made = folder / f"made-{key.replace('/', '-')}"
    make(made)
    cache.put(key, made.read_bytes())
    return _cached_file(cache, key, folder) or made


def _invariant_segment(
    view: DebtorView, template: VideoTemplate, index: int, cache: SegmentCache, folder: Path
) -> Path:
    """An invariant scene's segment: from the cache, or encoded once and cached."""

    def make(path: Path) -> None:
        still = _still(view, template, index)
        (made,) = video_encode.encode_stills([still], folder, pieces=False, prefix=f"scene{index}")
        made.rename(path)

    return _ensure(cache, _invariant_key(view, template, index), folder, make)


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
    if (chosen.width, chosen.height, chosen.fps) != (WIDTH, HEIGHT, video_encode.FPS):
        raise RenderError(f"template {chosen.name}: only {WIDTH}x{HEIGHT} at 25 fps is supported")
    cache = cache if cache is not None else default_cache()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="kindly-video-") as tmp:
            folder = Path(tmp)
            # personal scenes first, in one ffmpeg run; invariant ones from the cache
            personal = [i for i, scene in enumerate(chosen.scenes) if scene.personal]
            stills = [_still(view, chosen, i) for i in personal]
            pieces = video_encode.encode_stills(stills, folder, prefix="personal") if stills else []
            segments: list[Path] = []
            for index, scene in enumerate(chosen.scenes):
                if scene.personal:
                    prefix = f"personal-{personal.index(index)}-"
                    segments += [p for p in pieces if p.name.startswith(prefix)]
                else:
                    segments.append(_invariant_segment(view, chosen, index, cache, folder))
            audio = _ensure(
                cache,
                _audio_key(chosen),
                folder,
                lambda path: video_encode.encode_audio(
                    chosen.music, chosen.duration, chosen.volume, path
                ),
            )
            tmp_out = folder / "video.mp4"
            video_encode.join(segments, audio, tmp_out, folder)
            # beside the target (same file system), then renamed: readers never see half a file
            fd, beside = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle, tmp_out.open("rb") as source:
                    handle.write(source.read())
                os.replace(beside, out)
            except BaseException:
                Path(beside).unlink(missing_ok=True)
                raise
    except video_encode.EncodeError as exc:
        raise RenderError(f"video encoding failed for {out}: {exc}") from exc


def warm(templates: tuple[str, ...] | None = None) -> None:
    """Load templates, fonts and the encoder's identity once, before a worker forks its jobs."""
    from renderer.video_template import template_names

    for name in templates or tuple(template_names()):
        for lang in load_texts_langs():
            load_template(name, lang)
    for style in STYLES.values():
        for path in (REGULAR_FONT, BOLD_FONT):
            _font(path, style.size)
    _emoji_font()
    for path in (REGULAR_FONT, BOLD_FONT, *_fallbacks(False), *_fallbacks(True)):
        _coverage(path)
    _code_id()
    video_encode.encoder_id()


def load_texts_langs() -> list[str]:
    """The languages the video texts exist in."""
    from renderer.texts import load_texts

    return load_texts("video").languages()
