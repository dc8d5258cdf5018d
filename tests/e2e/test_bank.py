"""Bank transfers in Chromium: a statement is imported and the debtor's page thanks for the
transfer; the manager assigns a transfer no rule could place, and the debtor's balance moves."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from kindly.bank.rf import printed
from tests.e2e.conftest import LiveServer, _checked, rendered_campaign, serving, snap
from tests.support import bankfiles as bf

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
PORTFOLIO = (
    "reference,salutation,first_name,last_name,locale,currency,amount_due,due_date,creditor\n"
    "INV-40017,Frau,Erika,Mustermann,de-DE,EUR,57.30,2026-11-15,Stadtwerke Beispielstadt GmbH\n"
    "INV-40018,Herr,Max,Müller,de-DE,EUR,120.00,2026-11-15,Stadtwerke Beispielstadt GmbH\n"
)
SHOTS = Path("/work/notes/shots/bankimport")


@pytest.fixture(scope="module")
def bank_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A rendered campaign with two German debtors, a manager, and `kindly serve`."""
    workdir = tmp_path_factory.mktemp("bank")
    server, port, rows = rendered_campaign(workdir, PORTFOLIO, key="bank")
    server.payrefs = {row["reference"]: row["payment_reference"] for row in rows}  # type: ignore[attr-defined]
    created = subprocess.run(
        [sys.executable, "-m", "kindly", "user", "create", "manager@example.org", "--role",
         "manager", "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, env=server.env, cwd=workdir, timeout=120,
    )  # fmt: skip
    _checked(created, "kindly user create")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serving(server, port):
        yield server


def test_the_page_thanks_for_a_transfer_once_the_statement_is_in(bank_server, phone: Page):
    server = bank_server
    phone.goto(server.url("INV-40017"))
    expect(phone.locator("body")).not_to_contain_text("Überweisung über")
    reference = printed(server.payrefs["INV-40017"]).lower()  # as a person types it
    statement = server.workdir / "dec.xml"
    statement.write_bytes(bf.camt053([bf.Payment("Erika Mustermann", "DE02120300000000202051",
                                                 "57.30", remittance=f"Zahlung {reference}")]))  # fmt: skip
    done = _checked(server.kindly("bank", "import", str(statement)), "kindly bank import")
    assert "1 matched" in done.stdout
    phone.goto(server.url("INV-40017"))
    expect(phone.locator(".notice").first).to_have_text(
        "Wir haben Ihre Überweisung über 57,30\xa0€ am 1. Dezember erhalten. Vielen Dank!"
    )
    expect(phone.locator("[data-case=paid], .settled").first).to_contain_text(
        "Es ist nichts mehr offen"
    )  # the case is paid: the page thanks and no longer asks
    snap(phone, SHOTS / "page-transfer-received-360.png")


def test_the_manager_assigns_a_waiting_transfer_and_the_balance_moves(
    bank_server, browser, phone: Page
):
    server = bank_server
    statement = server.workdir / "unknown.xml"
    statement.write_bytes(bf.camt053([bf.Payment("M. Mueller sen.", "DE75512108001245126199",
                                                 "20.00", remittance="Strom November")],
                                     statement_id="S-2"))  # fmt: skip
    done = _checked(server.kindly("bank", "import", str(statement)), "kindly bank import")
    assert "1 unmatched" in done.stdout
    phone.goto(server.url("INV-40018"))
    expect(phone.locator("[data-case=partly_paid]")).to_have_count(0)

    context = browser.new_context(viewport={"width": 360, "height": 780}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True, locale="en-GB")  # fmt: skip
    context.set_default_timeout(15_000)
    desk = context.new_page()
    desk.goto(f"{server.base_url}/admin/bank")
    expect(desk).to_have_url(re.compile(r"/admin/login"))
    desk.fill("#email", "manager@example.org")
    desk.fill("#password", PASSWORD)
    desk.click("button[type=submit]")
    desk.goto(f"{server.base_url}/admin/bank")
    row = desk.locator("#queue [data-entry]").first
    expect(row).to_contain_text("Strom November")
    snap(desk, SHOTS / "cockpit-bank-queue-360.png")
    row.locator("[data-form=assign] input[name=reference]").fill("INV-40018")
    row.locator("[data-form=assign] button").click()
    expect(desk.locator("#queue-h")).to_have_text("Waiting for a decision (0)")
    expect(desk.locator("#booked")).to_contain_text("INV-40018")
    snap(desk, SHOTS / "cockpit-bank-assigned-360.png")
    context.close()

    phone.goto(server.url("INV-40018"))
    expect(phone.locator("[data-case=partly_paid]")).to_be_visible()  # partly paid now
    expect(phone.locator(".claim .amount")).to_have_text("100,00\xa0€")  # what is still open
    expect(phone.locator(".notice").first).to_contain_text("Überweisung über 20,00\xa0€")
    snap(phone, SHOTS / "page-after-assign-360.png")
