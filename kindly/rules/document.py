"""The rules document: its vocabulary, the validated `Rules` and the `Treatment` they yield.

A rules document is JSON (see docs/rules.md); `kindly.rules.validate.parse_rules` checks it,
`kindly.rules.evaluate` applies it to one debtor, `kindly.rules.store` keeps its versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kindly.errors import KindlyError

TONES = ("friendly", "neutral", "firm")
CHANNELS = ("email", "sms", "letter")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PAYMENT_METHODS = ("card", "sepa_debit", "bank_transfer", "paypal", "plan", "promise")
OPERATORS = ("eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "between", "exists")
DEFAULT_SEGMENT = "default"
GOALS = ("paid", "plan_agreed", "payment_started", "clicked", "collected")
"""What an experiment counts as reaching its goal; `collected` counts `paid` like `paid` does,
and the report ranks variants by the money collected per exposed debtor as well."""

TREATMENT_KEYS = (
    "tone", "channels", "send_window", "payment_methods", "cadence_days", "template",
    "max_sms_segments", "plan", "identity_check", "time", "offer", "costs",
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


def is_number(value: Any) -> bool:
    """Whether a JSON value is a number (true and false are not, though Python says so)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


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
