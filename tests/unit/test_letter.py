"""The printed letter: what a reader of the PDF sees, checked through poppler and a QR decoder."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader
from pyzbar.pyzbar import decode

from renderer.letter import LetterRenderer, render_letter
from tests.support.views import english_view, hostile_view, make_view, rtl_emoji_view

A4_PT = (595.28, 841.89)
MM_AT_150_DPI = 150 / 25.4


@pytest.fixture(scope="module")
def renderer() -> LetterRenderer:
    return LetterRenderer()


@pytest.fixture(scope="module")
def letters(renderer, tmp_path_factory) -> dict[str, Path]:
    """Each sample view rendered once, written to disk for the poppler tools."""
    out = tmp_path_factory.mktemp("letters")
    views = {
        "de": make_view(),
        "en": english_view(),
        "hostile": hostile_view(),
        "rtl": rtl_emoji_view(),
    }
    paths = {}
    for name, view in views.items():
        path = out / f"{name}.pdf"
        path.write_bytes(renderer.render(view))
        paths[name] = path
    return paths


def pdf_text(path: Path) -> str:
    """The text layer, with no-break spaces and runs of blanks made single spaces."""
    text = subprocess.run(
        ["pdftotext", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    return re.sub(r"[ \t\xa0]+", " ", text)


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("name", ["de", "en", "hostile", "rtl"])
def test_letter_is_one_a4_page(letters, name):
    reader = PdfReader(letters[name])
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert float(box.width) == pytest.approx(A4_PT[0], abs=1)
    assert float(box.height) == pytest.approx(A4_PT[1], abs=1)


@pytest.mark.parametrize(
    ("name", "view", "own_words", "foreign_words"),
    [
        (
            "de",
            make_view(),
            ["Offene Forderung", "Hauptforderung", "Zinsen", "Mit freundlichen Grüßen"],
            ["Kind regards", "Outstanding"],
        ),
        (
            "en",
            english_view(),
            ["Outstanding balance", "Amount outstanding", "Kind regards"],
            ["Mit freundlichen Grüßen", "Forderung", "Principal"],  # no breakdown given
        ),
    ],
)
def test_letter_states_the_claim_in_the_debtors_language(
    letters, name, view, own_words, foreign_words
):
    text = pdf_text(letters[name])
    for value in (
        view.full_name,
        view.amount,
        view.due_date,
        view.creditor,
        view.reference,
        view.greeting,
    ):
        assert value.replace("\xa0", " ") in text, value
    assert view.short_url in squeeze(text)  # may wrap after "/s/"
    for word in own_words:
        assert word in text, word
    for word in foreign_words:
        assert word not in text, word


def test_breakdown_rows_appear_when_given(letters):
    text = pdf_text(letters["de"])
    view = make_view()
    for amount in (view.principal, view.interest, view.fees):
        assert amount.replace("\xa0", " ") in text


def test_qr_code_decodes_to_the_site_url_and_is_about_30_mm(letters, tmp_path):
    prefix = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(letters["de"]), str(prefix)],
        check=True,
    )
    (png,) = tmp_path.glob("page*.png")
    with Image.open(png) as image:
        codes = decode(image.convert("L"))
    assert [code.data.decode("utf-8") for code in codes] == [make_view().site_url]
    width_mm = codes[0].rect.width / MM_AT_150_DPI  # the modules, without the quiet zone
    assert 20 <= width_mm <= 35


@pytest.mark.parametrize("name", ["de", "rtl"])
def test_all_fonts_are_embedded(letters, name):
    listing = subprocess.run(
        ["pdffonts", str(letters[name])], check=True, capture_output=True, text=True
    ).stdout
    rows = listing.splitlines()[2:]  # below the header and its rule
    assert rows, listing
    assert all(row.split()[-5] == "yes" for row in rows), listing  # the "emb" column
    assert any("Kindly-Sans" in row for row in rows), listing  # the shipped DejaVu, not the host's
    if name == "de":  # nothing in a German letter needs a fallback font
        assert all("Kindly-Sans" in row for row in rows), listing


def test_hostile_name_is_printed_as_text(renderer, letters):
    text = pdf_text(letters["hostile"])
    assert "<script>alert(1)</script> Smith & Sons" in text
    html = renderer.html(hostile_view())
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Smith &amp; Sons" in html


def test_arabic_name_and_emoji_render_as_extractable_text(letters):
    text = pdf_text(letters["rtl"])
    assert "ليلى" in text
    assert "حداد" in text


def test_bad_brand_colour_cannot_break_out_of_the_style(renderer):
    html = renderer.html(make_view(brand_color="red;}</style><script>x()</script>"))
    assert "<script>" not in html
    assert "--brand: #1f5f8b;" in html
    assert "--brand: #aa3300;" in renderer.html(make_view(brand_color="#aa3300"))


def test_html_lang_follows_the_view(renderer):
    assert '<html lang="en" dir="ltr">' in renderer.html(english_view())
    assert '<html lang="de" dir="ltr">' in renderer.html(make_view())


def test_render_letter_convenience_returns_a_pdf():
    pdf = render_letter(english_view())
    assert pdf.startswith(b"%PDF-")
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
