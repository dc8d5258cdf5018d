"""The video's scenes drawn as 1280×720 stills: background, logo, text blocks and QR card."""

from __future__ import annotations

import base64
import hashlib
import io
import unicodedata
from dataclasses import fields
from functools import lru_cache

from PIL import Image, ImageDraw

from kindly.infra.paths import ASSETS
from renderer.errors import RenderError
from renderer.qr import qr_png
from renderer.video.palette import WHITE, Palette, palette, parse_colour
from renderer.video.template import (
    DEFAULT_TEMPLATE,
    Scene,
    VideoTemplate,
    load_template,
    scene_text,
    text_key,
)
from renderer.video.typeset import STYLES, Block, clean_text, fit
from renderer.view import DebtorView

WIDTH, HEIGHT = 1280, 720
MARGIN_X = 96
QR_TARGET_PX = 440


_KEEP_TOGETHER = frozenset({"amount", "due_date"})  # never wrapped in the middle
RTL_LANGS = frozenset({"ar", "fa", "he", "ur"})


def paragraph_direction(view: DebtorView) -> str:
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


def scene_texts(view: DebtorView, template: VideoTemplate, scene: Scene) -> list[str]:
    """A scene's lines as the debtor sees them: texts filled in with the view's fields."""
    values = _values(view)  # note: has a "lang" field, so it cannot be passed as a keyword
    out = []
    for line in scene.lines:
        # only a personal scene may say "overdue": invariant scenes are cached for everyone
        late = scene.personal and getattr(view, "overdue", False)
        key = line.key and text_key(template.lang, line.key, late)
        if scene.personal and key and key.startswith("amount_due") and view.offer_amount:
            key = "amount_due_offer"  # a settlement offer in force says what settles it, by when
        raw = line.value or scene_text(template.lang, template.tone, key)
        out.append(clean_text(raw.format(**values)))
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
def logo_id(uri: str) -> str:
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
            fill = parse_colour(scene.background) or colours.background
        image = Image.new("RGB", (WIDTH, HEIGHT), fill)
        draw = ImageDraw.Draw(image)
        draw.ellipse((WIDTH - 330, -260, WIDTH + 290, 360), fill=colours.accent)
        draw.ellipse((-200, HEIGHT - 150, 160, HEIGHT + 210), fill=colours.accent)
    if logo is not None:
        image.paste(logo, (MARGIN_X, 36), logo)
    draw = ImageDraw.Draw(image)
    footer = fit(creditor, STYLES["footer"], WIDTH - 2 * MARGIN_X - 200, 1.0, direction)
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
) -> tuple[list[Block], float]:
    """Fit every line of a scene into `width`, shrinking all of them until they fit `max_height`."""
    gap = 0.0
    scale = 1.0
    blocks: list[Block] = []
    for _ in range(12):
        blocks = []
        for line, text in zip(scene.lines, texts, strict=True):
            style = STYLES[line.style]
            block = fit(text, style, width, scale, direction)
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
    blocks: list[Block],
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


def draw_content(
    target: Image.Image, view: DebtorView, template: VideoTemplate, index: int
) -> None:
    """Draw a scene's QR card and text onto `target` (the background, or a clear layer)."""
    scene = template.scenes[index]
    direction = paragraph_direction(view)
    colours = palette(view.brand_color)
    texts = scene_texts(view, template, scene)
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


def scene_background(view: DebtorView, template: VideoTemplate, index: int) -> Image.Image:
    """Scene `index` without its text and QR card: brand colours, logo, creditor, dots."""
    scene = template.scenes[index]
    colours = palette(view.brand_color)
    count = len(template.scenes)
    logo = _logo(getattr(view, "logo", ""))
    creditor = clean_text(view.creditor)
    return _background(colours, scene, index, count, creditor, paragraph_direction(view), logo)


def draw_scene(view: DebtorView, index: int, template: VideoTemplate | None = None) -> Image.Image:
    """Scene `index` of the debtor's video as one 1280×720 RGB picture."""
    template = template or template_for(view)
    image = scene_background(view, template, index)
    draw_content(image, view, template, index)
    return image


def scene_layers(
    view: DebtorView, template: VideoTemplate, index: int
) -> tuple[Image.Image, Image.Image]:
    """The background and, separately, the text and QR as an RGBA layer: what the naive
    moviepy baseline in bench/bench_video.py composites per frame."""
    background = scene_background(view, template, index)
    layer = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    draw_content(layer, view, template, index)
    return background, layer
