"""`kindly import` and `kindly export --items` with a portfolio of item rows."""

from __future__ import annotations

import csv

import pytest

from tests.unit.test_cli import kindly
from tests.unit.test_items import THREE

pytestmark = pytest.mark.slow


def test_import_counts_items_and_export_lists_them(tmp_path):
    portfolio = tmp_path / "items.csv"
    portfolio.write_text(THREE, encoding="utf-8")
    done = kindly(tmp_path, "import", str(portfolio), "--campaign", "items", "--create")
    assert done.returncode == 0, done.stderr
    assert (
        "2 created" in done.stdout
        and "items: 3 added, 0 updated (0 reopened), 0 closed" in done.stdout
    )
    portfolio.write_text(
        THREE.replace(
            "C-1,Anna,Müller,EUR,2026-11-30,INV-3,2026-11-01,Strom November,24.50,,,\n", ""
        ),
        encoding="utf-8",
    )
    again = kindly(tmp_path, "import", str(portfolio), "--campaign", "items")
    assert "items: 0 added, 0 updated (0 reopened), 1 closed" in again.stdout
    out, items = tmp_path / "export.csv", tmp_path / "items-export.csv"
    exported = kindly(tmp_path, "export", "items", "--out", str(out), "--items", str(items))
    assert exported.returncode == 0, exported.stderr
    assert "exported 3 item(s)" in exported.stdout
    with items.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["item_id"], r["item_date"], r["item_description"], r["amount"], r["state"])
            for r in rows] == [
        ("INV-1", "2026-09-01", "Strom September", "30.00", "open"),
        ("INV-2", "2026-10-01", "Strom Oktober", "45.50", "open"),
        ("INV-3", "2026-11-01", "Strom November", "24.50", "closed"),
    ]  # fmt: skip
    assert all(r["reference"] == "C-1" and r["payment_reference"].startswith("RF") for r in rows)


def test_bad_item_rows_are_listed_and_nothing_is_imported(tmp_path):
    portfolio = tmp_path / "items.csv"
    portfolio.write_text(THREE.replace("INV-3,2026-11-01", "INV-1,2026-11-01"), encoding="utf-8")
    done = kindly(tmp_path, "import", str(portfolio), "--campaign", "items", "--create")
    assert done.returncode != 0
    assert "row 4, column item_id: duplicate item_id 'INV-1' in case 'C-1', first in row 2" in (
        done.stdout + done.stderr
    )
