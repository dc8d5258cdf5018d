"""Payments made elsewhere in Chromium: the manager records a cheque on the debtor's cockpit
page, and the debtor's phone shows what is still open of each part (costs first)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer, _checked, rendered_campaign, serving, snap

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
PORTFOLIO = (
    "reference,salutation,first_name,last_name,locale,currency,amount_due,principal,interest,"
    "fees,due_date,creditor\n"
    "K-1,Frau,Erika,Mustermann,de-DE,EUR,150.00,100.00,20.00,30.00,2026-11-15,Stadtwerke GmbH\n"
)
SHOTS = Path("/work/notes/shots/ledger")


@pytest.fixture(scope="module")
def books_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One German debtor with a broken-down claim, rendered; a manager; `kindly serve`."""
    workdir = tmp_path_factory.mktemp("books")
    server, port, _ = rendered_campaign(workdir, PORTFOLIO, key="books")
    created = subprocess.run(
        [sys.executable, "-m", "kindly", "user", "create", "manager@example.org", "--role",
         "manager", "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, env=server.env, cwd=workdir, timeout=120,
    )  # fmt: skip
    _checked(created, "kindly user create")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serving(server, port):
        yield server


def test_a_cheque_recorded_in_the_cockpit_shows_per_part_on_the_phone(
    books_server, browser, phone: Page
):
    server = books_server
    phone.goto(server.url("K-1"))
    expect(phone.locator("table.breakdown")).not_to_contain_text("Noch offen")

    context = browser.new_context(viewport={"width": 360, "height": 780}, locale="en-GB")
    context.set_default_timeout(15_000)
    desk = context.new_page()
    desk.goto(f"{server.base_url}/admin/login")
    desk.fill("#email", "manager@example.org")
    desk.fill("#password", PASSWORD)
    desk.click("button[type=submit]")
    desk.goto(f"{server.base_url}/admin/campaigns/winter/debtors/K-1")
    form = desk.locator("#record-form")
    form.locator("[name=amount]").fill("40.00")
    form.locator("[name=method]").select_option("cheque")
    form.locator("[name=date]").fill((dt.date.today() - dt.timedelta(days=1)).isoformat())
    form.locator("[name=note]").fill("cheque 0815")
    form.locator("button").click()
    expect(desk.locator("#books")).to_contain_text("The payment was recorded.")
    expect(desk.locator("#open-parts [data-part=fees]")).to_contain_text("€0.00")
    expect(desk.locator("#open-parts [data-part=interest]")).to_contain_text("€10.00")
    snap(desk, SHOTS / "cockpit-recorded-360.png")
    context.close()

    phone.goto(server.url("K-1"))
    rows = phone.locator("table.breakdown tr")
    expect(rows.nth(0)).to_have_text("ForderungNoch offen")
    expect(rows.nth(1)).to_contain_text("100,00\xa0€100,00\xa0€")  # principal untouched
    expect(rows.nth(2)).to_contain_text("20,00\xa0€10,00\xa0€")  # interest half paid
    expect(rows.nth(3)).to_contain_text("30,00\xa0€0,00\xa0€")  # costs first (§ 367 BGB)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, width  # claimed and open side by side still fit the phone
    snap(phone, SHOTS / "page-open-parts-360.png")
