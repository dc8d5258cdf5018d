"""The video's colours: the brand background with text kept at a contrast of at least 4.5:1."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

DEFAULT_BRAND = "#1f5f8b"
WHITE = (255, 255, 255)
INK = (22, 26, 31)

Colour = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Palette:
    """The colours of one brand's scenes."""

    background: Colour
    text: Colour
    muted: Colour
    accent: Colour


def parse_colour(value: str) -> Colour | None:
    """`#rgb` or `#rrggbb` as a colour; None for anything else."""
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


def contrast(a: Colour, b: Colour) -> float:
    """The WCAG contrast ratio of two colours (1 to 21)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _mix(a: Colour, b: Colour, amount: float) -> Colour:
    r, g, bl = (round(x + (y - x) * amount) for x, y in zip(a, b, strict=True))
    return (r, g, bl)


@lru_cache(maxsize=64)
def palette(brand_color: str) -> Palette:
    """Brand background with white or ink text, adjusted until the contrast is at least 4.5:1."""
    background = parse_colour(brand_color) or parse_colour(DEFAULT_BRAND)
    assert background is not None
    text = WHITE if contrast(WHITE, background) >= contrast(INK, background) else INK
    away = (0, 0, 0) if text == WHITE else WHITE
    for _ in range(30):
        if contrast(text, background) >= 4.5:
            break
        background = _mix(background, away, 0.08)
    muted = _mix(text, background, 0.18)
    if contrast(muted, background) < 4.5:
        muted = text
    return Palette(background, text, muted, _mix(background, text, 0.1))
