"""Declarative campaign rules: debtor facts → segment → treatment (tone, channels, window, …).

A rules document is JSON (see docs/rules.md). `parse_rules` validates it and lists every
problem with its path; `evaluate` is pure (a debtor's facts in, a `Treatment` out);
`decide` stores one `Decision` per debtor and rule version so outcomes can be explained later.
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign, Debtor
from kindly.errors import KindlyError
from kindly.money import from_minor
from kindly.rules.models import Decision, RuleSet

TONES = ("friendly", "neutral", "firm")
CHANNELS = ("email", "sms", "letter")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PAYMENT_METHODS = ("card", "sepa_debit", "bank_transfer", "paypal", "plan", "promise")
OPERATORS = ("eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "between", "exists")
DEFAULT_SEGMENT = "default"
GOALS = ("paid", "plan_agreed", "payment_started", "clicked")

TREATMENT_KEYS = (
    "tone", "channels", "send_window", "payment_methods", "cadence_days", "template",
    "max_sms_segments", "plan", "identity_check",
)  # fmt: skip
"""What a segment (or an experiment variant) may set."""

BUILTIN_DEFAULTS: dict[str, Any] = {
    "tone": "friendly",
    "channels": ["email", "sms", "letter"],
    "send_window": {"start": "08:00", "end": "20:00", "days": list(DAYS[:6])},
    "payment_methods": ["card", "bank_transfer", "plan"],
    "cadence_days": [0, 7, 14],
    "template": "default",
    "max_sms_segments": 2,
    "plan": {"max_instalments": 12},
    "identity_check": "none",
}
BUILTIN_QUIET_HOURS: dict[str, Any] = {"start": "08:00", "end": "20:00", "sundays": False,
                                       "holidays": False}  # fmt: skip
BUILTIN_CAP: dict[str, int] = {"messages": 3, "days": 7}

BUILTIN_FACTS = (
    "age", "days_past_due", "amount", "currency", "country", "locale", "language",
    "has_email", "has_phone", "has_address", "reference",
    "past_campaigns", "past_paid", "past_plan", "past_disputed",
)  # fmt: skip

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class RulesError(KindlyError):
    """A rules document that cannot be used; `errors` lists every problem with its path."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        lines = "".join(f"\n  {error}" for error in errors)
        super().__init__(f"the rules have {len(errors)} problem(s):{lines}")


@dataclass(frozen=True)
class Rules:
    """A validated rules document and the version it was saved as (0: never saved)."""

    document: dict[str, Any]
    version: int = 0

    @property
    def segments(self) -> list[dict[str, Any]]:
        """The segments in the order they are tried, the default segment last."""
        return [*self.document.get("segments", []), {"name": DEFAULT_SEGMENT, "when": {}}]

    @property
    def experiments(self) -> list[dict[str, Any]]:
        """The experiments, each applying to some segments (all when none are named)."""
        return self.document.get("experiments", [])

    @property
    def quiet_hours(self) -> dict[str, Any]:
        """When no message may go out, in the debtor's time zone."""
        return {**BUILTIN_QUIET_HOURS, **self.document.get("quiet_hours", {})}

    @property
    def frequency_cap(self) -> dict[str, int]:
        """At most `messages` in `days`, across channels."""
        return {**BUILTIN_CAP, **self.document.get("frequency_cap", {})}

    @property
    def timezone(self) -> str:
        """The time zone of debtors whose own is unknown."""
        return self.document.get("timezone", "Europe/Berlin")


@dataclass(frozen=True)
class Treatment:
    """What one debtor gets: segment, variant, and the resolved settings."""

    segment: str
    variant: str
    experiment: str | None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def tone(self) -> str:
        """friendly, neutral or firm."""
        return self.settings["tone"]

    @property
    def channels(self) -> list[str]:
        """Channels in the order they are tried."""
        return list(self.settings["channels"])


# ---- validation ------------------------------------------------------------------------------


def parse_rules(text: str | bytes | dict[str, Any], *, version: int = 0) -> Rules:
    """Validate a JSON rules document (text or already parsed); RulesError lists every gap."""
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
             "experiments", "description"}  # fmt: skip
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
    _check_treatment(document.get("defaults", {}), "defaults", errors)
    names = _check_segments(document.get("segments", []), facts, errors)
    _check_experiments(document.get("experiments", []), names | {DEFAULT_SEGMENT}, errors)
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
        if not (isinstance(edges, list) and edges and all(_is_number(e) for e in edges)):
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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_treatment(value: Any, path: str, errors: list[str]) -> None:
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
        elif key == "identity_check" and item not in ("none", "birth_date", "postal_code"):
            errors.append(f"{where}: expected none, birth_date or postal_code")


def _check_segments(segments: Any, facts: set[str], errors: list[str]) -> set[str]:
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
            {k: v for k, v in segment.items() if k not in ("name", "when")}, path, errors
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
                _is_number(operand) or isinstance(operand, str)
            ):
                errors.append(f"{where}.{op}: expected a number or an ISO date")
            elif op == "between" and not (isinstance(operand, list) and len(operand) == 2):
                errors.append(f"{where}.between: expected [low, high]")
            elif op == "exists" and not isinstance(operand, bool):
                errors.append(f"{where}.exists: expected true or false")


def _check_experiments(experiments: Any, segments: set[str], errors: list[str]) -> None:
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
        if not (_is_number(holdout) and 0 <= holdout < 1):
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
            if not (_is_number(weight) and weight > 0):
                errors.append(f"{where}.weight: expected a number above 0")
            _check_treatment(variant.get("set", {}), f"{where}.set", errors)
        if len(variants) == 1 and not holdout:
            errors.append(f"{path}: one variant and no holdout compares nothing")


def _check_allocation(value: Any, path: str, errors: list[str]) -> None:
    if not _expect(value, dict, path, errors):
        return
    method = value.get("method", "fixed")
    if method not in ("fixed", "thompson"):
        errors.append(f"{path}.method: expected fixed or thompson")
    share = value.get("min_share", 0.1)
    if not (_is_number(share) and 0 <= share < 1):
        errors.append(f"{path}.min_share: expected a share from 0 to below 1")
    sample = value.get("min_sample", 200)
    if not (isinstance(sample, int) and not isinstance(sample, bool) and sample >= 0):
        errors.append(f"{path}.min_sample: expected a whole number")


# ---- evaluation ------------------------------------------------------------------------------


def facts(debtor: Debtor, rules: Rules, today: dt.date) -> dict[str, Any]:
    """Everything a condition can test: built-in facts, every column and attribute, bands."""
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
    values.update(past_behaviour(debtor))
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


def past_behaviour(debtor: Debtor) -> dict[str, Any]:
    """How the same case (same reference, or the same email address) went in earlier
    campaigns: how many there were, and whether the debtor paid, agreed a plan or disputed."""
    from sqlalchemy import or_
    from sqlalchemy.orm import object_session

    from kindly.payments.models import Payment
    from kindly.tracking.models import Event

    session = object_session(debtor)
    none = {"past_campaigns": 0, "past_paid": False, "past_plan": False, "past_disputed": False}
    if session is None or debtor.campaign_id is None:
        return none
    this = session.get(Campaign, debtor.campaign_id)
    same_case = [Debtor.reference == debtor.reference]
    if debtor.email:
        same_case.append(Debtor.email == debtor.email)
    earlier = list(
        session.scalars(
            select(Debtor.id)
            .join(Campaign, Campaign.id == Debtor.campaign_id)
            .where(Debtor.campaign_id != debtor.campaign_id, or_(*same_case))
            .where(Campaign.created_at < this.created_at)
        )
    )
    if not earlier:
        return none
    kinds = set(session.scalars(select(Event.type).where(Event.debtor_id.in_(earlier)).distinct()))
    disputes = session.scalars(
        select(Event.data).where(Event.debtor_id.in_(earlier), Event.type == "contact")
    )
    paid = session.scalar(
        select(Payment.id)
        .where(Payment.debtor_id.in_(earlier), Payment.status == "succeeded")
        .limit(1)
    )
    return {
        "past_campaigns": len(earlier),
        "past_paid": paid is not None or "paid" in kinds,
        "past_plan": "plan_agreed" in kinds,
        "past_disputed": any((data or {}).get("topic") == "dispute" for data in disputes),
    }


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
    if _is_number(operand):
        number = _number(value)
        if number is None:
            return None
        right = Decimal(str(operand))
        return (number > right) - (number < right)
    left, right = str(value), str(operand)  # ISO dates and plain text compare as text
    return (left > right) - (left < right)


def _equal(value: Any, operand: Any) -> bool:
    if _is_number(operand):
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
    weights: dict[str, dict[str, float]] | None = None,
) -> Treatment:
    """The segment, variant and resolved settings for one debtor (pure: nothing is stored).

    `weights` overrides an experiment's configured weights (learning allocation).
    """
    from kindly.rules.experiments import assign

    segment = segment_of(facts(debtor, rules, today), rules)
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


# ---- storage ---------------------------------------------------------------------------------


def canonical(document: dict[str, Any]) -> str:
    """The document as stable JSON text (sorted keys), for hashing and display."""
    return json.dumps(document, sort_keys=True, ensure_ascii=False, indent=2)


def current_rules(session: Session, campaign: Campaign) -> Rules:
    """The campaign's newest saved rules, or the built-in defaults as version 0."""
    row = session.scalar(
        select(RuleSet).where(RuleSet.campaign_id == campaign.id).order_by(RuleSet.version.desc())
    )
    if row is None:
        return Rules({}, 0)
    return Rules(row.document, row.version)


def save_rules(session: Session, campaign: Campaign, rules: Rules) -> Rules:
    """Store the document as the next version; an unchanged document keeps its version."""
    digest = hashlib.sha256(canonical(rules.document).encode()).hexdigest()
    latest = session.scalar(
        select(RuleSet).where(RuleSet.campaign_id == campaign.id).order_by(RuleSet.version.desc())
    )
    if latest is not None and latest.sha256 == digest:
        return Rules(latest.document, latest.version)
    version = (latest.version if latest else 0) + 1
    session.add(RuleSet(campaign_id=campaign.id, version=version, sha256=digest,
                        document=rules.document))  # fmt: skip
    session.flush()
    return Rules(rules.document, version)


def decide(
    session: Session,
    campaign: Campaign,
    rules: Rules,
    today: dt.date,
    *,
    debtor_ids: list[int] | None = None,
) -> dict[str, int]:
    """Store each debtor's decision under the rules' version (once); return counts by segment.

    A debtor decided before under this version keeps that decision, so variants stay put
    when the portfolio is re-imported; new debtors get the current learning allocation.
    """
    from kindly.rules.experiments import learning_weights

    query = select(Debtor).where(Debtor.campaign_id == campaign.id).order_by(Debtor.id)
    if debtor_ids is not None:
        query = query.where(Debtor.id.in_(debtor_ids))
    debtors = list(session.scalars(query))
    existing = {
        d.debtor_id: d
        for d in session.scalars(
            select(Decision).where(
                Decision.campaign_id == campaign.id, Decision.rule_version == rules.version
            )
        )
    }
    weights = (
        learning_weights(session, campaign, rules)
        if any(d.id not in existing for d in debtors)
        else {}
    )
    counts: dict[str, int] = {}
    for debtor in debtors:
        decision = existing.get(debtor.id)
        if decision is None:
            treatment = evaluate(debtor, rules, today, weights)
            decision = Decision(
                campaign_id=campaign.id, debtor_id=debtor.id, rule_version=rules.version,
                segment=treatment.segment, experiment=treatment.experiment,
                variant=treatment.variant, tone=treatment.tone, channels=treatment.channels,
                treatment=treatment.settings,
            )  # fmt: skip
            session.add(decision)
        debtor.segment, debtor.variant = decision.segment, decision.variant
        debtor.channel = decision.channels[0]
        counts[decision.segment] = counts.get(decision.segment, 0) + 1
    session.flush()
    return counts


def decision_for(session: Session, debtor: Debtor) -> Decision | None:
    """The debtor's newest decision (the one the rules in force made), if any."""
    return session.scalar(
        select(Decision)
        .where(Decision.debtor_id == debtor.id)
        .order_by(Decision.rule_version.desc())
        .limit(1)
    )
