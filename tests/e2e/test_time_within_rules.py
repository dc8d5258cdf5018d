"""A debtor moves an instalment of her plan on a 360 px phone, in German and in English: the
schedule shows the new date, a move outside the rules is refused in her language, and the new
confirmation PDF carries the change. Screenshots under test-artifacts/e2e/ (and /tmp/shots-time)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from babel.dates import format_date
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.e2e.conftest import PHONE_UA, LiveServer, snap

PORTFOLIO = """reference,first_name,last_name,locale,currency,amount_due,due_date,creditor
T-1,Marta,Kowalska,de-DE,EUR,600.00,2026-12-20,Stadtwerke Beispielstadt GmbH
T-2,Oliver,Grant,en-GB,GBP,300.00,2026-12-20,Northern Water Ltd
"""
SHOTS = Path("/tmp/shots-time")
CASES = {
    "de": ("T-1", "de-DE", "de_DE", "Rate verschieben", "um höchstens 14 Tage", "Änderungen des Plans"),
    "en": ("T-2", "en-GB", "en_GB", "Move this instalment", "by at most 14 days", "Changes to the plan"),
}  # fmt: skip


@pytest.fixture(scope="module")
def moving(live_server: LiveServer) -> LiveServer:
    portfolio = live_server.workdir / "time.csv"
    portfolio.write_text(PORTFOLIO, encoding="utf-8")
    done = live_server.kindly("import", str(portfolio), "--campaign", "time", "--create")
    assert done.returncode == 0, done.stderr
    export = live_server.workdir / "time-export.csv"
    assert live_server.kindly("export", "time", "--out", str(export)).returncode == 0
    with export.open(encoding="utf-8") as handle:
        live_server.tokens.update({r["reference"]: r["token"] for r in csv.DictReader(handle)})
    SHOTS.mkdir(parents=True, exist_ok=True)
    return live_server


@pytest.mark.parametrize("lang", ["de", "en"])
def test_an_instalment_moved_and_the_new_confirmation_shown(
    moving: LiveServer, browser, artifacts_dir, tmp_path, lang
):
    reference, locale, babel, button, refusal, changes_title = CASES[lang]
    context = browser.new_context(viewport={"width": 360, "height": 780}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True, locale=locale,
                                  user_agent=PHONE_UA)  # fmt: skip
    context.set_default_timeout(15_000)
    phone = context.new_page()
    try:
        phone.goto(moving.url(reference))
        phone.locator("[data-cta=plan]").tap()
        phone.select_option("#instalments", "3")
        phone.locator("[data-cta=plan-show]").tap()
        phone.locator("[data-cta=plan-agree]").tap()
        expect(phone).to_have_url(moving.url(reference, "/plan/agreed"))
        phone.locator("[data-cta=plan-move]").first.tap()
        expect(phone.locator("form.move").first).to_be_visible()
        second = phone.locator('form.move[data-instalment="2"]')
        first_day = dt.date.fromisoformat(second.get_attribute("data-first"))
        last_day = dt.date.fromisoformat(second.get_attribute("data-last"))
        assert (last_day - first_day).days == 13  # one to fourteen days after its due date
        snap(phone, SHOTS / f"move-form-{lang}.png")
        snap(phone, artifacts_dir / f"time-move-form-{lang}.png")

        # outside the rules (the browser's own limit taken off): refused, in her language
        second.locator("input[type=date]").evaluate("e => e.removeAttribute('max')")
        second.locator("input[type=date]").fill((last_day + dt.timedelta(days=5)).isoformat())
        second.get_by_role("button", name=button).tap()
        expect(phone.locator("[data-time-error]")).to_contain_text(refusal)
        snap(phone, SHOTS / f"move-refused-{lang}.png")

        # inside the rules: moved, the plan shows the new date and the new confirmation
        wanted = first_day + dt.timedelta(days=6)
        second = phone.locator('form.move[data-instalment="2"]')
        second.locator("input[type=date]").fill(wanted.isoformat())
        second.get_by_role("button", name=button).tap()
        expect(phone.locator("[data-time-done]")).to_be_visible()
        written = format_date(wanted, format="long", locale=babel)
        expect(phone.locator('[data-schedule] tr[data-instalment="2"]')).to_contain_text(written)
        snap(phone, SHOTS / f"move-done-{lang}.png")
        snap(phone, artifacts_dir / f"time-move-done-{lang}.png")

        with phone.expect_download() as download:
            phone.evaluate(
                "document.querySelector('[data-cta=plan-confirmation]').setAttribute('download', '')"
            )
            phone.locator("[data-cta=plan-confirmation]").tap()
        pdf = tmp_path / f"confirmation-{lang}.pdf"
        download.value.save_as(pdf)
        text = " ".join(page.extract_text() for page in PdfReader(pdf).pages)
        assert changes_title in text and written in text
        (SHOTS / f"confirmation-{lang}.pdf").write_bytes(pdf.read_bytes())

        # the payment day: the new schedule first, on the 15th of each month
        phone.locator("[data-cta=plan-day]").tap()
        phone.select_option("#day", "15")
        phone.locator("[data-cta=plan-day-show]").tap()
        expect(phone.locator("[data-schedule] tr[data-date]")).to_have_count(3)
        snap(phone, SHOTS / f"day-preview-{lang}.png")

        # breathing space from the page: the page then shows it and its end
        phone.goto(moving.url(reference, "/breathing"))
        phone.fill("#days", "10")
        phone.locator("input[name=reason][value=illness]").check()
        snap(phone, SHOTS / f"breathing-form-{lang}.png")
        phone.locator("[data-cta=breathing-confirm]").tap()
        end = dt.date.today() + dt.timedelta(days=10)
        expect(phone.locator("[data-breathing-until]")).to_have_attribute(
            "data-breathing-until", end.isoformat()
        )
        phone.goto(moving.url(reference))
        expect(phone.locator('[data-case="breathing_space"]')).to_contain_text(
            format_date(end, format="long", locale=babel)
        )
        snap(phone, SHOTS / f"breathing-page-{lang}.png")
    finally:
        context.close()
