"""Printed letters: a DebtorView in, one A4 PDF out (WeasyPrint).

Build one `LetterRenderer` per batch: the Jinja environment, the font configuration and the
parsed stylesheet are shared, so each further letter only pays for layout and PDF writing.
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from kindly.paths import FONTS, TEMPLATES
from kindly.renderer.qr import qr_svg
from kindly.renderer.texts import load_texts
from kindly.renderer.view import DebtorView

LETTER_TEMPLATES = TEMPLATES / "letter"
DEFAULT_BRAND_COLOR = "#1f5f8b"
_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")

# The shipped fonts come first, so letters look the same on every host; scripts and emoji
# DejaVu lacks fall through to fontconfig (Noto on our images).
_FONT_FACES = "\n".join(
    f'@font-face {{ font-family: "Kindly Sans"; src: url("{(FONTS / name).as_uri()}"); '
    f"font-weight: {weight}; font-style: normal; }}"
    for name, weight in (("DejaVuSans.ttf", 400), ("DejaVuSans-Bold.ttf", 700))
)


def _strong(value: str) -> Markup:
    """A value set in bold, escaped."""
    return Markup("<strong>{}</strong>").format(value)


def _isolate(value: str) -> Markup:
    """A value (a name, a contract title) isolated from the surrounding text direction."""
    return Markup("<bdi>{}</bdi>").format(value)


def _fill(text: str, **values: str) -> Markup:
    """A localised text with `{placeholders}` filled; the text and every value are escaped."""
    return escape(text).format(**values)


def _qr_data_uri(data: str) -> str:
    svg = qr_svg(data, scale=4, border=4)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


class LetterRenderer:
    """Renders letters; build once per batch and call `render` for every debtor."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(LETTER_TEMPLATES),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["strong"] = _strong
        self.env.filters["isolate"] = _isolate
        self.env.globals["fill"] = _fill
        self.template = self.env.get_template("letter.html")
        self.texts = load_texts("letter")
        self.font_config = FontConfiguration()
        css = _FONT_FACES + "\n" + (LETTER_TEMPLATES / "letter.css").read_text(encoding="utf-8")
        self.stylesheet = CSS(
            string=css, base_url=LETTER_TEMPLATES.as_uri() + "/", font_config=self.font_config
        )
        self.base_url = LETTER_TEMPLATES.as_uri() + "/"

    def html(self, view: DebtorView) -> str:
        """The letter as an HTML document (what `render` lays out)."""
        brand = view.brand_color if _HEX_COLOR.fullmatch(view.brand_color) else DEFAULT_BRAND_COLOR
        rows = [
            (key, value)
            for key, value in (
                ("row_principal", view.principal),
                ("row_interest", view.interest),
                ("row_fees", view.fees),
            )
            if value
        ]
        texts = self.texts.for_lang(view.lang)
        return self.template.render(
            v=view,
            t=texts,
            # The page follows the language of the texts (every letter language so far is
            # left-to-right); names and other debtor data are bidi-isolated, so an Arabic name
            # reads correctly inside a German sentence. view.text_direction is not applied to
            # the whole page: it would reorder the punctuation of the Latin-script texts.
            direction="rtl" if texts.get("dir") == "rtl" else "ltr",
            brand_color=brand,
            rows=rows,
            qr_src=_qr_data_uri(view.site_url),
        )

    def render(self, view: DebtorView) -> bytes:
        """The letter as PDF bytes."""
        document = HTML(string=self.html(view), base_url=self.base_url)
        return document.write_pdf(stylesheets=[self.stylesheet], font_config=self.font_config)


@lru_cache(maxsize=1)
def default_renderer() -> LetterRenderer:
    """One renderer per process for callers that render a letter now and then."""
    return LetterRenderer()


def render_letter(view: DebtorView) -> bytes:
    """One letter as PDF bytes, using the process-wide renderer."""
    return default_renderer().render(view)
