"""Select & Pay on a 360 px phone, in German and in English: the debtor sees the three
invoices of her case, ticks one, pays it in the sandbox checkout, and her page then shows that
invoice paid and the new balance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PHONE_UA, LiveServer, rendered_campaign, serving, snap

pytestmark = pytest.mark.e2e

HEAD = "reference,salutation,first_name,last_name,locale,currency,due_date,creditor,"
ITEMS = "item_id,item_date,item_description,amount_due\n"
CASE_DE = "SP-DE,Frau,Erika,Mustermann,de-DE,EUR,2026-11-15,Stadtwerke Beispielstadt GmbH,"
CASE_EN = "SP-EN,Ms,Siobhán,O'Brien,en-GB,GBP,2026-11-15,Northern Water Ltd,"
PORTFOLIO = HEAD + ITEMS + "".join(
    f"{case}{item}\n"
    for case, items in (
        (CASE_DE, ("R-1,2026-09-01,Strom September,30.00", "R-2,2026-10-01,Strom Oktober,45.50",
                   "R-3,2026-11-01,Strom November,24.50")),
        (CASE_EN, ("W-1,2026-09-01,Water September,30.00", "W-2,2026-10-01,Water October,45.50",
                   "W-3,2026-11-01,Water November,24.50")),
    )
    for item in items
)  # fmt: skip
SHOTS = Path("/tmp/shots-items")
CASES = {
    # locale: (reference, item to pay, total before, balance after, words on the page)
    "de-DE": ("SP-DE", "R-2", "100,00\xa0€", "54,50\xa0€", "Ihre Rechnungen", "bezahlt",
              "Rechnungen auswählen und bezahlen", "Ausgewählte Rechnungen bezahlen"),
    "en-GB": ("SP-EN", "W-2", "£100.00", "£54.50", "Your invoices", "paid",
              "Choose which invoices to pay", "Pay the selected invoices"),
}  # fmt: skip


@pytest.fixture(scope="module")
def items_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A rendered campaign with a German and an English case of three items each."""
    workdir = tmp_path_factory.mktemp("items")
    server, port, _ = rendered_campaign(workdir, PORTFOLIO, key="items")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serving(server, port):
        yield server


@pytest.mark.parametrize("locale", ["de-DE", "en-GB"])
def test_select_and_pay_one_of_three_items(items_server: LiveServer, browser, locale: str):
    reference, item, before, after, title, paid, select, pay = CASES[locale]
    context = browser.new_context(
        viewport={"width": 360, "height": 780}, device_scale_factor=2, is_mobile=True,
        has_touch=True, locale=locale, user_agent=PHONE_UA,
    )  # fmt: skip
    context.set_default_timeout(15_000)
    phone: Page = context.new_page()
    try:
        phone.goto(items_server.url(reference))
        expect(phone.locator("#items-title")).to_have_text(title)
        expect(phone.locator("[data-item]")).to_have_count(3)
        expect(phone.locator(".claim .amount")).to_have_text(before)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        snap(phone, SHOTS / f"1-page-{locale}.png")

        phone.locator("[data-cta=select-pay]").tap()
        expect(phone.locator("input[name=item]")).to_have_count(3)
        phone.locator(f"[data-item='{item}'] input[name=item]").check()
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        snap(phone, SHOTS / f"2-select-{locale}.png")
        expect(phone.locator("[data-cta=checkout-items]")).to_have_text(pay)

        phone.locator("[data-cta=checkout-items]").tap()
        expect(phone.locator(".sandbox-banner")).to_be_visible()
        expect(phone.locator(".amount")).to_contain_text("45")
        snap(phone, SHOTS / f"3-checkout-{locale}.png")
        phone.locator("[data-sandbox=succeed]").tap()

        expect(phone.locator(f"[data-item='{item}']")).to_have_attribute("data-state", "paid")
        expect(phone.locator(f"[data-item='{item}'] .item-state")).to_have_text(paid)
        expect(phone.locator("[data-state=open]")).to_have_count(2)
        expect(phone.locator(".claim .amount")).to_have_text(after)
        expect(phone.locator("[data-cta=select-pay]")).to_have_text(select)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        snap(phone, SHOTS / f"4-paid-{locale}.png")
    finally:
        context.close()
