"""Collection KPIs (CEI, DSO, ADD) with the formula and the convention each one uses.

A collection campaign is not a ledger of credit sales: every claim is already due when it is
imported and no new credit is granted during the campaign. The textbook formulas are kept,
and each KPI says which of their terms are zero here and why, or why it cannot be computed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign, Debtor
from kindly.payments.models import Payment


@dataclass(frozen=True)
class Kpi:
    """One KPI in one currency: a value (or None with the reason), its formula, its convention."""

    key: str
    name: str
    currency: str
    value: float | None
    unit: str
    formula: str
    convention: str
    inputs: dict[str, str]


CEI_FORMULA = (
    "CEI = (beginning receivables + credit sales − ending total receivables) ÷ "
    "(beginning receivables + credit sales − ending current receivables) × 100"
)
CEI_CONVENTION = (
    "Beginning receivables = the amounts due at import; credit sales = 0 (a campaign grants "
    "no new credit); ending current receivables = 0 (every claim is already due); ending total "
    "receivables = what is still open. So CEI = collected ÷ owed at import × 100."
)
DSO_FORMULA = "DSO = ending receivables ÷ credit sales of the period × days in the period"
DSO_CONVENTION = (
    "Not computed: DSO needs the creditor's credit sales, which a collection portfolio does "
    "not carry. Median days to pay (on this page) answers the question for the campaign."
)
ADD_FORMULA = "ADD = Σ (open balance × days past due) ÷ Σ open balance"
ADD_CONVENTION = (
    "Average days delinquent in its ageing form, weighted by open balance, as of today (UTC): "
    "days past due = today − due date, 0 for a claim not yet due; settled claims drop out. "
    "(The DSO − best possible DSO form needs credit sales, see DSO.)"
)


def _balances(session: Session, campaign: Campaign) -> list[tuple[str, int, int, dt.date]]:
    """(currency, amount due, open balance, due date) per debtor, in minor units."""
    paid = dict(
        session.execute(
            select(Payment.debtor_id, func.sum(Payment.amount_minor))
            .where(Payment.campaign_id == campaign.id, Payment.status == "succeeded")
            .group_by(Payment.debtor_id)
        ).all()
    )
    rows = session.execute(
        select(Debtor.id, Debtor.currency, Debtor.amount_due_minor, Debtor.due_date).where(
            Debtor.campaign_id == campaign.id
        )
    )
    return [
        (currency, int(due), max(int(due) - int(paid.get(debtor_id) or 0), 0), due_date)
        for debtor_id, currency, due, due_date in rows
    ]


def campaign_kpis(session: Session, campaign: Campaign, today: dt.date | None = None) -> list[Kpi]:
    """CEI, DSO and ADD per currency of the campaign (empty for a campaign without debtors)."""
    today = today or dt.datetime.now(dt.UTC).date()
    owed: dict[str, int] = defaultdict(int)
    open_: dict[str, int] = defaultdict(int)
    weighted_days: dict[str, int] = defaultdict(int)
    for currency, due, balance, due_date in _balances(session, campaign):
        owed[currency] += due
        open_[currency] += balance
        weighted_days[currency] += balance * max((today - due_date).days, 0)
    kpis: list[Kpi] = []
    for currency in sorted(owed):
        collected = owed[currency] - open_[currency]
        cei = collected / owed[currency] * 100 if owed[currency] else None
        add = weighted_days[currency] / open_[currency] if open_[currency] else None
        kpis += [
            Kpi("cei", "Collection effectiveness index", currency, cei, "%", CEI_FORMULA,
                CEI_CONVENTION, {"owed at import (minor units)": str(owed[currency]),
                                 "collected (minor units)": str(collected)}),
            Kpi("dso", "Days sales outstanding", currency, None, "days", DSO_FORMULA,
                DSO_CONVENTION, {}),
            Kpi("add", "Average days delinquent", currency, add, "days", ADD_FORMULA,
                ADD_CONVENTION, {"open balance (minor units)": str(open_[currency]),
                                 "as of": today.isoformat()}),
        ]  # fmt: skip
    return kpis
