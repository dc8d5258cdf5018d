"""A dispute with documents on a 360 px phone, in German and in English: the debtor disputes
with a PDF, the page promises an answer by a date; a manager opens the file through its
short-lived link and resolves the dispute in the cockpit (rejected in German, the amount
corrected in English); the debtor's page then shows the outcome. Screenshots in SHOTS."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PHONE_UA, LiveServer, snap
from tests.e2e.test_microsite import axe_problems
from tests.support import disputefiles as make

SHOTS = Path("/tmp/shots-disputes")
PASSWORD = "correct horse battery staple"
PORTFOLIO = """reference,salutation,first_name,last_name,email,locale,currency,amount_due,due_date,creditor,contract
D-DE,Frau,Anna,Schäfer,d-de@example.org,de-DE,EUR,238.97,2026-12-14,Stadtwerke Beispielstadt GmbH,Vertrag 4711
D-EN,Ms,Priya,Raman,d-en@example.org,en-GB,GBP,256.72,2026-12-14,Northern Water Ltd,Account 99
"""
FLOWS = {
    "de-DE": {
        "reference": "D-DE", "link": "Der Forderung widersprechen, mit Belegen",
        "reason": "not_my_contract", "text": "Diesen Vertrag habe ich nie abgeschlossen.",
        "open": "Wir prüfen Ihren Widerspruch", "by": "Unsere Antwort erhalten Sie bis zum",
        "outcome": "rejected", "answer": "Der Vertrag wurde am 2.3.2025 online mit Ihrer "
                                         "E-Mail-Adresse geschlossen; die Bestätigung liegt bei.",
        "shown": "Ihr Widerspruch wurde abgelehnt",
    },
    "en-GB": {
        "reference": "D-EN", "link": "Dispute this claim, with documents",
        "reason": "amount_wrong", "text": "I was billed twice for October.",
        "open": "We are looking into your objection", "by": "You will have our answer by",
        "outcome": "corrected", "amount": "199.99", "answer": "",
        "shown": "The amount is now £199.99.",
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def disputes(live_server: LiveServer) -> Iterator[LiveServer]:
    """Campaign `disputes` (a German and an English debtor), rendered, and a manager."""
    portfolio = live_server.workdir / "disputes.csv"
    portfolio.write_text(PORTFOLIO, encoding="utf-8")
    made = live_server.kindly("import", str(portfolio), "--campaign", "disputes", "--create")
    assert made.returncode == 0, made.stderr
    assert live_server.kindly("render", "disputes", "--kinds", "site").returncode == 0
    export = live_server.workdir / "disputes-export.csv"
    assert live_server.kindly("export", "disputes", "--out", str(export)).returncode == 0
    with export.open(encoding="utf-8") as handle:
        live_server.tokens.update({r["reference"]: r["token"] for r in csv.DictReader(handle)})
    user = subprocess.run(
        [sys.executable, "-m", "kindly", "user", "create", "disputes@example.org", "--role",
         "manager", "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, env=live_server.env,
        cwd=live_server.workdir, timeout=120,
    )  # fmt: skip
    assert user.returncode == 0, user.stderr
    SHOTS.mkdir(parents=True, exist_ok=True)
    return live_server


def phone_for(browser, locale: str) -> Page:
    context = browser.new_context(
        viewport={"width": 360, "height": 780}, device_scale_factor=2, is_mobile=True,
        has_touch=True, locale=locale, user_agent=PHONE_UA, bypass_csp=True,  # for axe-core
    )  # fmt: skip
    context.set_default_timeout(15_000)
    return context.new_page()


def fits(page: Page) -> None:
    """Nothing is wider than the phone."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


@pytest.mark.parametrize("locale", list(FLOWS))
def test_a_dispute_with_a_pdf_resolved_in_the_cockpit_and_shown_to_the_debtor(
    disputes: LiveServer, browser, locale: str, tmp_path
):
    flow = FLOWS[locale]
    reference, lang = flow["reference"], locale[:2]
    document = tmp_path / "Beleg.pdf"
    document.write_bytes(make.pdf())
    program = tmp_path / "rechnung.pdf"
    program.write_bytes(make.pe_program())

    phone = phone_for(browser, locale)
    phone.goto(disputes.url(reference))
    phone.get_by_text(flow["link"]).tap()
    expect(phone.locator("input[name=reason]")).to_have_count(5)
    assert axe_problems(phone) == []
    fits(phone)
    snap(phone, SHOTS / f"{lang}-1-form.png")
    # an .exe named .pdf first: refused in the debtor's language, the form kept
    phone.check(f"input[value={flow['reason']}]")
    phone.fill("#dispute-text", flow["text"])
    phone.set_input_files("#dispute-files", str(program))
    phone.locator("[data-cta=dispute-send]").tap()
    expect(phone.locator("[data-dispute-error]")).to_contain_text("rechnung.pdf")
    expect(phone.locator("#dispute-text")).to_have_value(flow["text"])
    snap(phone, SHOTS / f"{lang}-2-refused.png")
    phone.check(f"input[value={flow['reason']}]")
    phone.set_input_files("#dispute-files", str(document))
    phone.locator("[data-cta=dispute-send]").tap()
    main = phone.locator("main")
    expect(main).to_contain_text(flow["open"])
    expect(phone.locator("[data-dispute-answer-by]")).to_contain_text(flow["by"])
    expect(phone.locator("[data-cta=pay]")).to_have_count(0)
    fits(phone)
    snap(phone, SHOTS / f"{lang}-3-open.png")

    desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    try:
        admin = desk.new_page()
        admin.goto(f"{disputes.base_url}/admin/login")
        admin.fill("#email", "disputes@example.org")
        admin.fill("#password", PASSWORD)
        admin.click("button[type=submit]")
        admin.goto(f"{disputes.base_url}/admin/campaigns/disputes/debtors/{reference}")
        card = admin.locator("#disputes article[data-state=open]")
        expect(card).to_contain_text(flow["text"])
        link = card.locator("[data-dispute-file]")
        expect(link).to_have_text("Beleg.pdf")
        href = link.get_attribute("href")
        assert re.fullmatch(r"/admin/dispute-files/\d+\.\d+\.[0-9a-f]{32}", href)
        got = admin.request.get(f"{disputes.base_url}{href}")
        assert got.status == 200 and got.body() == make.pdf()
        card.scroll_into_view_if_needed()
        snap(admin, SHOTS / f"{lang}-4-cockpit.png", full_page=False)
        card.locator(f"input[name=outcome][value={flow['outcome']}]").check()
        if flow.get("amount"):
            card.locator("input[name=amount]").fill(flow["amount"])
        if flow["answer"]:
            card.locator("textarea[name=answer]").fill(flow["answer"])
        card.locator("button[type=submit]").click()
        expect(admin.locator("#disputes article[data-state]")).not_to_have_attribute(
            "data-state", "open"
        )
        expect(admin.locator("#case-state")).not_to_contain_text("dispute open")
        admin.locator("#disputes").scroll_into_view_if_needed()
        snap(admin, SHOTS / f"{lang}-5-resolved.png", full_page=False)
    finally:
        desk.close()

    phone.goto(disputes.url(reference))
    expect(phone.locator("main")).to_contain_text(flow["shown"])
    if flow["answer"]:
        expect(phone.locator("[data-dispute-answer]").first).to_contain_text("2.3.2025")
    expect(phone.locator("[data-cta=pay]")).to_have_count(1)  # the claim stands, corrected or not
    assert axe_problems(phone) == []
    fits(phone)
    snap(phone, SHOTS / f"{lang}-6-outcome.png")
    phone.context.close()
