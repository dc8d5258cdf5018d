"""Settlement offers on a case: the offer in force today, and the write-off it books once
its amount is paid in one go.

The rules decide who is offered what (`offer` in a segment or an experiment variant;
`kindly.rules.offers` says what it may hold and what it asks of a balance); this module reads
the debtor's decision and the claim of the day (`kindly.claims.amount`). Nothing here is
stored until money comes: `settle_offers` runs after every payment that may have taken an
offer (a checkout's webhook, the sandbox, a booked bank transfer, a payment recorded by hand)
and books the rest of the claim as a `write_off` with the offer's reason, once per case.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.claims.amount import amount_on
from kindly.claims.writeoffs import WriteOff
from kindly.money import from_minor
from kindly.payments.models import Payment
from kindly.rules.models import Decision
from kindly.rules.offers import Terms, terms
from kindly.tracking import events

CHUNK = 500
_OFFER_BLOCK = re.compile(
    r"<!--kindly:offer:(\d{4}-\d{2}-\d{2})-->.*?<!--/kindly:offer-->", re.DOTALL
)
"""An offer as the site template marks it, with its last day (templates/site/_offer.html)."""


def strip_expired(html: str, today: dt.date) -> str:
    """The page without any offer whose last day is before `today`: a page stored or kept
    from before that day never shows an expired offer, whatever path serves it."""
    if "<!--kindly:offer:" not in html:
        return html

    def keep(match: re.Match[str]) -> str:
        return match.group(0) if dt.date.fromisoformat(match.group(1)) >= today else ""

    return _OFFER_BLOCK.sub(keep, html)


def _decisions(session: Session, debtor_ids: Sequence[int]) -> dict[int, Decision]:
    """Each debtor's newest decision (the rules in force), in bulk."""
    newest: dict[int, Decision] = {}
    ids = list(debtor_ids)
    for start in range(0, len(ids), CHUNK):
        rows = session.scalars(
            select(Decision)
            .where(Decision.debtor_id.in_(ids[start : start + CHUNK]))
            .order_by(Decision.debtor_id, Decision.rule_version)
        )
        for decision in rows:
            newest[decision.debtor_id] = decision  # ordered: the newest version wins
    return newest


def offer_of(decision: Decision | None) -> dict[str, Any] | None:
    """The offer a decision's treatment holds, if any."""
    offer = (decision.treatment or {}).get("offer") if decision is not None else None
    return offer if isinstance(offer, dict) else None


def current_offer(
    session: Session, debtor: Debtor, day: dt.date, *, paid_minor: int,
    decision: Decision | None = None,
) -> Terms | None:  # fmt: skip
    """The offer the debtor may take on `day` for what is open after `paid_minor`; None when
    the rules offer none, it has expired, or nothing is owed."""
    if decision is None:
        decision = _decisions(session, [debtor.id]).get(debtor.id)
    offer = offer_of(decision)
    if offer is None:
        return None
    balance = amount_on(session, debtor, day).total_minor - paid_minor
    return terms(offer, balance, debtor.currency, day)


def payment_day(payment: Payment) -> dt.date:
    """The day a payment counts for an offer: the day a transfer arrived, else the day the
    debtor opened the checkout (a webhook after midnight still takes that day's offer)."""
    if payment.received_on is not None:
        return payment.received_on
    return payment.created_at.date()


def settle_offers(session: Session, debtor_ids: Sequence[int]) -> list[WriteOff]:
    """Book the write-off of every case among `debtor_ids` whose offer a payment took.

    An offer is taken by one succeeded payment of at least the offered amount, made on a day
    the offer was valid, for the balance open just before it (earlier payments count: an
    offer is for the rest in one go). Paying less takes nothing. At most one offer write-off
    per case: running again books nothing new. Returns the write-offs booked now."""
    ids = sorted(set(debtor_ids))
    if not ids:
        return []
    done: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        done.update(
            session.scalars(
                select(WriteOff.debtor_id).where(
                    WriteOff.debtor_id.in_(ids[start : start + CHUNK]), WriteOff.source == "offer"
                )
            )
        )
    decisions = _decisions(session, [i for i in ids if i not in done])
    offered = {i: d for i, d in decisions.items() if offer_of(d) is not None}
    if not offered:
        return []
    booked: list[WriteOff] = []
    for debtor_id, decision in sorted(offered.items()):
        debtor = session.get(Debtor, debtor_id)
        if debtor is None:
            continue
        payments = session.scalars(
            select(Payment)
            .where(
                Payment.debtor_id == debtor_id,
                Payment.status == "succeeded",
                Payment.currency == debtor.currency,
            )
            .order_by(Payment.id)
        ).all()
        paid_before = 0
        for payment in payments:
            if payment.amount_minor > 0 and payment.kind == "payment":
                day = payment_day(payment)
                deal = current_offer(
                    session, debtor, day, paid_minor=paid_before, decision=decision
                )
                if deal is not None and payment.amount_minor >= deal.offered_minor:
                    rest = deal.balance_minor - payment.amount_minor
                    if rest > 0:
                        booked.append(_book(session, debtor, decision, deal, payment, rest))
                    break
            paid_before += payment.amount_minor
    return booked


def _book(
    session: Session, debtor: Debtor, decision: Decision, deal: Terms, payment: Payment,
    rest: int,
) -> WriteOff:  # fmt: skip
    """One write-off row and its `written_off` event on the case's record."""
    row = WriteOff(
        campaign_id=debtor.campaign_id, debtor_id=debtor.id, amount_minor=rest,
        currency=debtor.currency, source="offer", reason=deal.reason, payment_id=payment.id,
        offered_minor=deal.offered_minor, rule_version=decision.rule_version,
    )  # fmt: skip
    with session.begin_nested():  # a parallel settlement that booked it first wins
        session.add(row)
        session.flush()
    events.record(
        session,
        debtor,
        "written_off",
        data={
            "amount": str(from_minor(rest, debtor.currency)),
            "currency": debtor.currency,
            "reason": deal.reason,
            "source": "offer",
            "offered": str(from_minor(deal.offered_minor, debtor.currency)),
            "payment_id": payment.id,
        },
        key=f"written_off:offer:{debtor.id}",
    )
    return row
