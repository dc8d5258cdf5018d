"""`kindly payments record/reverse`, `kindly ledger export` and `kindly bank report` as an
operator runs them: real processes, real files, one-line errors that change nothing."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest

from kindly.bank.rf import rf_for
from tests.support import bankfiles as bf
from tests.support.app import PORTFOLIO
from tests.unit.test_bank_import import IBAN
from tests.unit.test_bank_import import PORTFOLIO as BANK_PORTFOLIO
from tests.unit.test_cli import kindly

pytestmark = pytest.mark.slow  # every test starts the kindly command as its own process


def test_record_reverse_and_export_from_the_command_line(tmp_path):
    portfolio = tmp_path / "p.csv"
    portfolio.write_text(PORTFOLIO, encoding="utf-8")
    assert kindly(tmp_path, "import", str(portfolio), "--campaign", "winter",
                  "--create").returncode == 0  # fmt: skip
    future = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    for args, problem in [
        (["A-1", "0", "--method", "cash", "--date", "2026-11-30"], "more than zero"),
        (["A-1", "1.234", "--method", "cash", "--date", "2026-11-30"], "more than 2 decimals"),
        (["A-1", "10", "--method", "cash", "--date", future], "in the future"),
        (["NOPE", "10", "--method", "cash", "--date", "2026-11-30"], "no case has the reference"),
        (["A-1", "10", "--method", "cash", "--date", "2026-11-30", "--currency", "USD"],
         "in USD, case A-1 in EUR"),
        (["A-1", "10", "--method", "gold", "--date", "2026-11-30"], "'gold' is not one of"),
    ]:  # fmt: skip
        bad = kindly(tmp_path, "payments", "record", *args)
        assert bad.returncode != 0 and problem in bad.stderr, (args, bad.stderr)
    export = tmp_path / "ledger.csv"
    assert kindly(tmp_path, "ledger", "export", "winter", "--out", str(export)).returncode == 0
    assert len(list(csv.reader(export.open(encoding="utf-8")))) == 1  # the header: nothing written

    done = kindly(tmp_path, "payments", "record", "A-1", "84.56", "--method", "cheque",
                  "--date", "2026-11-30", "--note", "cheque 0815")  # fmt: skip
    assert done.returncode == 0, done.stderr
    payment_id = done.stdout.split()[1].rstrip(":")
    assert "84.56 EUR cheque on 2026-11-30 for A-1" in done.stdout
    stats = json.loads(kindly(tmp_path, "stats", "winter", "--json").stdout)
    assert stats["funnel"]["collected"] == {"EUR": "84.56"}

    no_note = kindly(tmp_path, "payments", "reverse", payment_id)
    assert no_note.returncode != 0 and "--note" in no_note.stderr
    undone = kindly(tmp_path, "payments", "reverse", payment_id, "--note", "bounced")
    assert undone.returncode == 0, undone.stderr
    again = kindly(tmp_path, "payments", "reverse", payment_id, "--note", "again")
    assert again.returncode == 1 and "already reversed" in again.stderr
    unknown = kindly(tmp_path, "payments", "reverse", "99999", "--note", "x")
    assert unknown.returncode == 1 and "there is no payment 99999" in unknown.stderr

    listed = kindly(tmp_path, "ledger", "export", "winter", "--from", "2026-11-01")
    rows = list(csv.DictReader(listed.stdout.splitlines()))
    assert [(r["kind"], r["method"], r["amount"], r["fees"], r["interest"]) for r in rows] == [
        ("payment", "cheque", "84.56", "50.00", "34.56"),
        ("reversal", "cheque", "-84.56", "-50.00", "-34.56"),
    ]
    assert rows[-1]["balance_after"] == "1234.56"
    empty = kindly(tmp_path, "ledger", "export", "winter", "--to", "2026-11-29")
    assert len(empty.stdout.splitlines()) == 1
    wrong = kindly(tmp_path, "ledger", "export", "winter", "--from", "2026-12-02",
                   "--to", "2026-12-01")  # fmt: skip
    assert wrong.returncode != 0 and "is after --to" in wrong.stderr


def test_bank_report_counts_a_statement_by_outcome_and_rule(tmp_path):
    portfolio = tmp_path / "p.csv"
    portfolio.write_text(BANK_PORTFOLIO, encoding="utf-8")
    assert kindly(tmp_path, "import", str(portfolio), "--campaign", "winter",
                  "--create").returncode == 0  # fmt: skip
    statement = tmp_path / "dec.xml"
    statement.write_bytes(
        bf.camt053([
            bf.Payment("E", IBAN, "57.30", remittance=f"Ref {rf_for('winter', 'INV-40017')}"),
            bf.Payment("M", IBAN, "120.00", remittance="Rechnung INV-40018"),
            bf.Payment("Stranger", "DE75512108001245126199", "12.00", remittance="?"),
            bf.Payment("Bank", IBAN, "4.90", credit=False, remittance="Gebühr"),
        ])
    )  # fmt: skip
    assert kindly(tmp_path, "bank", "import", str(statement)).returncode == 0
    shown = json.loads(kindly(tmp_path, "bank", "report", "--statement", "1", "--json").stdout)
    assert shown["entries"] == 4
    states = {k: (v["entries"], v["amounts"]) for k, v in shown["states"].items() if v["entries"]}
    assert states == {
        "matched": (2, {"EUR": "177.30"}),
        "unmatched": (1, {"EUR": "12.00"}),
        "ignored": (1, {"EUR": "4.90"}),
    }
    rules = {k: (v["entries"], v["amounts"]) for k, v in shown["matched_by_rule"].items()}
    assert rules == {"rf": (1, {"EUR": "57.30"}), "reference": (1, {"EUR": "120.00"})}
    assert shown["booked"] == {"EUR": {"payments": 2, "amount": "177.30"}}
    text = kindly(tmp_path, "bank", "report")
    assert "statement 1 (camt" in text.stdout and "by rf" in text.stdout
    missing = kindly(tmp_path, "bank", "report", "--statement", "7")
    assert missing.returncode == 1 and "there is no bank statement 7" in missing.stderr
