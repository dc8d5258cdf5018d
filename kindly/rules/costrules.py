"""Costs at cadence steps in the rules document: their shape, and the steps they name.

A treatment (`defaults` or a segment) may list `costs`, each booked once per case when its
step's message goes out (kindly.claims.costs):

    "costs": [{"step": 1, "type": "dunning_fee", "amount": "5.00",
               "basis": "§ 288 Abs. 4 BGB", "cap": "10.00"}]

`step` counts the cadence's messages from 0 (`cadence_days` [0, 7, 14] has steps 0, 1, 2);
`amount` and `cap` are decimals in the case's own currency (booked in its minor units); `cap`
bounds the total of that type on one case. An experiment's variant may not set costs: what a
debtor owes is the creditor's claim, never a thing to test.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from kindly.rules.document import BUILTIN_DEFAULTS

COST_TYPES = (
    "dunning_fee", "collection_fee", "address_inquiry", "return_debit_fee",
    "late_payment_flat_fee",
)  # fmt: skip
"""The kinds of cost a step may add; each has its name in the debtor's five languages
(site and letter texts `cost_<type>`)."""
COST_KEYS = ("step", "type", "amount", "basis", "cap")
BASIS_MAX = 200
"""The longest legal basis kept (it is shown to the debtor beside the amount)."""
_DECIMAL = re.compile(r"^\d{1,12}(\.\d{1,3})?$")


def decimal_of(value: Any) -> Decimal | None:
    """A cost's amount or cap as written ("5.00"), or None when it is not a plain decimal."""
    if isinstance(value, str) and _DECIMAL.match(value):
        return Decimal(value)
    return None


def check_costs(value: Any, path: str, errors: list[str]) -> None:
    """The shape of one treatment's `costs` list: every problem appended with its path."""
    if not isinstance(value, list):
        example = '[{"step": 1, "type": "dunning_fee", "amount": "5.00", "basis": "…"}]'
        errors.append(f"{path}: expected a list of costs, e.g. {example}")
        return
    seen: set[tuple[Any, Any]] = set()
    caps: dict[str, Decimal | None] = {}
    for index, cost in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(cost, dict):
            errors.append(f"{where}: expected an object with step, type, amount, basis")
            continue
        for key in cost:
            if key not in COST_KEYS:
                errors.append(f"{where}.{key}: unknown key (expected {', '.join(COST_KEYS)})")
        step, kind = cost.get("step"), cost.get("type")
        if not (isinstance(step, int) and not isinstance(step, bool) and step >= 0):
            errors.append(f"{where}.step: expected a cadence step, a whole number from 0")
        if kind not in COST_TYPES:
            errors.append(f"{where}.type: {json.dumps(kind)} is not one of {', '.join(COST_TYPES)}")
        amount = decimal_of(cost.get("amount"))
        if amount is None or amount <= 0:
            errors.append(
                f'{where}.amount: expected a decimal above 0 written as text, e.g. "5.00", '
                f"got {json.dumps(cost.get('amount'))}"
            )
        basis = cost.get("basis")
        if not (isinstance(basis, str) and basis.strip()):
            errors.append(f'{where}.basis: name the legal basis shown to the debtor, e.g. '
                          '"§ 288 Abs. 4 BGB"')  # fmt: skip
        elif len(basis) > BASIS_MAX:
            errors.append(f"{where}.basis: at most {BASIS_MAX} characters")
        cap = None
        if "cap" in cost:
            cap = decimal_of(cost["cap"])
            if cap is None or cap <= 0:
                errors.append(f'{where}.cap: expected a decimal above 0 written as text, e.g. '
                              f'"15.00", got {json.dumps(cost["cap"])}')  # fmt: skip
            elif amount is not None and cap < amount:
                errors.append(f"{where}.cap: {cost['cap']} is below the amount {cost['amount']}")
        if isinstance(kind, str) and (isinstance(step, int) and not isinstance(step, bool)):
            if (step, kind) in seen:
                errors.append(f"{where}: {kind} is charged twice at step {step}")
            seen.add((step, kind))
        if isinstance(kind, str) and kind in COST_TYPES:
            if kind in caps and caps[kind] != cap:
                errors.append(
                    f"{where}.cap: {kind} has another cap in an earlier entry; the cap bounds "
                    "the total of a type on a case, so give every entry of a type the same cap"
                )
            caps.setdefault(kind, cap)


def check_cost_steps(document: dict[str, Any], errors: list[str]) -> None:
    """Each cost's step is one of its treatment's cadence steps; variants set no costs."""
    defaults = document.get("defaults")
    defaults = defaults if isinstance(defaults, dict) else {}
    base = {**BUILTIN_DEFAULTS, **defaults}
    treatments = [("defaults", base)]
    segments = document.get("segments")
    for index, segment in enumerate(segments if isinstance(segments, list) else []):
        if isinstance(segment, dict):
            name = segment.get("name")
            path = f"segments[{index}] ({name})" if isinstance(name, str) else f"segments[{index}]"
            if "costs" not in segment:
                path += " (costs from defaults)"
            treatments.append((path, {**base, **segment}))
    for path, treatment in treatments:
        costs, cadence = treatment.get("costs"), treatment.get("cadence_days")
        if not (isinstance(costs, list) and isinstance(cadence, list)):
            continue
        for index, cost in enumerate(costs):
            step = cost.get("step") if isinstance(cost, dict) else None
            if isinstance(step, int) and not isinstance(step, bool) and step >= len(cadence):
                errors.append(
                    f"{path}.costs[{index}].step: step {step} is never sent (cadence_days "
                    f"{json.dumps(cadence)} has steps 0 to {len(cadence) - 1})"
                )
    experiments = document.get("experiments")
    for index, experiment in enumerate(experiments if isinstance(experiments, list) else []):
        for v_index, variant in enumerate(
            (experiment.get("variants") or []) if isinstance(experiment, dict) else []
        ):
            sets = variant.get("set") if isinstance(variant, dict) else None
            if isinstance(sets, dict) and "costs" in sets:
                errors.append(
                    f"experiments[{index}].variants[{v_index}].set.costs: costs are the "
                    "creditor's claim, not an experiment; set them in defaults or a segment"
                )


def charges_costs(document: dict[str, Any]) -> bool:
    """Whether any treatment of the document books a cost."""
    treatments = [document.get("defaults") or {}, *(document.get("segments") or [])]
    return any(bool(t.get("costs")) for t in treatments if isinstance(t, dict))


def cost_entries(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every cost of the document with the treatment it belongs to ("defaults", a segment)."""
    out = []
    defaults = document.get("defaults") or {}
    for cost in defaults.get("costs") or []:
        out.append(("defaults", cost))
    for segment in document.get("segments") or []:
        for cost in segment.get("costs") or []:
            out.append((f"segment {segment.get('name')}", cost))
    return out
