"""`parse_rules`: validate a rules document and list every problem with its path."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from typing import Any

from kindly.rules import time as time_rules
from kindly.rules.costrules import check_cost_steps, check_costs
from kindly.rules.document import (
    BUILTIN_FACTS,
    CHANNELS,
    DAYS,
    DEFAULT_SEGMENT,
    GOALS,
    OPERATORS,
    PAYMENT_METHODS,
    TONES,
    TREATMENT_KEYS,
    Rules,
    RulesError,
    is_number,
)
from kindly.rules.interest import check_interest
from kindly.rules.offers import check_offer

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def parse_rules(
    text: str | bytes | dict[str, Any], *, version: int = 0, today: dt.date | None = None
) -> Rules:
    """Validate a JSON rules document (text or already parsed); RulesError lists every gap.

    `today` (default: today) is the day an offer's `valid_until` must not be before."""
    today = today or dt.date.today()
    if isinstance(text, dict):
        document = copy.deepcopy(text)
    else:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RulesError([f"line {exc.lineno} column {exc.colno}: {exc.msg}"]) from None
    errors: list[str] = []
    if not isinstance(document, dict):
        raise RulesError(["the document must be a JSON object"])
    known = {"timezone", "quiet_hours", "frequency_cap", "bands", "defaults", "segments",
             "experiments", "description", "interest"}  # fmt: skip
    for key in document:
        if key not in known:
            errors.append(f"{key}: unknown key (expected one of {', '.join(sorted(known))})")
    if "timezone" in document:
        _check_timezone(document["timezone"], "timezone", errors)
    _check_quiet_hours(document.get("quiet_hours", {}), errors)
    _check_cap(document.get("frequency_cap", {}), errors)
    bands = document.get("bands", {})
    _check_bands(bands, errors)
    facts = set(BUILTIN_FACTS) | (set(bands) if isinstance(bands, dict) else set())
    _check_treatment(document.get("defaults", {}), "defaults", errors, today)
    names = _check_segments(document.get("segments", []), facts, errors, today)
    _check_experiments(document.get("experiments", []), names | {DEFAULT_SEGMENT}, errors, today)
    if "interest" in document:
        check_interest(document["interest"], errors)
    check_cost_steps(document, errors)
    if errors:
        raise RulesError(errors)
    return Rules(document, version)


def _expect(value: Any, kind: type | tuple[type, ...], path: str, errors: list[str]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # JSON true/false are Python ints; only accept them where a boolean is asked for.
    wrong_bool = isinstance(value, bool) and bool not in kinds
    if wrong_bool or not isinstance(value, kinds):
        errors.append(f"{path}: expected {_kind_name(kind)}, got {json.dumps(value)}")
        return False
    return True


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "a whole number",
             float: "a number", bool: "true or false"}  # fmt: skip
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _check_timezone(value: Any, path: str, errors: list[str]) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not _expect(value, str, path, errors):
        return
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(f"{path}: {value!r} is not an IANA time zone (e.g. Europe/Berlin)")


def _check_window(value: Any, path: str, errors: list[str], *, days: bool) -> None:
    if not _expect(value, dict, path, errors):
        return
    allowed = {"start", "end", "days"} if days else {"start", "end", "sundays", "holidays"}
    for key in value:
        if key not in allowed:
            errors.append(f"{path}.{key}: unknown key (expected {', '.join(sorted(allowed))})")
    for key in ("start", "end"):
        if key in value and not (isinstance(value[key], str) and _TIME.match(value[key])):
            errors.append(
                f'{path}.{key}: expected a time like "08:00", got {json.dumps(value[key])}'
            )
    start, end = value.get("start", "00:00"), value.get("end", "23:59")
    valid = all(isinstance(x, str) and _TIME.match(x) for x in (start, end))
    if valid and start >= end:
        errors.append(f"{path}: start {start} must be before end {end}")
    if days and "days" in value and _expect(value["days"], list, f"{path}.days", errors):
        for day in value["days"]:
            if day not in DAYS:
                errors.append(f"{path}.days: {json.dumps(day)} is not one of {', '.join(DAYS)}")
    for key in ("sundays", "holidays"):
        if key in value:
            _expect(value[key], bool, f"{path}.{key}", errors)


def _check_quiet_hours(value: Any, errors: list[str]) -> None:
    _check_window(value, "quiet_hours", errors, days=False)


def _check_cap(value: Any, errors: list[str]) -> None:
    if not _expect(value, dict, "frequency_cap", errors):
        return
    for key, number in value.items():
        if key not in ("messages", "days"):
            errors.append(f"frequency_cap.{key}: unknown key (expected messages, days)")
        elif _expect(number, int, f"frequency_cap.{key}", errors) and number < 1:
            errors.append(f"frequency_cap.{key}: must be at least 1")


def _check_bands(bands: Any, errors: list[str]) -> None:
    if not _expect(bands, dict, "bands", errors):
        return
    for name, band in bands.items():
        path = f"bands.{name}"
        if name in BUILTIN_FACTS:
            errors.append(f"{path}: {name!r} is a built-in fact; give the band another name")
        if not _expect(band, dict, path, errors):
            continue
        if not isinstance(band.get("field"), str):
            errors.append(f'{path}.field: name the fact or column to band (e.g. "age")')
        edges, labels = band.get("edges"), band.get("labels")
        if not (isinstance(edges, list) and edges and all(is_number(e) for e in edges)):
            errors.append(f"{path}.edges: expected a list of numbers, e.g. [26, 40, 65]")
            continue
        if edges != sorted(edges) or len(set(edges)) != len(edges):
            errors.append(f"{path}.edges: must be strictly increasing")
        if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
            errors.append(f"{path}.labels: expected a list of names")
        elif len(labels) != len(edges) + 1:
            errors.append(
                f"{path}.labels: {len(edges)} edge(s) make {len(edges) + 1} bands, "
                f"but {len(labels)} label(s) are given"
            )


def _check_treatment(value: Any, path: str, errors: list[str], today: dt.date) -> None:
    if not _expect(value, dict, path, errors):
        return
    for key, item in value.items():
        where = f"{path}.{key}"
        if key not in TREATMENT_KEYS:
            errors.append(f"{where}: unknown key (expected one of {', '.join(TREATMENT_KEYS)})")
        elif key == "tone" and item not in TONES:
            errors.append(f"{where}: {json.dumps(item)} is not one of {', '.join(TONES)}")
        elif key == "channels":
            if not (isinstance(item, list) and item):
                errors.append(f'{where}: expected a non-empty list such as ["sms", "email"]')
            else:
                for channel in item:
                    if channel not in CHANNELS:
                        errors.append(
                            f"{where}: {json.dumps(channel)} is not one of {', '.join(CHANNELS)}"
                        )
                if len(set(map(str, item))) != len(item):
                    errors.append(f"{where}: a channel is listed twice")
        elif key == "send_window":
            _check_window(item, where, errors, days=True)
        elif key == "payment_methods":
            if not (isinstance(item, list) and item):
                errors.append(f"{where}: expected a non-empty list")
            else:
                for method in item:
                    if method not in PAYMENT_METHODS:
                        errors.append(
                            f"{where}: {json.dumps(method)} is not one of "
                            f"{', '.join(PAYMENT_METHODS)}"
                        )
        elif key == "cadence_days":
            ok = (
                isinstance(item, list)
                and item
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in item)
            )
            if not ok or item != sorted(set(item)) or item[0] != 0:
                errors.append(
                    f"{where}: expected increasing whole days starting at 0, e.g. [0, 7, 14]"
                )
        elif key == "max_sms_segments":
            if not (isinstance(item, int) and not isinstance(item, bool) and 1 <= item <= 10):
                errors.append(f"{where}: expected a whole number from 1 to 10")
        elif key == "template":
            if not (isinstance(item, str) and _NAME.match(item)):
                errors.append(
                    f"{where}: expected a template name (lower-case letters, digits, - _)"
                )
        elif key == "plan":
            _expect(item, dict, where, errors)
        elif key == "time":
            time_rules.check(item, where, errors)
        elif key == "costs":
            check_costs(item, where, errors)
        elif key == "identity_check" and item not in ("none", "birth_date", "postal_code"):
            errors.append(f"{where}: expected none, birth_date or postal_code")
        elif key == "offer":
            check_offer(item, where, errors, today)


def _check_segments(segments: Any, facts: set[str], errors: list[str], today: dt.date) -> set[str]:
    names: set[str] = set()
    if not _expect(segments, list, "segments", errors):
        return names
    for index, segment in enumerate(segments):
        path = f"segments[{index}]"
        if not _expect(segment, dict, path, errors):
            continue
        name = segment.get("name")
        if not (isinstance(name, str) and _NAME.match(name)):
            errors.append(f"{path}.name: expected a name (lower-case letters, digits, - _)")
        elif name == DEFAULT_SEGMENT:
            errors.append(f"{path}.name: 'default' is the fallback; set it under \"defaults\"")
        elif name in names:
            errors.append(f"{path}.name: {name!r} is used twice")
        else:
            names.add(name)
            path = f"segments[{index}] ({name})"
        _check_conditions(segment.get("when"), f"{path}.when", errors)
        _check_treatment(
            {k: v for k, v in segment.items() if k not in ("name", "when")}, path, errors, today
        )
    return names


def _check_conditions(when: Any, path: str, errors: list[str]) -> None:
    if not isinstance(when, dict) or not when:
        errors.append(f'{path}: expected an object of conditions, e.g. {{"age_band": "young"}}')
        return
    for fact, condition in when.items():
        where = f"{path}.{fact}"
        if not isinstance(condition, dict):
            continue  # a scalar means equals, a list means one of
        if not condition:
            errors.append(f"{where}: empty condition")
        for op, operand in condition.items():
            if op not in OPERATORS:
                errors.append(f"{where}: unknown operator {op!r} (expected {', '.join(OPERATORS)})")
            elif op in ("in", "not_in") and not isinstance(operand, list):
                errors.append(f"{where}.{op}: expected a list")
            elif op in ("lt", "lte", "gt", "gte") and not (
                is_number(operand) or isinstance(operand, str)
            ):
                errors.append(f"{where}.{op}: expected a number or an ISO date")
            elif op == "between" and not (isinstance(operand, list) and len(operand) == 2):
                errors.append(f"{where}.between: expected [low, high]")
            elif op == "exists" and not isinstance(operand, bool):
                errors.append(f"{where}.exists: expected true or false")


def _check_experiments(
    experiments: Any, segments: set[str], errors: list[str], today: dt.date
) -> None:
    if not _expect(experiments, list, "experiments", errors):
        return
    claimed: dict[str, str] = {}
    seen: set[str] = set()
    for index, experiment in enumerate(experiments):
        path = f"experiments[{index}]"
        if not _expect(experiment, dict, path, errors):
            continue
        name = experiment.get("name")
        if not (isinstance(name, str) and _NAME.match(name)):
            errors.append(f"{path}.name: expected a name (lower-case letters, digits, - _)")
            name = f"#{index}"
        elif name in seen:
            errors.append(f"{path}.name: {name!r} is used twice")
        seen.add(name)
        path = f"experiments[{index}] ({name})"
        allowed = {"name", "segments", "variants", "holdout", "goal", "allocation", "description"}
        for key in experiment:
            if key not in allowed:
                errors.append(f"{path}.{key}: unknown key (expected {', '.join(sorted(allowed))})")
        targets = experiment.get("segments", sorted(segments))
        if not (isinstance(targets, list) and targets):
            errors.append(f"{path}.segments: expected a non-empty list of segment names")
            targets = []
        for segment in targets:
            if segment not in segments:
                errors.append(f"{path}.segments: no segment named {json.dumps(segment)}")
            elif segment in claimed:
                errors.append(
                    f"{path}.segments: {segment!r} is already in experiment {claimed[segment]!r}"
                    " (one experiment per segment, so results stay readable)"
                )
            else:
                claimed[segment] = name
        holdout = experiment.get("holdout", 0)
        if not (is_number(holdout) and 0 <= holdout < 1):
            errors.append(f"{path}.holdout: expected a share from 0 to below 1, e.g. 0.1")
        if experiment.get("goal", "paid") not in GOALS:
            errors.append(f"{path}.goal: expected one of {', '.join(GOALS)}")
        _check_allocation(
            experiment.get("allocation", {"method": "fixed"}), f"{path}.allocation", errors
        )
        variants = experiment.get("variants")
        if not (isinstance(variants, list) and len(variants) >= 1):
            errors.append(f"{path}.variants: expected a list of at least one variant")
            continue
        names: set[str] = set()
        for v_index, variant in enumerate(variants):
            where = f"{path}.variants[{v_index}]"
            if not _expect(variant, dict, where, errors):
                continue
            v_name = variant.get("name")
            if not (isinstance(v_name, str) and _NAME.match(v_name.lower())) or v_name == "control":
                errors.append(f"{where}.name: expected a name other than 'control'")
            elif v_name in names:
                errors.append(f"{where}.name: {v_name!r} is used twice")
            names.add(str(v_name))
            weight = variant.get("weight", 1)
            if not (is_number(weight) and weight > 0):
                errors.append(f"{where}.weight: expected a number above 0")
            _check_treatment(variant.get("set", {}), f"{where}.set", errors, today)
        if len(variants) == 1 and not holdout:
            errors.append(f"{path}: one variant and no holdout compares nothing")


def _check_allocation(value: Any, path: str, errors: list[str]) -> None:
    if not _expect(value, dict, path, errors):
        return
    method = value.get("method", "fixed")
    if method not in ("fixed", "thompson"):
        errors.append(f"{path}.method: expected fixed or thompson")
    share = value.get("min_share", 0.1)
    if not (is_number(share) and 0 <= share < 1):
        errors.append(f"{path}.min_share: expected a share from 0 to below 1")
    sample = value.get("min_sample", 200)
    if not (isinstance(sample, int) and not isinstance(sample, bool) and sample >= 0):
        errors.append(f"{path}.min_sample: expected a whole number")
