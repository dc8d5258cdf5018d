"""Applying rules to one debtor: its facts, the segment they fall into, and its treatment.

Pure: everything comes in as arguments (the debtor's history too, see `kindly.rules.history`),
so nothing here reads or writes the database.
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from kindly.campaigns.models import Debtor
from kindly.money import from_minor
from kindly.rules.document import (
    BUILTIN_DEFAULTS,
    TREATMENT_KEYS,
    Rules,
    Treatment,
    is_number,
)
from kindly.rules.stats import assign


def facts(debtor: Debtor, rules: Rules, today: dt.date, past: Mapping[str, Any]) -> dict[str, Any]:
    """Everything a condition can test: built-in facts, every column and attribute, bands.

    `past` is the debtor's history (`kindly.rules.history`), fetched by the caller.
    """
    age = None
    if debtor.birth_date:
        born = debtor.birth_date
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    values: dict[str, Any] = dict(debtor.attributes or {})
    for column in ("salutation", "creditor", "contract", "city", "postal_code", "segment"):
        values.setdefault(column, getattr(debtor, column))
    values.update(
        reference=debtor.reference,
        age=age,
        days_past_due=(today - debtor.due_date).days,
        amount=from_minor(debtor.amount_due_minor, debtor.currency),
        currency=debtor.currency,
        country=debtor.country,
        locale=debtor.locale,
        language=(debtor.locale or "")[:2].lower() or None,
        has_email=bool(debtor.email),
        has_phone=bool(debtor.phone),
        has_address=bool(debtor.street and debtor.city),
    )
    values.update(past)
    for name, band in rules.document.get("bands", {}).items():
        number = _number(values.get(band["field"]))
        values[name] = (
            None
            if number is None
            else band["labels"][
                bisect.bisect_right([Decimal(str(e)) for e in band["edges"]], number)
            ]
        )
    return values


def _number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return None


def _compare(value: Any, operand: Any) -> int | None:
    """-1, 0, 1 comparing value with operand, numerically when the operand is a number."""
    if value is None:
        return None
    if is_number(operand):
        number = _number(value)
        if number is None:
            return None
        right = Decimal(str(operand))
        return (number > right) - (number < right)
    left, right = str(value), str(operand)  # ISO dates and plain text compare as text
    return (left > right) - (left < right)


def _equal(value: Any, operand: Any) -> bool:
    if is_number(operand):
        return _compare(value, operand) == 0
    if isinstance(operand, bool):
        return value is operand or str(value).lower() in (
            ("true", "1", "yes") if operand else ("false", "0", "no", "")
        )
    return value is not None and str(value) == str(operand)


def matches(condition: Any, value: Any) -> bool:
    """Whether one fact satisfies one condition (scalar: equals; list: one of; object: ops)."""
    if isinstance(condition, list):
        return any(_equal(value, item) for item in condition)
    if not isinstance(condition, dict):
        return _equal(value, condition)
    for op, operand in condition.items():
        if op == "exists":
            present = value is not None and value != ""
            if present != operand:
                return False
        elif (
            (op == "eq" and not _equal(value, operand))
            or (op == "ne" and _equal(value, operand))
            or (op == "in" and not any(_equal(value, item) for item in operand))
            or (op == "not_in" and any(_equal(value, item) for item in operand))
        ):
            return False
        elif op in ("lt", "lte", "gt", "gte"):
            order = _compare(value, operand)
            if (
                order is None
                or not {"lt": order < 0, "lte": order <= 0, "gt": order > 0, "gte": order >= 0}[op]
            ):
                return False
        elif op == "between":
            low, high = _compare(value, operand[0]), _compare(value, operand[1])
            if low is None or high is None or low < 0 or high > 0:
                return False
    return True


def segment_of(values: dict[str, Any], rules: Rules) -> dict[str, Any]:
    """The first segment whose conditions all hold (the default segment otherwise)."""
    for segment in rules.segments:
        if all(matches(cond, values.get(fact)) for fact, cond in segment["when"].items()):
            return segment
    raise AssertionError("the default segment always matches")


def evaluate(
    debtor: Debtor,
    rules: Rules,
    today: dt.date,
    *,
    past: Mapping[str, Any],
    weights: dict[str, dict[str, float]] | None = None,
) -> Treatment:
    """The segment, variant and resolved settings for one debtor (pure: no database, no I/O).

    `past` is the debtor's history (`kindly.rules.history`); `weights` overrides an
    experiment's configured weights (learning allocation).
    """
    segment = segment_of(facts(debtor, rules, today, past), rules)
    settings = copy.deepcopy(BUILTIN_DEFAULTS)
    settings.update(copy.deepcopy(rules.document.get("defaults", {})))
    settings.update({k: copy.deepcopy(v) for k, v in segment.items() if k in TREATMENT_KEYS})
    for experiment in rules.experiments:
        if segment["name"] not in experiment.get("segments", [segment["name"]]):
            continue
        variant = assign(
            debtor.reference,
            experiment["name"],
            (weights or {}).get(experiment["name"])
            or {v["name"]: v.get("weight", 1) for v in experiment["variants"]},
            holdout=experiment.get("holdout", 0),
        )
        if variant != "control":
            chosen = next(v for v in experiment["variants"] if v["name"] == variant)
            settings.update(copy.deepcopy(chosen.get("set", {})))
        return Treatment(segment["name"], variant, experiment["name"], settings)
    return Treatment(segment["name"], "A", None, settings)
