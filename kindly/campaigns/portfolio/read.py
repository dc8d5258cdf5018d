"""Reading a portfolio: CSV or JSON bytes in, numbered rows out, or every reason it cannot
be read."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from kindly.errors import KindlyError

REQUIRED = ("reference", "last_name", "currency", "amount_due", "due_date")


@dataclass(frozen=True)
class RowError:
    """What is wrong with one cell: the row as a spreadsheet numbers it, the column, why."""

    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.reason}"


class PortfolioRejected(KindlyError):
    """The portfolio has invalid rows; nothing was written."""

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        super().__init__(f"{len(errors)} error(s) in the portfolio; nothing was imported")


@dataclass(frozen=True)
class SourceRow:
    """One record of the input with the number a person would look for."""

    number: int
    values: dict[str, str]
    # where an item's columns sit in the source, for error messages: "" for a CSV row (the
    # item's columns are the row's own), "items[2]." for the third item of a JSON case
    item_prefix: str = ""


def read_portfolio(data: bytes, filename: str) -> list[SourceRow]:
    """Parse CSV or JSON bytes into rows; raise PortfolioRejected for an unreadable file."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PortfolioRejected(
            [RowError(0, "-", f"the file is not UTF-8 (byte {exc.start} cannot be read)")]
        ) from None
    if filename.lower().endswith(".json") or text.lstrip().startswith("["):
        return _read_json(text)
    return _read_csv(text)


def _read_json(text: str) -> list[SourceRow]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PortfolioRejected([RowError(exc.lineno, "-", f"not valid JSON: {exc.msg}")]) from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise PortfolioRejected(
            [RowError(0, "-", "not valid JSON: a number is too long (write amounts as strings)")]
        ) from None
    except RecursionError:
        raise PortfolioRejected([RowError(0, "-", "not valid JSON: nested too deeply")]) from None
    if not isinstance(items, list):
        raise PortfolioRejected([RowError(0, "-", "JSON portfolio must be a list of objects")])
    rows = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise PortfolioRejected([RowError(index, "-", "each item must be an object")])
        if "items" in item:
            rows.extend(_json_items(index, item))
            continue
        rows.append(SourceRow(index, _json_values(item)))
    return rows


def _json_values(item: dict) -> dict[str, str]:
    values = {}
    for key, value in item.items():
        if value is None:
            values[str(key)] = ""
        elif isinstance(value, float):
            # A JSON float may already have lost precision; ask for strings.
            values[str(key)] = repr(value)
        else:
            values[str(key)] = str(value)
    return values


ITEM_ALIASES = {"id": "item_id", "date": "item_date", "description": "item_description"}
"""Inside a JSON item the `item_` prefix may be left out."""
CASE_AMOUNT = "__case_amount_due__"
"""A JSON case's own `amount_due` beside its `items`: checked against the items' sum."""


def _json_items(index: int, case: dict) -> list[SourceRow]:
    """A JSON case with an `items` list: one row per item, the case's keys repeated."""
    items = case["items"]
    if not isinstance(items, list) or not items:
        return [SourceRow(index, {"__shape__": "items must be a list of at least one object"})]
    own = _json_values({k: v for k, v in case.items() if k != "items"})
    if "amount_due" in own:
        own[CASE_AMOUNT] = own.pop("amount_due")
    rows = []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            rows.append(SourceRow(index, {"__shape__": f"items[{position}] must be an object"}))
            continue
        values = dict(own)
        for key, value in _json_values(item).items():
            values[ITEM_ALIASES.get(key, key)] = value
        rows.append(SourceRow(index, values, f"items[{position}]."))
    return rows


def _read_csv(text: str) -> list[SourceRow]:
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise PortfolioRejected([RowError(1, "-", "the file is empty")]) from None
    except csv.Error as exc:
        raise PortfolioRejected([RowError(1, "-", f"not valid CSV: {exc}")]) from None
    header = [name.strip() for name in header]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise PortfolioRejected(
            [RowError(1, name, "required column is missing from the header") for name in missing]
        )
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise PortfolioRejected([RowError(1, name, "column appears twice in the header")])
        seen.add(name)
    rows = []
    try:
        for cells in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                rows.append(
                    SourceRow(
                        number, {"__shape__": f"has {len(cells)} cells, header has {len(header)}"}
                    )
                )
                continue
            rows.append(SourceRow(number, dict(zip(header, cells, strict=True))))
    except csv.Error as exc:  # e.g. a cell over the csv module's 131,072 characters
        raise PortfolioRejected([RowError(reader.line_num, "-", f"not valid CSV: {exc}")]) from None
    return rows
