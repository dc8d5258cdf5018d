"""A settlement offer on a 360 px phone, in German and in British English: the offer on the
page, accepted, paid in the sandbox checkout, the case settled; then the one question after.

Screenshots go to /tmp/shots-offers (and test-artifacts/e2e/offers)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PHONE_UA, LiveServer, rendered_campaign, serving, snap

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/shots-offers")
PORTFOLIO = """reference,salutation,first_name,last_name,email,locale,currency,amount_due,due_date,creditor,contract,street,postal_code,city,country
OF-DE,Frau,Anna,Müller,anna@example.org,de-DE,EUR,1234.56,2026-11-15,Stadtwerke Beispielstadt GmbH,Stromliefervertrag 4711,Hauptstraße 5,10115,Berlin,DE
OF-GB,Ms,Siobhán,O'Brien,siobhan@example.org,en-GB,GBP,480.00,2026-11-20,Northern Water Ltd,Account 99,12 Baker Street,NW1 6XE,London,GB
"""
UNTIL = dt.date.today() + dt.timedelta(days=14)


@pytest.fixture(scope="module")
def offer_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A campaign whose rules offer 25 % off, floor 300, to both debtors; served."""
    workdir = tmp_path_factory.mktemp("e2e-offers")
    offer = {"discount_percent": 25, "floor": 300, "valid_until": UNTIL.isoformat(),
             "reason": "Winter settlement"}  # fmt: skip
    server, port, _ = rendered_campaign(workdir, PORTFOLIO, key="secret",
                                        rules={"defaults": {"offer": offer}})  # fmt: skip
    with serving(server, port):
        yield server


def phone_in(browser, locale: str) -> Page:
    context = browser.new_context(
        viewport={"width": 360, "height": 780}, device_scale_factor=2, is_mobile=True,
        has_touch=True, locale=locale, user_agent=PHONE_UA,
    )  # fmt: skip
    context.set_default_timeout(15_000)
    return context.new_page()


def fits(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


CASES = [
    ("de-DE", "OF-DE", {"offer": "925,92\xa0€", "total": "1.234,56\xa0€", "title": "Ein Vergleichsangebot für Sie",
                         "cta": "925,92\xa0€ zahlen und erledigen", "paid": "Ihre Zahlung über 925,92\xa0€ ist eingegangen",
                         "question": "Wie einfach war das?", "waived": "308,64\xa0€", "thanks": "Danke für Ihre Antwort!",
                         "comment": "Ging schnell"}),
    ("en-GB", "OF-GB", {"offer": "£360.00", "total": "£480.00", "title": "A settlement offer for you",
                         "cta": "Pay £360.00 and settle", "paid": "£360.00",
                         "question": "How easy was this?", "waived": "£120.00", "thanks": "Thank you for your answer!",
                         "comment": "Quick and clear"}),
]  # fmt: skip


@pytest.mark.parametrize(("locale", "reference", "words"), CASES, ids=["de-DE", "en-GB"])
def test_an_offer_accepted_paid_and_the_question_after(
    offer_server: LiveServer, browser, artifacts_dir, locale, reference, words
):
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone = phone_in(browser, locale)
    tag = locale
    phone.goto(offer_server.url(reference))
    offer = phone.locator("section.offer")
    expect(offer).to_contain_text(words["title"])
    expect(offer).to_contain_text(words["offer"])
    expect(offer).to_contain_text(words["total"])
    fits(phone)
    snap(phone, SHOTS / f"{tag}-1-page.png")

    phone.locator("[data-cta=offer]").tap()
    expect(phone).to_have_url(offer_server.url(reference, "/offer"))
    expect(phone.locator("[data-offer-amount]")).to_have_text(words["offer"])
    fits(phone)
    snap(phone, SHOTS / f"{tag}-2-offer.png")

    phone.locator("[data-cta=offer-checkout]").tap()
    expect(phone).to_have_url(re.compile(r"/sandbox/checkout/sbx_[A-Za-z0-9_-]+$"))
    expect(phone.locator(".amount")).to_have_text(words["offer"])
    snap(phone, SHOTS / f"{tag}-3-checkout.png")
    phone.locator("[data-sandbox=succeed]").tap()

    expect(phone).to_have_url(offer_server.url(reference, "?payment=succeeded"))
    expect(phone.locator(".status")).to_contain_text(words["paid"])
    expect(phone.locator("[data-amount='0']")).to_be_visible()  # settled: nothing owed
    expect(phone.locator("section.offer")).to_have_count(0)
    expect(phone.locator("[data-cta=pay]")).to_have_count(0)
    expect(phone.locator("[data-written-off]")).to_contain_text(words["waived"])
    survey = phone.locator("section.survey")
    expect(survey).to_contain_text(words["question"])
    fits(phone)
    snap(phone, SHOTS / f"{tag}-4-settled.png")

    survey.locator("[data-score='5']").tap()
    expect(phone.locator("input[name=score][value='5']")).to_be_checked()
    phone.locator("#comment").fill(words["comment"])
    fits(phone)
    snap(phone, SHOTS / f"{tag}-5-question.png")
    phone.locator("[data-cta=survey-send]").tap()
    expect(phone).to_have_url(offer_server.url(reference, "?done=survey"))
    expect(phone.locator(".status")).to_contain_text(words["thanks"])
    expect(phone.locator("section.survey")).to_have_count(0)
    fits(phone)
    snap(phone, SHOTS / f"{tag}-6-thanks.png")
    phone.context.close()


def test_the_cockpit_numbers_after_both(offer_server: LiveServer):
    """Both debtors paid the offer: money collected is the offered amounts."""
    numbers = offer_server.stats()
    assert numbers["collected"] == {"EUR": "925.92", "GBP": "360.00"}
