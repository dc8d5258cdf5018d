"""`kindly bank` as an operator runs it: real processes, real statement files, one-line errors."""

from __future__ import annotations

import json
import os
import time

import pytest

from kindly.bank.rf import rf_for
from tests.support import bankfiles as bf
from tests.unit.test_bank_import import IBAN, OTHER_IBAN, PORTFOLIO
from tests.unit.test_cli import kindly

pytestmark = pytest.mark.slow  # every test starts the kindly command as its own process


def test_import_the_queue_and_each_decision_from_the_command_line(tmp_path):
    portfolio = tmp_path / "p.csv"
    portfolio.write_text(PORTFOLIO, encoding="utf-8")
    assert (
        kindly(tmp_path, "import", str(portfolio), "--campaign", "winter", "--create").returncode
        == 0
    )
    statement = tmp_path / "dec.xml"
    statement.write_bytes(
        bf.camt053([
            bf.Payment("E", IBAN, "57.30", remittance=f"Ref {rf_for('winter', 'INV-40017')}"),
            bf.Payment("Family", OTHER_IBAN, "100.00", remittance="for both"),
            bf.Payment("Stranger", "DE75512108001245126199", "12.00", remittance="?"),
            bf.Payment("Landlord", "DE12500105170648489890", "900.00", remittance="Miete"),
            bf.Payment("Bank", IBAN, "4.90", credit=False, remittance="Gebühr"),
        ])
    )  # fmt: skip
    done = kindly(tmp_path, "bank", "import", str(statement), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {k: result[k] for k in ("entries", "matched", "unmatched", "ignored", "already_imported")} == {
        "entries": 5, "matched": 1, "unmatched": 3, "ignored": 1, "already_imported": 0}  # fmt: skip
    again = json.loads(kindly(tmp_path, "bank", "import", str(statement), "--json").stdout)
    assert (again["already_imported"], again["matched"], again["duplicate"]) == (5, 0, True)

    waiting = json.loads(kindly(tmp_path, "bank", "unmatched", "--json").stdout)
    assert [w["amount"] for w in waiting] == ["100.00", "12.00", "900.00"]
    family, stranger, landlord = (w["id"] for w in waiting)

    bad = kindly(tmp_path, "bank", "split", str(family), "INV-40017=50.00", "INV-40018=49.00")
    assert bad.returncode == 1 and "add up to 99.00" in bad.stderr
    wrong = kindly(tmp_path, "bank", "split", str(family), "INV-40017")
    assert wrong.returncode != 0 and "REF=AMOUNT" in wrong.stderr
    good = kindly(tmp_path, "bank", "split", str(family), "INV-40018=60.00", "4711=40.00")
    assert good.returncode == 0, good.stderr
    assigned = kindly(
        tmp_path, "bank", "assign", str(stranger), "INV-40020", "--campaign", "winter"
    )
    assert assigned.returncode == 0, assigned.stderr
    twice = kindly(tmp_path, "bank", "assign", str(stranger), "INV-40020")
    assert twice.returncode == 1 and "not waiting" in twice.stderr
    nobody = kindly(tmp_path, "bank", "assign", str(landlord), "NOPE")
    assert nobody.returncode == 1 and "no case has the reference 'NOPE'" in nobody.stderr
    ours = kindly(tmp_path, "bank", "not-ours", str(landlord), "--note", "office rent")
    assert ours.returncode == 0, ours.stderr
    assert json.loads(kindly(tmp_path, "bank", "unmatched", "--json").stdout) == []

    stats = json.loads(kindly(tmp_path, "stats", "winter", "--json").stdout)
    assert stats["funnel"]["paid"] == 4  # INV-40017, INV-40018, 4711 and INV-40020
    assert stats["funnel"]["collected"] == {"EUR": "169.30"}


def test_a_watched_folder_imports_each_file_once_and_moves_it(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "good.sta").write_bytes(bf.mt940([bf.Payment("E", IBAN, "1.00")]))
    (folder / "bad.xml").write_bytes(b"<Document><broken")
    old = 1_700_000_000
    for path in folder.iterdir():
        os.utime(path, (old, old))
    (folder / "arriving.xml").write_bytes(b"<Doc")  # still being written: left for later
    # changed "just now" however long the command takes to start on a busy machine
    os.utime(folder / "arriving.xml", (time.time() + 3600, time.time() + 3600))
    run = kindly(tmp_path, "bank", "watch", str(folder), "--once")
    assert run.returncode == 0, run.stderr
    assert "good.sta: 1 entries" in run.stdout and "bad.xml: refused" in run.stderr
    assert sorted(p.name for p in (folder / "done").iterdir()) == ["good.sta"]
    assert sorted(p.name for p in (folder / "failed").iterdir()) == ["bad.xml", "bad.xml.error.txt"]
    assert (folder / "arriving.xml").exists()
    # the same bytes again (a move that failed after the import): nothing changes
    (folder / "copy.sta").write_bytes((folder / "done" / "good.sta").read_bytes())
    os.utime(folder / "copy.sta", (old, old))
    second = kindly(tmp_path, "bank", "watch", str(folder), "--once")
    assert (
        "copy.sta: 1 entries, 0 matched, 0 unmatched, 0 ignored, 0 returned, 1 already_imported"
        in second.stdout
    )
