"""The facts RDG § 13a asks for when a campaign charges interest or costs.

A collection demand must say, besides the creditor's name and address and the claim's basis
(the launch check asks for those of every campaign), for interest its rate or the base it
follows and from when it runs, and for costs their type, amount and basis. `gaps` lists what
the campaign's rules and debtors leave out, as (where, what is missing); kindly.launch turns
them into the gaps that refuse a launch, beside the templates that must show them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign, Debtor
from kindly.money import exponent
from kindly.rules.costrules import COST_TYPES, charges_costs, cost_entries, decimal_of

PARTIES = {"consumer", "business", "b2c", "b2b"}
"""How a portfolio column names the debtor's kind for statutory interest (§ 288 BGB)."""


def charges_interest(document: dict[str, Any]) -> bool:
    """Whether the rules' `interest` makes the campaign's claims bear interest."""
    interest = document.get("interest")
    return isinstance(interest, dict) and interest.get("basis", "none") != "none"


def gaps(session: Session, campaign: Campaign, document: dict[str, Any]) -> list[tuple[str, str]]:
    """What the § 13a facts of the campaign's interest and costs lack: (where, missing)."""
    found: list[tuple[str, str]] = []
    if charges_costs(document):
        found += _cost_gaps(session, campaign, document)
    if charges_interest(document):
        found += _interest_gaps(session, campaign, document["interest"])
    return found


def _cost_gaps(
    session: Session, campaign: Campaign, document: dict[str, Any]
) -> list[tuple[str, str]]:
    """Each cost with its type, amount and basis, in every currency the campaign's debtors
    owe in (an amount of 2.50 cannot be charged in yen)."""
    currencies = sorted(
        set(session.scalars(select(Debtor.currency).where(Debtor.campaign_id == campaign.id)))
    )
    found = []
    for where, cost in cost_entries(document):
        step = cost.get("step")
        name = f"rules ({where}, step {step})"
        kind = cost.get("type")
        if kind not in COST_TYPES:
            found.append((name, f"cost type (one of {', '.join(COST_TYPES)})"))
        amount = decimal_of(cost.get("amount"))
        if amount is None or amount <= 0:
            found.append((name, f"amount of the cost {kind}"))
        if not str(cost.get("basis") or "").strip():
            found.append((name, f"legal basis of the cost {kind}"))
        for currency in currencies:
            places = exponent(currency)
            for label in ("amount", "cap"):
                value = decimal_of(cost.get(label))
                if value is not None and value != round(value, places):
                    found.append(
                        (name, f"{label} of the cost {kind} that {currency} can carry "
                               f"({cost[label]} has more than {places} decimals)")
                    )  # fmt: skip
    return found


def _interest_gaps(
    session: Session, campaign: Campaign, interest: dict[str, Any]
) -> list[tuple[str, str]]:
    """A contractual rate, or for statutory interest the debtor's kind (the rate is the base
    rate plus 5 points for a consumer, plus 9 for a business). The period starts at each
    claim's due date, which every debtor has (the portfolio requires it)."""
    found = []
    basis = interest.get("basis")
    if basis == "contractual" and interest.get("rate") in (None, ""):
        found.append(("rules (interest)", "contractual interest rate"))
    if basis == "statutory" and interest.get("debtor") not in ("consumer", "business"):
        field = interest.get("debtor_field") or "debtor_type"
        unknown = sum(
            1
            for attributes in session.scalars(
                select(Debtor.attributes).where(Debtor.campaign_id == campaign.id)
            )
            if str((attributes or {}).get(field, "")).strip().casefold() not in PARTIES
        )
        if unknown:
            found.append(
                ("rules (interest)",
                 f"debtor's kind, consumer or business, for the statutory rate "
                 f"({unknown} debtors have no {field!r}, and no \"debtor\" default is set)")
            )  # fmt: skip
    return found
