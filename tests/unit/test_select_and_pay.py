"""Select & Pay on the microsite (sandbox): the debtor ticks some of their case's items, pays
their sum, and the page then shows those items paid and the new balance."""

from __future__ import annotations

import re

from sqlalchemy import select

from kindly.campaigns.items import Item, PaymentItem
from kindly.campaigns.models import Debtor
from kindly.claims.balance import balance_minor
from kindly.payments.models import Payment
from tests.support.app import load_campaign

PORTFOLIO = (
    "reference,first_name,last_name,locale,currency,due_date,item_id,item_date,"
    "item_description,amount_due\n"
    "S-1,Anna,Müller,de-DE,EUR,2026-11-30,R-1,2026-09-01,Strom September,30.00\n"
    "S-1,Anna,Müller,de-DE,EUR,2026-11-30,R-2,2026-10-01,Strom Oktober,45.50\n"
    "S-1,Anna,Müller,de-DE,EUR,2026-11-30,R-3,2026-11-01,Strom November,24.50\n"
)


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def setup(ctx):
    load_campaign(ctx, "winter", PORTFOLIO)
    with ctx.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "S-1"))
        items = {i.item_id: i.id for i in session.scalars(select(Item))}
        return anna.token, items


def test_select_and_pay_one_of_three_items_in_the_sandbox(ctx, client):
    token, items = setup(ctx)
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "Ihre Rechnungen" in page and "Strom Oktober" in page and "45,50\xa0€" in page
    assert f'href="/s/{token}/items"' in page
    form = client.get(f"/s/{token}/items").get_data(as_text=True)
    assert form.count('type="checkbox" name="item"') == 3
    answer = client.post(
        f"/s/{token}/items", data={"csrf_token": csrf(form), "item": [str(items["R-2"])]}
    )
    assert answer.status_code == 303 and "/sandbox/checkout/" in answer.location
    with ctx.db.session() as session:
        payment = session.scalars(select(Payment)).one()
        assert (payment.amount_minor, payment.status) == (4550, "started")
        link = session.scalars(select(PaymentItem)).one()
        assert (link.item_id, link.amount_minor) == (items["R-2"], 4550)
    ref = answer.location.rsplit("/", 1)[-1]
    checkout = client.get(f"/sandbox/checkout/{ref}").get_data(as_text=True)
    back = client.post(
        f"/sandbox/checkout/{ref}", data={"csrf_token": csrf(checkout), "outcome": "succeeded"}
    )
    assert back.status_code == 303
    with ctx.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.token == token))
        assert anna.amount_due_minor == 10000  # the claim is unchanged ...
        assert balance_minor(session, anna) == 5450  # ... the balance fell by 45.50
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert re.search(r'data-item="R-2" data-state="paid"', page)
    assert re.search(r'data-item="R-1" data-state="open"', page)
    assert 'data-amount="5450"' in page and "54,50\xa0€" in page
    form = client.get(f"/s/{token}/items").get_data(as_text=True)
    assert form.count('type="checkbox" name="item"') == 2  # a paid item is not offered again


def test_a_disputed_item_is_not_selectable_and_is_refused_with_the_reason(ctx, client):
    token, items = setup(ctx)
    with ctx.db.session() as session:
        session.get(Item, items["R-3"]).status = "disputed"
    form = client.get(f"/s/{token}/items").get_data(as_text=True)
    assert form.count('type="checkbox" name="item"') == 2
    assert "Nicht auswählbar" in form
    answer = client.post(
        f"/s/{token}/items", data={"csrf_token": csrf(form), "item": [str(items["R-3"])]}
    )
    assert answer.status_code == 422
    assert "kann noch nicht bezahlt werden" in answer.get_data(as_text=True)
    nothing = client.post(f"/s/{token}/items", data={"csrf_token": csrf(form)})
    assert nothing.status_code == 422
    assert "mindestens eine Rechnung" in nothing.get_data(as_text=True)
    with ctx.db.session() as session:
        assert session.scalars(select(Payment)).all() == []


def test_a_small_item_is_paid_whole_below_the_part_payment_minimum(ctx, client):
    token, items = setup(ctx)
    with ctx.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.token == token))
        anna.campaign.settings = {
            **(anna.campaign.settings or {}),
            "payments": {"min_part": "50.00"},
        }
    form = client.get(f"/s/{token}/items").get_data(as_text=True)
    answer = client.post(
        f"/s/{token}/items", data={"csrf_token": csrf(form), "item": [str(items["R-3"])]}
    )
    assert answer.status_code == 303
    with ctx.db.session() as session:
        assert session.scalars(select(Payment)).one().amount_minor == 2450


def test_paying_the_whole_balance_shows_every_item_paid(ctx, client):
    token, _ = setup(ctx)
    form = client.get(f"/s/{token}/pay").get_data(as_text=True)
    answer = client.post(f"/s/{token}/pay", data={"csrf_token": csrf(form)})
    ref = answer.location.rsplit("/", 1)[-1]
    checkout = client.get(f"/sandbox/checkout/{ref}").get_data(as_text=True)
    client.post(
        f"/sandbox/checkout/{ref}", data={"csrf_token": csrf(checkout), "outcome": "succeeded"}
    )
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert page.count('data-state="paid"') == 3
    assert 'data-cta="select-pay"' not in page
    assert client.get(f"/s/{token}/items").get_data(as_text=True).count('name="item"') == 0
