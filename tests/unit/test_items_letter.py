"""The letter lists a case's items (date, description, amount, state); with the items it runs to
a second page, numbered as such."""

from __future__ import annotations

import dataclasses
import subprocess

from pypdf import PdfReader

from renderer.letter import render_letter
from renderer.view import ItemLine
from tests.support.views import make_view


def test_the_letter_lists_the_items_with_their_state(tmp_path):
    items = (
        ItemLine(1, "R-1", "01.09.2026", "2026-09-01", "Strom September", "30,00 €", 3000,
                 "open", "RF52 4ZZ5 GT5P V5PS 2"),
        ItemLine(2, "R-2", "01.10.2026", "2026-10-01", "Strom Oktober", "45,50 €", 4550,
                 "paid", "RF70 7BAN 4EE9 F2Q2 3"),
        ItemLine(3, "R-3", "01.11.2026", "2026-11-01", "Strom November", "24,50 €", 2450,
                 "disputed", "RF45 634F X859 E1YY 9"),
    )  # fmt: skip
    # a case given as items has no principal, interest and fees rows of its own
    view = dataclasses.replace(make_view(), items=items, principal=None, interest=None, fees=None)
    path = tmp_path / "letter.pdf"
    path.write_bytes(render_letter(view))
    assert len(PdfReader(path).pages) <= 2
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "Ihre Rechnungen" in text
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert any("01.10.2026 Strom Oktober 45,50 € bezahlt" in line for line in lines), text
    assert any("Strom November 24,50 € bestritten" in line for line in lines)
    assert "RF52 4ZZ5 GT5P V5PS 2" in text
