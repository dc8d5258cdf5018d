"""How much time a debtor may take by themselves: the rules document's `time` key.

A treatment key like `tone` (in `defaults`, a segment or a variant's `set`), so a creditor may
give some segments more room than others:

    "defaults": {"time": {
        "move_instalment": {"max_days": 14, "per_plan": 1},
        "payment_day": {"from": 1, "to": 28, "per_plan": 1},
        "breathing_space": {"max_days": 30, "every_months": 12},
        "missed_to_end": true}}

`false` in place of an object switches that freedom off. What a document leaves out comes from
`BUILTIN_TIME` (docs/rules.md, "Time within the rules").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor

BUILTIN_TIME: dict[str, Any] = {
    "move_instalment": {"max_days": 14, "per_plan": 1},
    "payment_day": {"from": 1, "to": 28, "per_plan": 1},
    "breathing_space": {"max_days": 30, "every_months": 12},
    "missed_to_end": False,
}
"""Without rules: one instalment moved by up to 14 days, one payment-day change (1st to 28th),
30 days of breathing space once a year; a missed instalment is retried, as before."""

_LIMITS = {
    "move_instalment": {"max_days": (1, 90), "per_plan": (1, 24)},
    "payment_day": {"from": (1, 31), "to": (1, 31), "per_plan": (1, 24)},
    "breathing_space": {"max_days": (1, 180), "every_months": (1, 60)},
}
"""Each whole number a rule may hold: (least, most)."""


@dataclass(frozen=True)
class TimeRules:
    """The time one debtor may take: 0 days (or None) means the freedom is off."""

    move_days: int = 0  # an instalment may move later by up to this many days
    moves_per_plan: int = 0
    payment_days: tuple[int, int] | None = None  # the days of the month a plan may be paid on
    day_changes_per_plan: int = 0
    breathing_days: int = 0
    breathing_every_months: int = 12
    missed_to_end: bool = False  # a plan's first missed instalment moves to its end

    @property
    def can_move(self) -> bool:
        """Whether an instalment may be moved at all."""
        return self.move_days > 0 and self.moves_per_plan > 0

    @property
    def can_change_day(self) -> bool:
        """Whether the payment day may be changed at all."""
        return self.payment_days is not None and self.day_changes_per_plan > 0

    @property
    def can_breathe(self) -> bool:
        """Whether breathing space may be asked for at all."""
        return self.breathing_days > 0


def check(value: Any, path: str, errors: list[str]) -> None:
    """Every problem of a `time` treatment value, each with its path."""
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object, got {json.dumps(value)}")
        return
    for key, item in value.items():
        where = f"{path}.{key}"
        if key == "missed_to_end":
            if not isinstance(item, bool):
                errors.append(f"{where}: expected true or false, got {json.dumps(item)}")
            continue
        if key not in _LIMITS:
            known = ", ".join(sorted(BUILTIN_TIME))
            errors.append(f"{where}: unknown key (expected one of {known})")
            continue
        if item is False:
            continue
        if not isinstance(item, dict):
            errors.append(f"{where}: expected an object or false, got {json.dumps(item)}")
            continue
        for name, number in item.items():
            if name not in _LIMITS[key]:
                errors.append(f"{where}.{name}: unknown key (expected {', '.join(_LIMITS[key])})")
                continue
            low, high = _LIMITS[key][name]
            whole = isinstance(number, int) and not isinstance(number, bool)
            if not whole or not low <= number <= high:
                errors.append(
                    f"{where}.{name}: expected a whole number from {low} to {high}, "
                    f"got {json.dumps(number)}"
                )
        if key == "payment_day":
            first, last = item.get("from", 1), item.get("to", 28)
            whole = all(isinstance(x, int) and not isinstance(x, bool) for x in (first, last))
            if whole and first > last:
                errors.append(f"{where}: from {first} must not be after to {last}")


def resolve(*layers: Any) -> TimeRules:
    """The time rules from the built-in ones overlaid by each layer (the document's
    defaults, then the debtor's treatment), key by key."""
    merged: dict[str, Any] = {key: value for key, value in BUILTIN_TIME.items()}
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        for key, value in layer.items():
            if key == "missed_to_end":
                merged[key] = bool(value)
            elif key in _LIMITS and value is False:
                merged[key] = False
            elif key in _LIMITS and isinstance(value, dict):
                base = merged[key] if isinstance(merged[key], dict) else BUILTIN_TIME[key]
                merged[key] = {**base, **value}
    move, day, space = merged["move_instalment"], merged["payment_day"], merged["breathing_space"]
    return TimeRules(
        move_days=int(move["max_days"]) if move else 0,
        moves_per_plan=int(move["per_plan"]) if move else 0,
        payment_days=(int(day["from"]), int(day["to"])) if day else None,
        day_changes_per_plan=int(day["per_plan"]) if day else 0,
        breathing_days=int(space["max_days"]) if space else 0,
        breathing_every_months=int(space["every_months"]) if space else 12,
        missed_to_end=bool(merged["missed_to_end"]),
    )


def time_rules_for(session: Session, debtor: Debtor) -> TimeRules:
    """The time rules in force for this debtor: the campaign's rules in force, and the
    treatment the debtor's newest decision resolved (their segment or variant)."""
    from kindly.rules.store import current_rules, decision_for

    rules = current_rules(session, debtor.campaign)
    decision = decision_for(session, debtor)
    defaults = (rules.document.get("defaults") or {}).get("time")
    own = (decision.treatment or {}).get("time") if decision is not None else None
    if decision is not None and decision.rule_version != rules.version:
        own = None  # decided under older rules: the rules in force say what is allowed now
    return resolve(defaults, own)
