"""A debtor agrees a plan on her phone, downloads its confirmation and pays the first
instalment in the sandbox; `kindly stats` then matches the ledger."""

from __future__ import annotations

import csv
import re
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from tests.e2e.conftest import LiveServer, snap

PLANS = """reference,first_name,last_name,locale,currency,amount_due,due_date,creditor
P-1,Marta,Kowalska,de-DE,EUR,600.00,2026-12-20,Stadtwerke Beispielstadt GmbH
"""


@pytest.fixture(scope="module")
def plans(live_server: LiveServer) -> LiveServer:
    portfolio = live_server.workdir / "plans.csv"
    portfolio.write_text(PLANS, encoding="utf-8")
    assert (
        live_server.kindly("import", str(portfolio), "--campaign", "plans", "--create").returncode
        == 0
    )
    export = live_server.workdir / "plans-export.csv"
    assert live_server.kindly("export", "plans", "--out", str(export)).returncode == 0
    with export.open(encoding="utf-8") as handle:
        live_server.tokens.update({r["reference"]: r["token"] for r in csv.DictReader(handle)})
    return live_server


def test_agree_a_plan_download_its_confirmation_and_pay_the_first_instalment(
    plans: LiveServer, phone: Page, artifacts_dir, tmp_path
):
    phone.goto(plans.url("P-1"))
    phone.locator("[data-cta=plan]").tap()
    phone.select_option("#instalments", "3")
    phone.locator("[data-cta=plan-show]").tap()
    schedule = phone.inner_text("main")
    assert "200,00\xa0€" in schedule  # three of 200,00 €
    snap(phone, str(artifacts_dir / "plan-schedule-de.png"))
    phone.locator("[data-cta=plan-agree]").tap()
    expect(phone).to_have_url(plans.url("P-1", "/plan/agreed"))
    snap(phone, str(artifacts_dir / "plan-agreed-de.png"))

    with phone.expect_download() as download:
        phone.evaluate(
            "document.querySelector('[data-cta=plan-confirmation]').setAttribute('download', '')"
        )
        phone.locator("[data-cta=plan-confirmation]").tap()
    pdf = tmp_path / "confirmation.pdf"
    download.value.save_as(pdf)
    text = " ".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "Kowalska" in text and "200,00" in text

    phone.locator("[data-cta=instalment]").tap()
    expect(phone.locator(".sandbox-banner")).to_contain_text("TEST CHECKOUT")
    phone.locator("[data-sandbox=succeed]").tap()
    expect(phone.locator("main")).to_contain_text(re.compile("eingegangen"))

    numbers = plans.stats("plans")
    funnel = numbers["funnel"]
    assert (funnel["plan_agreed"], funnel["payment_started"], funnel["paid"]) == (1, 1, 1)
    assert numbers["collected"] == {"EUR": "200.00"}
    # the ledger agrees: what was collected is what the balance went down by
    owed = Decimal(numbers["owed"]["EUR"])
    assert owed == Decimal("600.00")
    page = phone.inner_text("main")
    assert "400,00\xa0€" in page
