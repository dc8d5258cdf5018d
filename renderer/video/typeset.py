"""Text for the video's stills: fonts, emoji, script fallbacks, wrapping and fitting.

Text is only ever drawn by Pillow: nothing from the portfolio reaches a filter graph or a shell.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, features

from kindly.infra.paths import FONTS
from renderer.errors import RenderError
from renderer.video.palette import WHITE, Colour

REGULAR_FONT = FONTS / "DejaVuSans.ttf"
BOLD_FONT = FONTS / "DejaVuSans-Bold.ttf"
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_FONT_SIZE = 109  # the only size the bitmap emoji font has

HAS_RAQM = features.check("raqm")  # without it: no bidi reordering or Arabic shaping, no crash


@dataclass(frozen=True, slots=True)
class Style:
    """How one kind of line is set: weight, size, how far it may shrink, how many lines."""

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


@lru_cache(maxsize=128)
def load_font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """A font by .ttf path and pixel size, loaded once per process."""
    if not path.is_file():
        raise RenderError(f"font not found: {path}")
    engine = ImageFont.Layout.RAQM if HAS_RAQM else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(path), size, layout_engine=engine)


@lru_cache(maxsize=1)
def emoji_font() -> ImageFont.FreeTypeFont | None:
    """Noto Color Emoji if the system has it (and Pillow can load it), else None."""
    if not EMOJI_FONT.is_file():
        return None
    try:
        return load_font(EMOJI_FONT, EMOJI_FONT_SIZE)
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


def clean_text(text: str) -> str:
    """Plain single-line text: control characters gone, runs of whitespace one space."""
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    return _SPACES_RE.sub(" ", text).strip()


def emoji_runs(text: str) -> list[tuple[str, bool]]:
    """Split text into (run, is_emoji). Without the emoji font, emoji are dropped (no tofu)."""
    have_emoji = emoji_font() is not None
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
def coverage(path: Path) -> frozenset[int]:
    """The code points a font has glyphs for (read once from its cmap)."""
    from fontTools.ttLib import TTFont

    try:
        with TTFont(str(path), lazy=True) as font:
            return frozenset(font.getBestCmap() or ())
    except Exception:  # an unreadable font simply covers nothing
        return frozenset()


@lru_cache(maxsize=4)
def fallbacks(bold: bool) -> tuple[Path, ...]:
    """The system's fallback fonts for one weight (system fonts: nothing is downloaded)."""
    out = []
    for pattern in FALLBACK_FONTS:
        for weight in ("Bold", "Regular") if bold else ("Regular",):
            path = SYSTEM_FONTS / pattern.format(weight=weight)
            if path.is_file():
                out.append(path)
                break
    return tuple(out)


def font_runs(text: str, primary: Path, bold: bool) -> list[tuple[str, Path]]:
    """Split text into runs by the first font that has each character's glyph.

    Marks, joiners and spaces stay with the run before them, so clusters are never split.
    """
    covered = coverage(primary)
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
            path = next((f for f in fallbacks(bold) if code in coverage(f)), primary)
        if runs and runs[-1][1] == path:
            runs[-1] = (runs[-1][0] + ch, path)
        else:
            runs.append((ch, path))
    return runs


class Typeset:
    """Measures and draws one line of text (with emoji runs) in one font and direction.

    Characters the font lacks (CJK, Devanagari, Thai…) are drawn with a system fallback font
    at the same size instead of boxes.
    """

    def __init__(self, path: Path, size: int, direction: str):
        self.path = path
        self.bold = path == BOLD_FONT
        self.font = load_font(path, size)
        self.size = size
        self.direction = direction if HAS_RAQM else None
        self.ascent, self.descent = self.font.getmetrics()
        self._scale = size / EMOJI_FONT_SIZE

    def _pieces(self, text: str) -> list[tuple[str, ImageFont.FreeTypeFont | None]]:
        """(run, font) in logical order; font None for an emoji run."""
        out: list[tuple[str, ImageFont.FreeTypeFont | None]] = []
        for run, emoji in emoji_runs(text):
            if emoji:
                out.append((run, None))
                continue
            for piece, path in font_runs(run, self.path, self.bold):
                out.append((piece, self.font if path == self.path else load_font(path, self.size)))
        return out

    def _run_width(self, run: str, font: ImageFont.FreeTypeFont | None) -> float:
        if font is None:
            emoji = emoji_font()
            assert emoji is not None
            return emoji.getlength(run) * self._scale
        return font.getlength(run, direction=self.direction)

    def width(self, text: str) -> float:
        """The drawn width of one line of text in pixels."""
        return sum(self._run_width(run, font) for run, font in self._pieces(text))

    def draw(self, image: Image.Image, x: float, baseline: float, text: str, fill: Colour) -> None:
        """Draw one line of text with its left end at `x` on `baseline`."""
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
    font = emoji_font()
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
class Block:
    """A piece of text fitted into a width: its typesetter, wrapped lines and colour."""

    typeset: Typeset
    lines: list[str]
    fill: Colour

    @property
    def line_height(self) -> float:
        return (self.typeset.ascent + self.typeset.descent) * 1.12

    @property
    def height(self) -> float:
        return self.line_height * len(self.lines)


def fit(text: str, style: Style, max_width: float, scale: float, direction: str) -> Block:
    """Wrap text into at most `style.max_lines` lines, shrinking the type (then ellipsizing)."""
    path = BOLD_FONT if style.bold else REGULAR_FONT
    size = max(8, round(style.size * scale))
    min_size = max(8, min(size, round(style.min_size * scale)))
    while True:
        typeset = Typeset(path, size, direction)

        def fits(candidate: str, typeset: Typeset = typeset) -> bool:
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
    return Block(typeset, lines, WHITE)


def _balance(text: str, typeset: Typeset, max_width: float, count: int) -> list[str]:
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
