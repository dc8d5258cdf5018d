"""The items of a case as the rest of Kindly asks for them: their state, the open ones, and
Select & Pay (the debtor pays the items they choose).

The tables and the import are kindly.campaigns' (kindly.campaigns.items and
kindly.campaigns.portfolio.items). An item's state is derived, never written after the fact:

- closed: the row says so (a re-import left it out, or a manager closed it); not in the claim;
- paid: succeeded payments cover its amount: those that name it (Select & Pay, a transfer
  quoting its RF reference), then the case's money that named no item, oldest item first
  (§ 366 BGB), so a case paid in full has all its items paid;
- disputed: the row says so; it cannot be chosen on the page;
- open: everything else.

`Debtor.amount_due_minor` is the sum of the items that are not closed: a paid item stays in
the claim because its payment is in the ledger, so the balance falls by exactly what was paid.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.items import Item, PaymentItem, paid_by_item
from kindly.campaigns.models import Debtor
from kindly.errors import KindlyError
from kindly.money import from_minor
from kindly.payments.models import Payment

__all__ = [
    "EXPORT_COLUMNS", "Item", "ItemChoiceError", "ItemState", "PaymentItem", "choose",
    "export_rows", "items_of", "link_payment", "mark_disputed", "open_items", "row_of",
]  # fmt: skip

MAX_CHOSEN = 200
"""More item ids than this in one request is not a person ticking boxes."""


@dataclass(frozen=True, slots=True)
class ItemState:
    """One item of a case and where it stands, in minor units of the case's currency."""

    id: int  # the row's id (what a form and a payment name)
    debtor_id: int
    item_id: str  # the creditor's id
    date: dt.date
    description: str | None
    amount_minor: int
    principal_minor: int | None
    interest_minor: int | None
    fees_minor: int | None
    state: str  # open | paid | closed | disputed
    paid_minor: int  # what payments that name the item paid of it
    payment_reference: str  # ISO 11649, compact

    @property
    def open_minor(self) -> int:
        """What is still to pay of the item (0 once paid or closed)."""
        if self.state in ("paid", "closed"):
            return 0
        return max(self.amount_minor - self.paid_minor, 0)


class ItemChoiceError(KindlyError):
    """The items a debtor chose cannot be paid; `reason` says why (none, unknown, not_open,
    disputed)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def items_of(
    session: Session, debtor_ids: Collection[int], *, closed: bool = False
) -> dict[int, list[ItemState]]:
    """Each debtor's items by date, by debtor id (absent: a case without items); closed ones
    only when asked. Two statements whatever the number of debtors."""
    if not debtor_ids:
        return {}
    query = select(Item).where(Item.debtor_id.in_(list(debtor_ids)))
    if not closed:
        query = query.where(Item.status != "closed")
    rows = list(session.scalars(query.order_by(Item.debtor_id, Item.item_date, Item.item_id)))
    covered = paid_by_item(session, [row for row in rows if row.status != "closed"])
    out: dict[int, list[ItemState]] = {}
    for row in rows:
        paid = covered.get(row.id, 0)
        if row.status == "closed":
            state = "closed"
        elif paid >= row.amount_minor:
            state = "paid"
        else:
            state = row.status
        out.setdefault(row.debtor_id, []).append(
            ItemState(
                row.id, row.debtor_id, row.item_id, row.item_date, row.description,
                row.amount_minor, row.principal_minor, row.interest_minor, row.fees_minor,
                state, paid, row.payment_reference,
            )
        )  # fmt: skip
    return out


def open_items(session: Session, debtor_ids: Collection[int]) -> dict[int, list[ItemState]]:
    """Each debtor's open items (not paid, closed or disputed), by date; absent: none (a case
    given as one amount has no items: its claim is `Debtor.amount_due_minor` from its due
    date). Interest accrues per open item from its date on `open_minor`."""
    every = items_of(session, debtor_ids)
    found = {
        debtor_id: [item for item in items if item.state == "open"]
        for debtor_id, items in every.items()
    }
    return {debtor_id: items for debtor_id, items in found.items() if items}


def choose(session: Session, debtor: Debtor, chosen: Sequence[str]) -> list[ItemState]:
    """The debtor's own open items the form names (row ids as text), or ItemChoiceError."""
    if not chosen or len(chosen) > MAX_CHOSEN:
        raise ItemChoiceError("none")
    wanted: set[int] = set()
    for raw in chosen:
        if not raw.isdigit() or len(raw) > 12:
            raise ItemChoiceError("unknown")
        wanted.add(int(raw))
    items = {item.id: item for item in items_of(session, [debtor.id]).get(debtor.id, [])}
    picked = []
    for item_id in sorted(wanted):
        item = items.get(item_id)
        if item is None:
            raise ItemChoiceError("unknown")
        if item.state == "disputed":
            raise ItemChoiceError("disputed")
        if item.state != "open":
            raise ItemChoiceError("not_open")
        picked.append(item)
    return sorted(picked, key=lambda item: (item.date, item.item_id))


def link_payment(session: Session, payment: Payment, items: Sequence[ItemState]) -> None:
    """Record which items a payment pays: its amount goes to them in order (oldest first),
    each up to what is open of it; once the payment succeeds they are paid."""
    left = payment.amount_minor
    for item in items:
        part = min(item.open_minor, left)
        if part <= 0:
            break
        session.add(PaymentItem(payment_id=payment.id, item_id=item.id, amount_minor=part))
        left -= part
    session.flush()


EXPORT_COLUMNS = ("reference", "item_id", "item_date", "item_description", "amount", "currency",
                  "state", "paid", "payment_reference")  # fmt: skip
"""`kindly export --items`: one row per item, closed ones included (with their state)."""


def export_rows(session: Session, debtors: Sequence[Debtor]) -> list[tuple]:
    """The items of these cases as `kindly export --items` writes them."""
    by_id = {debtor.id: debtor for debtor in debtors}
    rows = []
    for debtor_id, items in items_of(session, list(by_id), closed=True).items():
        debtor = by_id[debtor_id]
        for item in items:
            rows.append(
                (debtor.reference, item.item_id, item.date.isoformat(), item.description or "",
                 str(from_minor(item.amount_minor, debtor.currency)), debtor.currency,
                 item.state, str(from_minor(item.paid_minor, debtor.currency)),
                 item.payment_reference)
            )  # fmt: skip
    return sorted(rows)


def row_of(session: Session, debtor: Debtor, item_id: str) -> Item | None:
    """The row of one item of the case by the creditor's id, or None."""
    return session.scalar(select(Item).where(Item.debtor_id == debtor.id, Item.item_id == item_id))


def mark_disputed(session: Session, debtor: Debtor, item_id: str, disputed: bool) -> bool:
    """Put one item of the case on dispute (it cannot be chosen, accrues nothing) or take it
    off again (open); a closed item is left as it is. False: the case has no such item.

    For the dispute's own record (who, when, why): the caller records the dispute."""
    item = row_of(session, debtor, item_id)
    if item is None:
        return False
    if item.status != "closed":
        item.status = "disputed" if disputed else "open"
        # the page is rebuilt when the debtor row changes (kindly.site.microsite's stamp)
        debtor.updated_at = dt.datetime.now(dt.UTC)
        session.flush()
    return True
