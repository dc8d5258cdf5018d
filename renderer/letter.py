"""Printed letters: a DebtorView in, one A4 PDF out (WeasyPrint).

Build one `LetterRenderer` per batch: the Jinja environment, the font configuration and the
parsed stylesheet are shared, so each further letter only pays for layout and PDF writing.
"""

from __future__ import annotations

import base64
import io
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import segno
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup, escape
from PIL import Image
from weasyprint import CSS, HTML
from weasyprint.document import Document
from weasyprint.text.fonts import FontConfiguration

from kindly.infra.paths import TEMPLATES
from renderer import qr_mask
from renderer.girocode import epc_payload, epc_qr
from renderer.pdf import FONT_FACES
from renderer.texts import load_texts, one_stop
from renderer.view import DebtorView

LETTER_TEMPLATES = TEMPLATES / "letter"
DEFAULT_BRAND_COLOR = "#1f5f8b"
_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")

# segno picks each code's mask the same way, in numpy: 6 ms less per letter (see qr_mask).
qr_mask.install()


def _strong(value: str) -> Markup:
    """A value set in bold, escaped."""
    return Markup("<strong>{}</strong>").format(value)


# Bidi classes that can reorder text around them: right-to-left letters, Arabic digits, and
# the explicit embedding, override and isolate controls.
_BIDI_ACTIVE = frozenset(
    ["R", "AL", "AN", "LRE", "LRO", "RLE", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"]
)


@pass_context
def _isolate(context, value: str) -> Markup:
    """A value (a name, a contract title) isolated from the surrounding text direction.

    Only where isolation can change anything: a value with right-to-left or bidi-control
    characters, or any value on a right-to-left page. Left-to-right text on a left-to-right
    page reads the same either way, and each <bdi> was an inline box of its own (6 % of a
    letter's layout and painting calls).
    """
    if context.get("direction") == "rtl" or any(
        unicodedata.bidirectional(char) in _BIDI_ACTIVE for char in str(value)
    ):
        return Markup("<bdi>{}</bdi>").format(value)
    return escape(value)


def _fill(text: str, **values: str) -> Markup:
    """A localised text with `{placeholders}` filled; the text and every value are escaped."""
    return escape(text).format(**values)


def _qr_data_uri(code: segno.QRCode, border: int = 4) -> str:
    """A QR code as a greyscale PNG of one pixel per module, which the stylesheet scales up.

    WeasyPrint lays out and paints such a PNG faster than the equivalent SVG, and the printed
    modules stay sharp (`image-rendering: pixelated`). 8-bit grey is embedded as it is; the
    1-bit PNG segno writes was converted to RGB and re-encoded by WeasyPrint in every letter.
    """
    modules = np.pad(np.array(code.matrix, dtype=np.uint8), border)
    out = io.BytesIO()
    Image.fromarray((1 - modules) * 255).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _group_iban(iban: str) -> str:
    """An IBAN in blocks of four, as people read it off paper."""
    compact = re.sub(r"\s+", "", iban).upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def payment_code(view: DebtorView) -> str | None:
    """The EPC GiroCode payload for a euro claim with a payee IBAN; None otherwise."""
    if view.currency != "EUR" or not view.iban or not view.payee_name or view.amount_minor <= 0:
        return None
    return epc_payload(
        name=view.payee_name,
        iban=view.iban,
        bic=view.bic,
        amount_cents=view.amount_minor,
        remittance=view.payment_reference or view.reference,
    )


def variant_options(variant: str) -> dict[str, object]:
    """WeasyPrint options for a campaign's PDF variant ("" for a plain PDF)."""
    if not variant:
        return {}
    return {"pdf_variant": variant, "pdf_tags": variant.startswith("pdf/ua") or variant[-1] == "a"}


class LetterRenderer:
    """Renders letters; build once per batch and call `render` for every debtor."""

    def __init__(self) -> None:
        self.env = Environment(
            # the letter's own folder, then the partials it shares with the page
            loader=ChoiceLoader([FileSystemLoader(LETTER_TEMPLATES), FileSystemLoader(TEMPLATES)]),
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
        css = FONT_FACES + "\n" + (LETTER_TEMPLATES / "letter.css").read_text(encoding="utf-8")
        self.stylesheet = CSS(
            string=css, base_url=LETTER_TEMPLATES.as_uri() + "/", font_config=self.font_config
        )
        self.base_url = LETTER_TEMPLATES.as_uri() + "/"
        self._blank = None
        # Images read from files and the campaign's logo are decoded once per process. The QR
        # codes are data: URIs of their own in every letter, so they stay out of this cache:
        # WeasyPrint keeps whatever its cache holds, 3 entries per letter without end.
        self.image_cache: dict = {}

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
        texts = one_stop(self.texts.for_lang(view.lang), creditor=view.creditor)
        tone = texts.get("tones", {}).get(view.tone, {})
        giro = payment_code(view)
        ask_key = "ask_overdue" if view.overdue else "ask"  # since when, never "by" a past day
        qr_url = view.letter_url or view.site_url
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
            intro=tone.get("intro", texts["intro"]),
            ask=tone.get(ask_key, texts[ask_key]),
            label_due=texts["label_due_overdue" if view.overdue else "label_due"],
            sender=[line for line in (view.creditor, *view.creditor_address) if line],
            qr_url=qr_url,
            qr_src=_qr_data_uri(segno.make(qr_url, error="m")),
            giro_src=_qr_data_uri(epc_qr(giro)) if giro else "",
            iban=_group_iban(view.iban),
            payref=view.payment_reference or view.reference,
            # only a picture handed over as data: the renderer reads no file it is told of
            logo_src=view.logo if view.logo.startswith("data:image/") else "",
        )

    def document(self, view: DebtorView) -> Document:
        """The letter laid out in pages (to count them, or to join letters into a batch)."""
        images = dict(self.image_cache)  # this letter's own; the kept ones copied in
        document = HTML(string=self.html(view), base_url=self.base_url).render(
            stylesheets=[self.stylesheet],
            font_config=self.font_config,
            cache=images,
            **variant_options(view.pdf_variant),
        )
        for url, image in images.items():
            # an image keeps a reference to the dict that holds its bytes, so the entry alone
            # is enough for later letters
            if (url.startswith("file:") or url == view.logo) and url not in self.image_cache:
                self.image_cache[url] = image
        return document

    def render(self, view: DebtorView) -> bytes:
        """The letter as PDF bytes."""
        return self.document(view).write_pdf(**variant_options(view.pdf_variant))

    def render_batch(
        self, views: Sequence[DebtorView], *, pad_to: int = 1
    ) -> tuple[bytes, list[int]]:
        """Several letters joined into one PDF for the printer, and each letter's own page count.

        Each letter is padded with blank pages to a multiple of `pad_to` (2 for duplex print, so
        every letter starts on a new sheet). Fonts are embedded once for the whole batch.
        """
        if not views:
            raise ValueError("a batch needs at least one letter")
        documents = [self.document(view) for view in views]
        pages = []
        for document in documents:
            pages.extend(document.pages)
            pages.extend([self._blank_page()] * (-len(document.pages) % pad_to))
        variant = variant_options(views[0].pdf_variant)
        pdf = documents[0].copy(pages).write_pdf(**variant)
        return pdf, [len(document.pages) for document in documents]

    def _blank_page(self):
        """An empty A4 page (no footer), laid out once and reused for padding."""
        if self._blank is None:
            self._blank = (
                HTML(string="<style>@page { size: A4; margin: 0 }</style>")
                .render(font_config=self.font_config)
                .pages[0]
            )
        return self._blank


@lru_cache(maxsize=1)
def default_renderer() -> LetterRenderer:
    """One renderer per process for callers that render a letter now and then."""
    return LetterRenderer()


def warm() -> None:
    """Lay out and write one sample letter, so fonts, faces and caches are loaded before jobs."""
    sample = DebtorView(
        locale="de-DE", lang="de", reference="K-0", first_name="Anna", last_name="Müller",
        full_name="Anna Müller", greeting="Sehr geehrte Frau Müller,", amount="1,00\xa0€",
        amount_minor=100, currency="EUR", due_date="1. Januar 2030", due_date_iso="2030-01-01",
        creditor="Kindly", contract="Vertrag 1", campaign_name="warm-up",
        site_url="https://example.invalid/s/warm", short_url="example.invalid/s/warm",
        pay_url="https://example.invalid/s/warm/pay", plan_url="https://example.invalid/s/warm/plan",
        principal="1,00\xa0€", address_lines=("Frau Anna Müller", "Hauptstraße 1", "10115 Berlin"),
        payee_name="Kindly", iban="DE89370400440532013000",
    )  # fmt: skip
    default_renderer().render(sample)


def render_letter(view: DebtorView) -> bytes:
    """One letter as PDF bytes, using the process-wide renderer."""
    return default_renderer().render(view)
