"""Writing a case's items: a re-import adds new items, updates known ones and closes the ones
it no longer lists; paid items and their payments are never lost.

The rule that keeps the rest of Kindly right: a case's imported claim
(`Debtor.amount_due_minor`) is the sum of its items that are not closed. A paid item stays in
the claim, because the payment that paid it is in the ledger; an item missing from a
re-import that is already paid stays too (the creditor's file may leave settled invoices out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.orm import Session

from kindly.bank.rf import item_rf_for
from kindly.campaigns.items import Item, paid_by_item
from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio.validate import CleanRow
from kindly.infra.db import utcnow

COMPARED = ("item_date", "description", "amount_minor", "principal_minor", "interest_minor",
            "fees_minor")  # fmt: skip
PARTS = ("principal_minor", "interest_minor", "fees_minor")


@dataclass
class Known:
    """The items a campaign has, by case reference and item id, with what is paid of each."""

    by_case: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    paid: set[int] = field(default_factory=set)  # row ids of items their payments cover


@dataclass
class ItemChanges:
    """What a re-import did to items."""

    added: int = 0
    updated: int = 0
    closed: int = 0
    reopened: int = 0

    def as_detail(self) -> dict[str, int]:
        """For the audit log's entry of the import."""
        return {"added": self.added, "updated": self.updated, "closed": self.closed,
                "reopened": self.reopened}  # fmt: skip


def known_items(session: Session, campaign: Campaign, clean: list[CleanRow]) -> Known | None:
    """The campaign's items, read once before writing (None: no items, none to write)."""
    has_items = any(row.items is not None for row in clean)
    if not has_items:
        stored = session.scalar(
            select(exists().where(Item.debtor_id == Debtor.id, Debtor.campaign_id == campaign.id))
        )
        if not stored:
            return None
    table = Item.__table__
    rows = session.execute(
        select(Debtor.reference, *table.c)
        .join(Debtor, Debtor.id == table.c.debtor_id)
        .where(Debtor.campaign_id == campaign.id)
    ).mappings()
    known = Known()
    for row in rows:
        known.by_case.setdefault(row["reference"], {})[row["item_id"]] = dict(row)
    stored = list(
        session.scalars(
            select(Item)
            .join(Debtor, Debtor.id == Item.debtor_id)
            .where(Debtor.campaign_id == campaign.id, Item.status != "closed")
        )
    )
    covered = paid_by_item(session, stored)
    known.paid = {item.id for item in stored if covered.get(item.id, 0) >= item.amount_minor}
    return known


def keep_paid(clean: list[CleanRow], known: Known) -> None:
    """Add the paid items a re-import leaves out to their case's claim (they stay paid)."""
    for row in clean:
        if row.items is None:
            continue
        listed = {item["item_id"] for item in row.items}
        for item_id, item in known.by_case.get(row.fields["reference"], {}).items():
            if item_id in listed or item["id"] not in known.paid or item["status"] == "closed":
                continue
            row.fields["amount_due_minor"] += item["amount_minor"]
            for part in PARTS:
                if row.fields.get(part) is not None and item[part] is not None:
                    row.fields[part] += item[part]
                else:
                    row.fields[part] = None


def write_items(
    session: Session, campaign: Campaign, clean: list[CleanRow], known: Known
) -> ItemChanges:
    """Add, update, reopen and close the items of the imported cases (the debtors exist)."""
    changes = ItemChanges()
    ids = dict(
        session.execute(
            select(Debtor.reference, Debtor.id).where(Debtor.campaign_id == campaign.id)
        ).all()
    )
    now = utcnow()
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    touched: set[int] = set()
    for row in clean:
        reference = row.fields["reference"]
        debtor_id = ids[reference]
        before = known.by_case.get(reference, {})
        listed = set()
        for item in row.items or ():
            listed.add(item["item_id"])
            old = before.get(item["item_id"])
            values = {name: item[name] for name in COMPARED}
            if old is None:
                new.append(
                    {**values, "debtor_id": debtor_id, "item_id": item["item_id"],
                     "status": "open", "created_at": now, "updated_at": now,
                     "payment_reference": item_rf_for(campaign.slug, reference, item["item_id"])}
                )  # fmt: skip
                changes.added += 1
                touched.add(debtor_id)
                continue
            status = "open" if old["status"] == "closed" else old["status"]
            if status != old["status"]:
                changes.reopened += 1
            if status != old["status"] or any(old[n] != values[n] for n in COMPARED):
                changed.append({"id": old["id"], **values, "status": status,
                                "closed_at": None, "updated_at": now})  # fmt: skip
                changes.updated += 1
                touched.add(debtor_id)
        for item_id, old in before.items():
            if item_id in listed or old["status"] == "closed" or old["id"] in known.paid:
                continue
            changed.append({"id": old["id"], **{n: old[n] for n in COMPARED},
                            "status": "closed", "closed_at": now, "updated_at": now})  # fmt: skip
            changes.closed += 1
            touched.add(debtor_id)
    table = Item.__table__
    connection = session.connection()
    if new:
        connection.execute(insert(table), new)
    if changed:
        statement = (
            update(table)
            .where(table.c.id == _bind("id"))
            .values(
                {name: _bind(name) for name in (*COMPARED, "status", "closed_at", "updated_at")}
            )
        )
        connection.execute(statement, [{f"b_{k}": v for k, v in c.items()} for c in changed])
    if touched:
        # the page is rebuilt when the debtor row changes (kindly.site.microsite's stamp)
        debtors = Debtor.__table__
        connection.execute(update(debtors).where(debtors.c.id.in_(touched)).values(updated_at=now))
    for obj in list(session.identity_map.values()):  # written past the ORM: reload on access
        if isinstance(obj, Item):
            session.expire(obj)
    return changes


def _bind(name: str):
    return bindparam(f"b_{name}")
