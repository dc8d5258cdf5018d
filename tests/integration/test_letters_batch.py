"""`kindly letters SLUG --batch` as an operator runs it: batch PDFs that match their manifest."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.cases import holds
from tests.support.app import PORTFOLIO, installed, launched, make_settings
from tests.unit.test_cli import kindly

# A fourth debtor without a postal address, and a second German one to sort before Berlin.
EXTRA = (
    "A-4,,Kein,Adresse,,,de-DE,EUR,10.00,,,,2026-12-15,X GmbH,Vertrag 1,,,,DE\n"
    "A-5,Herr,Jörg,Ödegård-Łukasiewicz,,,de-DE,EUR,99.00,,,,2026-12-15,X GmbH,Vertrag 2,"
    "Am Ring 2,01067,Dresden,DE\n"
)


def pdf_pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True)
    return int(re.search(r"^Pages:\s+(\d+)$", info.stdout, re.M).group(1))


def page_text(path: Path, page: int) -> str:
    return subprocess.run(
        ["pdftotext", "-f", str(page), "-l", str(page), str(path), "-"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def test_batches_match_their_manifest_page_for_page(tmp_path):
    portfolio = tmp_path / "p.csv"
    portfolio.write_text(PORTFOLIO + EXTRA, encoding="utf-8")
    assert kindly(tmp_path, "import", str(portfolio), "--campaign", "w", "--create").returncode == 0

    refused = kindly(tmp_path, "letters", "w", "--set", "iban=DE89 3704 0044 0532 0130 01")
    assert refused.returncode == 1 and "checksum" in refused.stderr

    saved = kindly(tmp_path, "letters", "w", "--set", "iban=DE89 3704 0044 0532 0130 00",
                   "--set", "payee_name=Stadtwerke Beispielstadt GmbH")  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    assert "DE89370400440532013000" in saved.stdout

    out = tmp_path / "print"
    draft = kindly(tmp_path, "letters", "w", "--batch", "--out", str(out))
    assert draft.returncode == 1 and "campaign w is draft: no letters are printed" in draft.stderr
    assert not out.exists()  # only a live campaign's letters go to the printer
    with installed(make_settings(tmp_path / "var")) as context:
        launched(context, "w")
        with context.db.session() as session:  # a disputed case gets no letter
            debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-2"))
            holds.place(session, debtor, "dispute", source="cockpit", by="test")
    run = kindly(tmp_path, "letters", "w", "--batch", "--out", str(out), "--batch-size", "3",
                 "--pad-to", "2")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "A-4" in run.stderr and "no postal address" in run.stderr

    with (out / "manifest.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # by country, then postal code: DE 01067, DE 10115, IT (GB's A-2 is held by a dispute)
    assert [r["reference"] for r in rows] == ["A-5", "A-1", "A-3"]
    assert [r["batch_file"] for r in rows] == ["w-batch-001.pdf"] * 3
    for name in {r["batch_file"] for r in rows}:
        mine = [r for r in rows if r["batch_file"] == name]
        assert pdf_pages(out / name) == sum(int(r["padded_pages"]) for r in mine)
    for row in rows:
        first, last = int(row["first_page"]), int(row["last_page"])
        assert row["page_range"] == f"{first}-{last}"
        assert int(row["padded_pages"]) % 2 == 0  # duplex: every letter starts a new sheet
        opening = " ".join(page_text(out / row["batch_file"], first).split())
        assert row["reference"] in opening
        assert row["address"].split(", ")[0] in opening  # the recipient's name line
        for blank in range(first + int(row["pages"]), last + 1):
            assert page_text(out / row["batch_file"], blank).strip() == ""

    with (out / "not-printed.csv").open(encoding="utf-8") as handle:
        skipped = list(csv.DictReader(handle))
    assert [(s["reference"], s["name"], s["reason"]) for s in skipped] == [
        ("A-2", "Siobhán O'Brien", "held: dispute_open"),
        ("A-4", "Kein Adresse", "no postal address: street, postal code, city missing"),
    ]
