"""Payments made elsewhere: money the creditor received directly, recorded by a manager.

A recorded payment is a `payment` row like any other (provider `manual`, the method given,
status `succeeded`) settled through `payments.settle_payment`, so its `paid` event, the
balance, the case and the send plan follow as for a checkout; instalments of an open plan it
covers are marked paid as for a bank transfer. It is never edited or deleted: a mistake is
undone by a counter-entry (`reverse`, a negative `reversal` row). Both are audited.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts import audit
from kindly.accounts.models import User
from kindly.campaigns.models import Debtor
from kindly.claims import offers
from kindly.errors import KindlyError
from kindly.money import MoneyError, from_minor, parse_amount, to_minor
from kindly.payments import allocation, ledger
from kindly.payments.models import Payment
from kindly.payments.service import record_reversal, settle_payment
from kindly.reconciliation.booking import Booking, settle_instalments

PROVIDER = "manual"
METHODS = ("cash", "cheque", "transfer", "other")
"""How money paid elsewhere came: cash, a cheque, a transfer to another account, other."""
NOTE_MAX = 2000


class RecordError(KindlyError):
    """A payment that cannot be recorded or reversed as asked; nothing was written."""


def parse(amount: str, debtor: Debtor, currency: str | None = None) -> int:
    """A recorded amount ('57.30') in minor units of the claim's currency, checked."""
    if currency is not None and currency.strip().upper() != debtor.currency:
        raise RecordError(
            f"the amount is in {currency.strip().upper()}, case {debtor.reference} in "
            f"{debtor.currency}"
        )
    try:
        value = parse_amount(amount, debtor.currency)
    except MoneyError as error:
        raise RecordError(f"amount: {error}") from None
    if value <= 0:
        raise RecordError(f"amount {amount.strip()!r}: must be more than zero")
    return to_minor(value, debtor.currency)


def record(
    session: Session,
    debtor: Debtor,
    amount: str,
    *,
    method: str,
    on: dt.date,
    note: str = "",
    currency: str | None = None,
    user: User | None,
    via: str,
    today: dt.date | None = None,
) -> Payment:
    """Book money the creditor received on `on` as a succeeded payment of `debtor`."""
    amount_minor = parse(amount, debtor, currency)
    if method not in METHODS:
        raise RecordError(f"method {method!r}: one of {', '.join(METHODS)}")
    if on > (today or dt.date.today()):
        raise RecordError(f"date {on.isoformat()}: a payment received in the future")
    note = (note or "").strip()[:NOTE_MAX]
    payment = Payment(
        campaign_id=debtor.campaign_id, debtor_id=debtor.id, provider=PROVIDER,
        provider_ref="man_" + secrets.token_urlsafe(12), amount_minor=amount_minor,
        currency=debtor.currency, status="started", kind="payment", method=method,
        received_on=on, notes=note or None,
    )  # fmt: skip
    session.add(payment)
    session.flush()
    settle_payment(session, payment, "succeeded")
    # A plan's instalments the money covers are paid, so no card is charged for them.
    settle_instalments(session, [Booking(0, payment.provider_ref, 0, debtor.id,
                                          debtor.campaign_id, amount_minor, debtor.currency,
                                          None, on)], None)  # fmt: skip
    offers.settle_offers(session, [debtor.id])  # the amount of an offer in force settles it
    audit.record(
        session, user, "payment.record", via=via, campaign_id=debtor.campaign_id,
        payment=payment.id, reference=debtor.reference, method=method, date=on.isoformat(),
        amount=str(from_minor(amount_minor, debtor.currency)), currency=debtor.currency,
        note=note,
    )  # fmt: skip
    return payment


MAX_ID = 2**31 - 1
"""The largest id a payment row can have (an INTEGER key)."""


def payment_or_fail(session: Session, payment_id: int, campaign_id: int | None = None) -> Payment:
    """A recorded payment (of the campaign, when given), locked; RecordError otherwise."""
    if not 0 < payment_id <= MAX_ID:  # beyond the column: no such payment, not a crash
        raise RecordError(f"there is no payment {payment_id}")
    payment = session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update())
    if payment is None or (campaign_id is not None and payment.campaign_id != campaign_id):
        raise RecordError(f"there is no payment {payment_id}")
    return payment


def reverse(
    session: Session,
    payment: Payment,
    *,
    note: str,
    user: User | None,
    via: str,
    today: dt.date | None = None,
) -> Payment:
    """Undo a recorded payment by a counter-entry of the same amount; the original stays."""
    note = (note or "").strip()[:NOTE_MAX]
    if not note:
        raise RecordError("say why the payment is reversed (a note)")
    if payment.provider != PROVIDER or payment.kind != "payment":
        raise RecordError(
            f"payment {payment.id} was not recorded by hand ({payment.provider} {payment.kind}): "
            "only payments made elsewhere are reversed here"
        )
    if payment.status != "succeeded":
        raise RecordError(f"payment {payment.id} is {payment.status}, nothing to reverse")
    ref = f"{payment.provider_ref}:reversal"
    if session.scalar(select(Payment.id).where(Payment.provider == PROVIDER,
                                               Payment.provider_ref == ref)):  # fmt: skip
        raise RecordError(f"payment {payment.id} is already reversed")
    row = record_reversal(session, payment, kind="reversal", ref=ref,
                          amount_minor=payment.amount_minor, currency=payment.currency,
                          status="succeeded")  # fmt: skip
    row.method, row.received_on = payment.method, today or dt.date.today()
    row.notes = note
    session.flush()
    audit.record(
        session, user, "payment.reverse", via=via, campaign_id=payment.campaign_id,
        payment=payment.id, reversal=row.id, note=note,
        amount=str(from_minor(payment.amount_minor, payment.currency)),
        currency=payment.currency,
    )  # fmt: skip
    return row


def books(session: Session, debtor: Debtor) -> dict[str, Any]:
    """What a debtor's page shows of the books: the open parts and the recorded payments,
    each with whether it may still be reversed."""
    rows = session.scalars(
        select(Payment)
        .where(Payment.debtor_id == debtor.id, Payment.provider == PROVIDER)
        .order_by(Payment.id)
    ).all()
    reversed_refs = {p.provider_ref.removesuffix(":reversal") for p in rows if p.kind == "reversal"}
    parts = allocation.parts_of(debtor)
    return {
        "methods": METHODS,
        "parts": parts,
        "open_parts": allocation.open_parts(debtor, ledger.paid_minor(session, debtor)),
        "order": allocation.order_of(debtor.campaign),
        "recorded": [
            {"id": p.id, "kind": p.kind, "method": p.method, "on": p.received_on,
             "amount_minor": p.amount_minor, "currency": p.currency, "note": p.notes,
             "reversible": p.kind == "payment" and p.status == "succeeded"
             and p.provider_ref not in reversed_refs}
            for p in rows
        ],
    }  # fmt: skip
