"""Campaign rules for paying: methods, the smallest part payment, plans and promises.

They live in `Campaign.settings["payments"]`; every key is optional. Amounts are decimal
strings in the claim's currency, either one string for every currency or a mapping
`{"EUR": "20.00", "JPY": "3000", "*": "10"}`. Plan rules may differ by balance band: the
first band whose `up_to` is at least the balance (or has no `up_to`) applies.

    {"payments": {
        "methods": [{"when": {"country": "DE"}, "use": ["card", "sepa_debit", "paypal"]},
                    {"use": ["card"]}],
        "min_part": {"EUR": "20.00", "*": "10"},
        "plans": {"retry_after_days": [3], "notify_days_before": 3,
                  "bands": [{"up_to": "300.00", "max_instalments": 6},
                            {"min_instalment": "25.00", "min_share": "0.04",
                             "min_instalments": 2, "max_instalments": 24,
                             "frequencies": ["monthly", "fortnightly"],
                             "first_due_within_days": 30}]}}}
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kindly.campaigns.models import Campaign, Debtor
from kindly.money import exponent, parse_amount, to_minor

FREQUENCIES = ("monthly", "fortnightly")
DEFAULT_MIN_INSTALMENT = {"JPY": "1000", "KRW": "10000", "*": "10"}
DEFAULT_MIN_PART = {"JPY": "1000", "KRW": "10000", "*": "10"}


def _payments(campaign: Campaign) -> dict[str, Any]:
    return dict((campaign.settings or {}).get("payments") or {})


def amount_minor(value: Any, currency: str, default: Any = None) -> int:
    """A rule's amount in minor units of `currency` (0 when the rule is absent)."""
    value = default if value is None else value
    if isinstance(value, dict):
        value = value.get(currency, value.get("*"))
    if value is None:
        return 0
    text = str(value)
    places = exponent(currency)
    # A rule written for cents may be finer than a zero-decimal currency: round it up.
    quantum = Decimal(1).scaleb(-places)
    return to_minor(
        parse_amount(str(Decimal(text).quantize(quantum, "ROUND_CEILING")), currency), currency
    )


@dataclass(frozen=True)
class PlanRules:
    """The plan rules that apply to one balance."""

    min_instalment_minor: int
    min_share: Decimal
    min_instalments: int
    max_instalments: int
    frequencies: tuple[str, ...]
    first_due_within_days: int
    retry_after_days: tuple[int, ...]
    notify_days_before: int

    def smallest_instalment(self, balance_minor: int) -> int:
        """The least a regular instalment may be for this balance."""
        share = int((Decimal(balance_minor) * self.min_share).to_integral_value("ROUND_CEILING"))
        return max(self.min_instalment_minor, share, 1)


def plan_rules(campaign: Campaign, currency: str, balance_minor: int) -> PlanRules:
    """The plan rules of the campaign's band for this balance."""
    plans = dict(_payments(campaign).get("plans") or {})
    band: dict[str, Any] = {}
    for candidate in plans.get("bands") or []:
        limit = candidate.get("up_to")
        if limit is None or balance_minor <= amount_minor(limit, currency):
            band = dict(candidate)
            break
    frequencies = tuple(f for f in band.get("frequencies", ["monthly"]) if f in FREQUENCIES)
    return PlanRules(
        min_instalment_minor=amount_minor(
            band.get("min_instalment"), currency, DEFAULT_MIN_INSTALMENT
        ),
        min_share=Decimal(str(band.get("min_share", "0"))),
        min_instalments=int(band.get("min_instalments", 2)),
        max_instalments=int(band.get("max_instalments", 12)),
        frequencies=frequencies or ("monthly",),
        first_due_within_days=int(band.get("first_due_within_days", 30)),
        retry_after_days=tuple(int(d) for d in plans.get("retry_after_days", [3])),
        notify_days_before=int(plans.get("notify_days_before", 3)),
    )


def min_part_minor(campaign: Campaign, currency: str) -> int:
    """The smallest part payment the campaign accepts (the whole balance is always fine)."""
    return max(amount_minor(_payments(campaign).get("min_part"), currency, DEFAULT_MIN_PART), 1)


STRIPE_METHODS = ("card", "sepa_debit", "paypal")
"""The rules' payment methods Stripe Checkout offers (bank transfer, plans and promises are
Kindly's own)."""


def _stripe_methods(debtor: Debtor, decided: list[str] | None) -> list[str] | None:
    """Of the methods the campaign rules' decision offers (if they chose), those Stripe has."""
    if not decided:
        return None
    use = [m for m in decided if m in STRIPE_METHODS]
    if "sepa_debit" in use and debtor.currency != "EUR":
        use.remove("sepa_debit")  # SEPA Direct Debit collects euros only
    return use or None


def payment_methods(debtor: Debtor, *, decided: list[str] | None) -> list[str] | None:
    """The payment methods this debtor is offered; None leaves the choice to Stripe.

    The campaign's payment settings decide first; otherwise `decided`, the methods the rules'
    decision chose (`kindly.rules.store.decided_payment_methods`): the caller reads them, so
    payments never depends on the rules.
    """
    for rule in _payments(debtor.campaign).get("methods") or []:
        when = rule.get("when") or {}
        facts = {
            "country": debtor.country,
            "currency": debtor.currency,
            "segment": debtor.segment,
            "locale": debtor.locale,
            "channel": debtor.channel,
        }
        if all(
            _matches(facts.get(k, (debtor.attributes or {}).get(k)), v) for k, v in when.items()
        ):
            use = [str(m) for m in rule.get("use") or []]
            if "sepa_debit" in use and debtor.currency != "EUR":
                use.remove("sepa_debit")  # SEPA Direct Debit collects euros only
            return use or None
    return _stripe_methods(debtor, decided)


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, list):
        return value in wanted
    return value == wanted
