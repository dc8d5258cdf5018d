"""One entry point for every statement format: the format is told by the content."""

from __future__ import annotations

import re
from typing import Any

from kindly.bank import camt, csvmap, mt940
from kindly.bank.entries import Statement, StatementError, check_size

__all__ = ["StatementError", "detect", "parse"]

_XML_START = re.compile(rb"^\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*<", re.DOTALL)


def detect(data: bytes, filename: str | None = None) -> str:
    """'camt', 'mt940' or 'csv', from the bytes (the file name only breaks no tie)."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf")
    if _XML_START.match(head) or head.lstrip().startswith(b"<"):
        return "camt"
    text = mt940.decode(head)
    if mt940.looks_like(text) or re.search(r"^(?:\{1:|:20:)", text, re.MULTILINE):
        return "mt940"
    if filename and filename.lower().endswith((".xml", ".camt")):
        return "camt"
    return "csv"


def parse(data: bytes, filename: str | None = None, mapping: Any = None) -> list[Statement]:
    """Every statement in the file, whatever its format; StatementError names what is wrong.

    A CSV file needs the saved column `mapping` (see kindly.bank.csvmap).
    """
    check_size(len(data))
    if not data.strip():
        raise StatementError("the file is empty")
    kind = detect(data, filename)
    if kind == "camt":
        return camt.parse(data)
    if kind == "mt940":
        return mt940.parse(data)
    if mapping is None:
        raise StatementError(
            "the file is neither camt XML nor MT940; a CSV statement needs a column mapping"
        )
    return csvmap.parse(data, mapping, filename)
