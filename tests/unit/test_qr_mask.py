"""The numpy mask choice makes every QR code module for module as segno does, and letters
keep no per-letter images between renders."""

from __future__ import annotations

import base64
import io
import random
import string
from dataclasses import replace

import pytest
import segno
import segno.encoder

from renderer import qr_mask
from renderer.letter import LetterRenderer
from tests.support.views import make_view


def _payloads() -> list[str]:
    rng = random.Random(4)
    alphabet = string.ascii_letters + string.digits + "/:?=.-_ äöü€\n"
    sizes = (8, 40, 64, 90, 140, 250, 331, 600, 1200)  # versions 1 to 25 at level M
    texts = ["".join(rng.choice(alphabet) for _ in range(n)) for n in sizes for _ in range(12)]
    texts += [f"https://pay.example/c/{rng.getrandbits(192):048x}?c=letter" for _ in range(20)]
    return texts


@pytest.fixture
def segno_own(monkeypatch):
    """segno with its own mask choice, whatever the import of the letter module installed."""
    monkeypatch.setattr(segno.encoder, "find_and_apply_best_mask", qr_mask._ORIGINAL)


def test_numpy_mask_choice_matches_segno(segno_own, monkeypatch):
    payloads = _payloads()
    theirs = [segno.make(text, error="m") for text in payloads]
    monkeypatch.setattr(segno.encoder, "find_and_apply_best_mask", qr_mask.find_and_apply_best_mask)
    ours = [segno.make(text, error="m") for text in payloads]
    assert len({code.version for code in theirs}) > 5
    for text, a, b in zip(payloads, theirs, ours, strict=True):
        assert (b.version, b.error, b.mask) == (a.version, a.error, a.mask), text
        assert b.matrix == a.matrix, text


def test_micro_codes_and_given_masks_still_go_through_segno(segno_own, monkeypatch):
    theirs = (segno.make("12345", micro=True), segno.make("hello", mask=5, micro=False))
    monkeypatch.setattr(segno.encoder, "find_and_apply_best_mask", qr_mask.find_and_apply_best_mask)
    ours = (segno.make("12345", micro=True), segno.make("hello", mask=5, micro=False))
    assert [c.matrix for c in ours] == [c.matrix for c in theirs]
    assert ours[1].mask == 5


def test_letters_keep_no_per_letter_images(tmp_path):
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (120, 40), "#1f5f8b").save(png, "PNG")
    logo = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()  # as stored
    renderer = LetterRenderer()
    for i in range(5):
        view = make_view(reference=f"K-{i}", letter_url=f"https://pay.example/c/t{i}", logo=logo)
        assert renderer.render(view).startswith(b"%PDF")
    assert list(renderer.image_cache) == [logo]  # the logo, once
    pdf = renderer.render(replace(make_view(), logo=logo))
    assert pdf.count(b"/Subtype /Image") == 2  # the kept logo and this letter's QR code
