"""The log scan itself (tests/support/logscan.py): it finds a held value in a line, only as a
whole word, and every debtor a test writes is held without the test doing anything."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from sqlalchemy import select

from kindly.campaigns.models import Debtor
from tests.support import logscan
from tests.support.app import load_campaign


def _scan(tmp_path: Path, *messages: str, redacted: bool = True) -> list[str]:
    folder = tmp_path / "scan"
    folder.mkdir()
    registry = logscan.Registry(folder / "gw9.values")
    registry.hold("name", "Anna", "Müller", "Li")
    registry.hold("email", "anna@example.org")
    registry.hold("phone", "+4915112345678")
    registry.hold("iban", "DE89370400440532013000")
    registry.hold("token", "lxRJKp6FGVWEyd234KpkN0gOsaSewZsV")
    handler = logscan.ScanHandler(folder / "gw9.log")
    if not redacted:  # the scan on its own, without production's redaction in front
        handler.filters.clear()
    logger = logging.getLogger("kindly.logscan-test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for message in messages:
            logger.warning(message)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    found = logscan.findings(folder)
    shutil.rmtree(folder)  # its planted lines are not the session's to scan
    return found


LEAKS = (
    "sent to anna@example.org",
    "calling 4915112345678",
    "refund to DE89 3704 0044 0532 0130 00",
    "debtor Müller",
    "GET /x/lxRJKp6FGVWEyd234KpkN0gOsaSewZsV",
)


def test_each_kind_of_held_value_is_found_and_named(tmp_path):
    found = _scan(tmp_path, *LEAKS, redacted=False)
    kinds = [line.split(": ", 1)[1].split(" ", 1)[0] for line in found]
    assert kinds == ["email", "phone", "iban", "name", "token"], found
    assert "gw9.log:1:" in found[0] and "sent to anna@example.org" in found[0]


def test_what_redaction_cannot_know_is_left_for_the_scan_to_find(tmp_path):
    # addresses, numbers and IBANs have a shape; a name or a token outside a link does not
    found = _scan(tmp_path, *LEAKS)
    assert [line.split(": ", 1)[1].split(" ", 1)[0] for line in found] == ["name", "token"]


def test_clean_lines_and_parts_of_longer_words_pass(tmp_path):
    assert _scan(tmp_path, "Annabelle Müllerova paid", "GET /s/<token> 200", "Li Wei") == []


def test_a_token_in_a_debtor_path_is_redacted_before_the_scan_reads_it(tmp_path):
    assert _scan(tmp_path, "GET /s/lxRJKp6FGVWEyd234KpkN0gOsaSewZsV/pay") == []


def test_every_debtor_a_test_writes_is_held_by_the_session(ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
    folder = Path(os.environ[logscan.FOLDER_VARIABLE])
    held = logscan.held_values(folder)
    assert held[token] == "token" and held["anna@example.org"] == "email"
    assert held["Müller"] == "name" and held["+4915112345678"] == "phone"


def test_the_scan_writes_lines_as_production_does(tmp_path):
    folder = tmp_path / "lines"
    folder.mkdir()
    handler = logscan.ScanHandler(folder / "x.log")
    record = logging.LogRecord("kindly.request", logging.INFO, __file__, 1, "GET %s", ("-",),
                               None)  # fmt: skip
    record.route = "-"
    handler.emit(record)
    line = json.loads((folder / "x.log").read_text(encoding="utf-8"))
    shutil.rmtree(folder)
    assert line["route"] == "-" and line["logger"] == "kindly.request"
