"""Several items per case: the import (CSV rows, JSON lists), its bad input, re-imports that
add, update and close items without losing payments, and the items' own references."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from kindly.bank import rf
from kindly.campaigns.items import Item
from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio import PortfolioRejected, import_portfolio, read_portfolio
from kindly.claims.balance import balance_minor
from kindly.claims.items import choose, items_of, link_payment, mark_disputed, open_items
from kindly.payments.models import Payment

HEADER = (
    "reference,first_name,last_name,currency,due_date,item_id,item_date,item_description,"
    "amount_due,principal,interest,fees\n"
)
THREE = HEADER + (
    "C-1,Anna,Müller,EUR,2026-11-30,INV-1,2026-09-01,Strom September,30.00,,,\n"
    "C-1,Anna,Müller,EUR,2026-11-30,INV-2,2026-10-01,Strom Oktober,45.50,40.00,0.50,5.00\n"
    "C-1,Anna,Müller,EUR,2026-11-30,INV-3,2026-11-01,Strom November,24.50,,,\n"
    "C-2,Max,Roe,EUR,2026-11-30,,,,80.00,,,\n"
)


def load(session, text: str, name: str = "p.csv", slug: str = "items"):
    campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        campaign = Campaign(slug=slug, name="Items")
        session.add(campaign)
        session.flush()
    result, _ = import_portfolio(session, campaign, read_portfolio(text.encode(), name))
    return result


def debtor(session, reference: str = "C-1") -> Debtor:
    return session.scalar(select(Debtor).where(Debtor.reference == reference))


def rows_of(session, reference: str = "C-1") -> dict[str, Item]:
    found = session.scalars(select(Item).join(Debtor).where(Debtor.reference == reference))
    return {item.item_id: item for item in found}


def errors_of(text: str, name: str = "p.csv") -> list[tuple[int, str, str]]:
    from kindly.campaigns.portfolio import validate_rows

    _, errors = validate_rows(read_portfolio(text.encode(), name))
    return [(e.row, e.column, e.reason) for e in errors]


def test_item_rows_make_one_case_whose_claim_is_the_sum_of_its_items(ctx):
    with ctx.db.session() as session:
        result = load(session, THREE)
        assert (result.created, result.items.added) == (2, 3)
        anna = debtor(session)
        assert anna.amount_due_minor == 100_00
        assert anna.principal_minor is None  # not every item gives its principal
        items = rows_of(session)
        assert [items[k].amount_minor for k in ("INV-1", "INV-2", "INV-3")] == [3000, 4550, 2450]
        assert items["INV-2"].description == "Strom Oktober"
        assert (items["INV-2"].principal_minor, items["INV-2"].fees_minor) == (4000, 500)
        assert "item_id" not in anna.attributes
        assert debtor(session, "C-2").amount_due_minor == 8000
        assert rows_of(session, "C-2") == {}


def test_every_item_has_its_own_stable_iso_11649_reference(ctx):
    with ctx.db.session() as session:
        load(session, THREE)
        refs = {k: v.payment_reference for k, v in rows_of(session).items()}
        assert all(rf.is_valid(ref) for ref in refs.values())
        assert len(set(refs.values()) | {debtor(session).payment_reference}) == 4
        assert refs["INV-2"] == rf.item_rf_for("items", "C-1", "INV-2")
        load(session, THREE)  # a re-import keeps them
        assert {k: v.payment_reference for k, v in rows_of(session).items()} == refs
    assert rf.item_rf_for("a", "C-1", "INV-2") != rf.item_rf_for("b", "C-1", "INV-2")


def test_json_cases_take_an_items_list(ctx):
    cases = [
        {"reference": "J-1", "last_name": "Doe", "currency": "EUR", "due_date": "2026-11-30",
         "amount_due": "50.00",
         "items": [
             {"item_id": "A", "item_date": "2026-10-01", "item_description": "Abo",
              "amount_due": "20.00"},
             {"id": "B", "date": "2026-10-15", "description": "Gebühr", "amount_due": "30.00",
              "principal": "25.00", "fees": "5.00"},
         ]},
        {"reference": "J-2", "last_name": "Roe", "currency": "EUR", "due_date": "2026-11-30",
         "amount_due": "12.00"},
    ]  # fmt: skip
    with ctx.db.session() as session:
        load(session, json.dumps(cases), "p.json")
        assert debtor(session, "J-1").amount_due_minor == 5000
        items = rows_of(session, "J-1")
        assert sorted(items) == ["A", "B"]
        assert (items["B"].description, items["B"].fees_minor) == ("Gebühr", 500)
        assert debtor(session, "J-2").amount_due_minor == 1200


def test_a_case_column_that_disagrees_with_its_siblings_is_named(ctx):
    text = THREE.replace(
        "C-1,Anna,Müller,EUR,2026-11-30,INV-3", "C-1,Anna,Mueller,EUR,2026-11-30,INV-3"
    )
    assert errors_of(text) == [
        (4, "last_name",
         "is 'Mueller' but 'Müller' in row 2 of the same case 'C-1': an item's case columns "
         "repeat the case"),
    ]  # fmt: skip


def test_duplicate_item_id_within_a_case_is_named(ctx):
    text = THREE.replace("INV-3,2026-11-01", "INV-1,2026-11-01")
    assert errors_of(text) == [
        (4, "item_id", "duplicate item_id 'INV-1' in case 'C-1', first in row 2"),
    ]
    # the same item id in another case is fine
    other = THREE + "C-3,Eve,Poe,EUR,2026-11-30,INV-1,2026-09-01,x,1.00,,,\n"
    assert errors_of(other) == []


def test_item_amounts_that_do_not_sum_are_named(ctx):
    text = THREE.replace("45.50,40.00,0.50,5.00", "45.50,40.00,0.50,4.00")
    assert errors_of(text) == [
        (3, "amount_due", "principal + interest + fees = 44.50 but amount_due is 45.50"),
    ]
    cases = [{"reference": "J-1", "last_name": "Doe", "currency": "EUR",
              "due_date": "2026-11-30", "amount_due": "60.00",
              "items": [{"item_id": "A", "item_date": "2026-10-01", "amount_due": "20.00"},
                        {"item_id": "B", "item_date": "2026-10-01", "amount_due": "30.00",
                         "principal": "x"}]}]  # fmt: skip
    assert errors_of(json.dumps(cases), "p.json") == [
        (1, "items[1].principal", "'x' is not a number"),
    ]
    cases[0]["items"][1].pop("principal")
    assert errors_of(json.dumps(cases), "p.json") == [
        (1, "amount_due", "the case's amount_due is 60.00 but its items add up to 50.00"),
    ]


def test_an_item_row_needs_its_date_and_a_reference_twice_without_items_stays_a_duplicate(ctx):
    text = THREE.replace("INV-3,2026-11-01", "INV-3,")
    assert errors_of(text) == [(4, "item_date", "is required")]
    text = THREE.replace(
        "C-2,Max,Roe,EUR,2026-11-30,,,,80.00", "C-1,Anna,Müller,EUR,2026-11-30,,,,80.00"
    )
    assert errors_of(text) == [
        (5, "item_id", "is required: the other rows of case 'C-1' list its items"),
    ]


def test_bad_input_writes_nothing(ctx):
    bad = THREE.replace("INV-3,2026-11-01", "INV-1,2026-11-01")
    with ctx.db.session() as session:
        with pytest.raises(PortfolioRejected):
            load(session, bad)
        session.rollback()
    with ctx.db.session() as session:
        assert session.scalars(select(Item)).all() == []
        assert session.scalars(select(Debtor)).all() == []


def test_skip_invalid_rejects_a_case_whole(ctx):
    bad = THREE.replace("INV-3,2026-11-01", "INV-1,2026-11-01")
    with ctx.db.session() as session:
        campaign = Campaign(slug="items", name="Items")
        session.add(campaign)
        session.flush()
        _, rejected = import_portfolio(
            session, campaign, read_portfolio(bad.encode(), "p.csv"), skip_invalid=True
        )
        assert sorted(row.number for row, _ in rejected) == [2, 3, 4]
        assert debtor(session) is None
        assert debtor(session, "C-2").amount_due_minor == 8000


def pay(session, anna: Debtor, item_ids: list[str], status: str = "succeeded") -> Payment:
    """A Select & Pay payment of the named items, as the microsite makes one."""
    chosen = choose(session, anna, [str(rows_of(session)[i].id) for i in item_ids])
    payment = Payment(
        campaign_id=anna.campaign_id, debtor_id=anna.id, provider="sandbox",
        provider_ref=f"sbx_{'_'.join(item_ids)}", amount_minor=sum(i.open_minor for i in chosen),
        currency="EUR", status=status,
    )  # fmt: skip
    session.add(payment)
    session.flush()
    link_payment(session, payment, chosen)
    return payment


def test_reimport_adds_updates_and_closes_items_and_keeps_payments(ctx):
    with ctx.db.session() as session:
        load(session, THREE)
        anna = debtor(session)
        pay(session, anna, ["INV-1"])
        assert balance_minor(session, anna) == 70_00
        # INV-2 changes, INV-3 and the paid INV-1 are left out, INV-4 is new
        again = HEADER + (
            "C-1,Anna,Müller,EUR,2026-11-30,INV-2,2026-10-01,Strom Oktober (korrigiert),40.00,,,\n"
            "C-1,Anna,Müller,EUR,2026-11-30,INV-4,2026-12-01,Strom Dezember,10.00,,,\n"
        )
        result = load(session, again)
        assert (result.items.added, result.items.updated, result.items.closed) == (1, 1, 1)
        items = rows_of(session)
        assert set(items) == {"INV-1", "INV-2", "INV-3", "INV-4"}  # nothing deleted
        assert items["INV-3"].status == "closed" and items["INV-3"].closed_at is not None
        states = {i.item_id: i.state for i in items_of(session, [anna.id], closed=True)[anna.id]}
        assert states == {"INV-1": "paid", "INV-2": "open", "INV-3": "closed", "INV-4": "open"}
        session.expire_all()
        anna = debtor(session)
        # the claim: the paid INV-1 (30) stays, INV-2 40, INV-4 10; INV-3 closed
        assert anna.amount_due_minor == 80_00
        assert balance_minor(session, anna) == 50_00
        assert session.scalars(select(Payment)).one().status == "succeeded"
        # INV-3 comes back: reopened
        result = load(session, THREE)
        assert result.items.reopened == 1
        assert rows_of(session)["INV-3"].status == "open"


def test_open_items_for_the_interest_engine(ctx):
    with ctx.db.session() as session:
        load(session, THREE)
        anna, max_ = debtor(session), debtor(session, "C-2")
        pay(session, anna, ["INV-2"])
        assert mark_disputed(session, anna, "INV-3", True)
        assert not mark_disputed(session, anna, "NOPE", True)
        found = open_items(session, [anna.id, max_.id])
        assert list(found) == [anna.id]
        ((item,),) = found.values()
        assert (item.item_id, item.date.isoformat(), item.open_minor) == (
            "INV-1",
            "2026-09-01",
            3000,
        )


def test_a_failed_payment_pays_no_item_and_a_disputed_item_cannot_be_chosen(ctx):
    from kindly.claims.items import ItemChoiceError

    with ctx.db.session() as session:
        load(session, THREE)
        anna = debtor(session)
        pay(session, anna, ["INV-1"], status="failed")
        assert {i.item_id: i.state for i in items_of(session, [anna.id])[anna.id]}[
            "INV-1"
        ] == "open"
        rows_of(session)["INV-3"].status = "disputed"
        session.flush()
        with pytest.raises(ItemChoiceError) as caught:
            choose(session, anna, [str(rows_of(session)["INV-3"].id)])
        assert caught.value.reason == "disputed"
        max_ = debtor(session, "C-2")
        with pytest.raises(ItemChoiceError):  # another case's item
            choose(session, max_, [str(rows_of(session)["INV-1"].id)])


def test_a_transfer_quoting_an_items_reference_is_matched_to_that_item(ctx):
    from kindly.reconciliation.importer import import_statement
    from tests.support import bankfiles as bf

    with ctx.db.session() as session:
        load(session, THREE)
        inv2 = rows_of(session)["INV-2"]
        statement = bf.camt053(
            [bf.Payment("Anna Müller", "DE02120300000000202051", "45.50",
                        remittance=f"Rechnung {inv2.payment_reference.lower()}")]
        )  # fmt: skip
        assert import_statement(session, ctx.storage, statement, "s.xml").matched == 1
    with ctx.db.session() as session:
        anna = debtor(session)
        states = {i.item_id: i.state for i in items_of(session, [anna.id])[anna.id]}
        assert states == {"INV-1": "open", "INV-2": "paid", "INV-3": "open"}
        assert balance_minor(session, anna) == 100_00 - 45_50


def test_an_item_taken_off_dispute_is_open_again(ctx):
    with ctx.db.session() as session:
        load(session, THREE)
        anna = debtor(session)
        mark_disputed(session, anna, "INV-2", True)
        assert [i.item_id for i in open_items(session, [anna.id])[anna.id]] == ["INV-1", "INV-3"]
        mark_disputed(session, anna, "INV-2", False)
        assert len(open_items(session, [anna.id])[anna.id]) == 3


def test_money_that_names_no_item_pays_the_oldest_open_items_first(ctx):
    with ctx.db.session() as session:
        load(session, THREE)
        anna = debtor(session)
        mark_disputed(session, anna, "INV-1", True)  # disputed: only money naming it pays it
        session.add(Payment(campaign_id=anna.campaign_id, debtor_id=anna.id, provider="bank",
                            provider_ref="e-1", amount_minor=50_00, currency="EUR",
                            status="succeeded"))  # fmt: skip
        session.flush()
        shown = {i.item_id: (i.state, i.open_minor) for i in items_of(session, [anna.id])[anna.id]}
        # 50.00 goes to INV-2 (45.50, paid) and 4.50 of INV-3; INV-1 is disputed
        assert shown == {"INV-1": ("disputed", 3000), "INV-2": ("paid", 0), "INV-3": ("open", 2000)}
        mark_disputed(session, anna, "INV-1", False)
        session.add(Payment(campaign_id=anna.campaign_id, debtor_id=anna.id, provider="bank",
                            provider_ref="e-2", amount_minor=50_00, currency="EUR",
                            status="succeeded"))  # fmt: skip
        session.flush()
        states = {i.item_id: i.state for i in items_of(session, [anna.id])[anna.id]}
        assert states == {"INV-1": "paid", "INV-2": "paid", "INV-3": "paid"}
        assert balance_minor(session, anna) == 0
        assert open_items(session, [anna.id]) == {}


def test_skip_invalid_still_keeps_the_first_of_two_rows_of_one_reference_without_items(ctx):
    text = HEADER + (
        "D-1,Anna,Doe,EUR,2026-11-30,,,,10.00,,,\nD-1,Anna,Doe,EUR,2026-11-30,,,,20.00,,,\n"
    )
    with ctx.db.session() as session:
        campaign = Campaign(slug="items", name="Items")
        session.add(campaign)
        session.flush()
        _, rejected = import_portfolio(
            session, campaign, read_portfolio(text.encode(), "p.csv"), skip_invalid=True
        )
        assert [row.number for row, _ in rejected] == [3]
        assert debtor(session, "D-1").amount_due_minor == 1000
