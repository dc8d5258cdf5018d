"""A debtor on her phone: reads her page, pays in the sandbox checkout, watches the video.

The tests share one live server and run in file order: the German debtor pays in
test_german_debtor_pays, so test_german_debtor_reads_her_page must come before it.
"""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer, snap

pytestmark = pytest.mark.e2e

AMOUNT = "1.234,56\xa0€"


def normal(text: str) -> str:
    """Whitespace (NBSP included) collapsed to single spaces."""
    return " ".join(text.split())


def body_text(page: Page) -> str:
    return normal(page.locator("body").inner_text())


def test_german_debtor_reads_her_page(live_server: LiveServer, phone: Page, artifacts_dir):
    response = phone.goto(live_server.url("A-1"))
    assert response is not None and response.status == 200

    text = body_text(phone)
    assert "Sehr geehrte Frau Müller," in text
    assert normal(AMOUNT) in text
    expect(phone.locator(".amount")).to_have_text(AMOUNT)  # the exact NBSP before €
    expect(phone.locator("time[datetime='2026-12-15']")).to_have_text("15. Dezember 2026")
    expect(phone.locator("dl.facts")).to_contain_text("A-1")

    # Fits the phone: nothing sticks out sideways at 360 CSS pixels.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    expect(phone.locator("[data-cta=pay]")).to_be_visible()
    expect(phone.locator("[data-cta=plan]")).to_be_visible()
    expect(phone.locator("[data-cta=pay]")).to_contain_text(AMOUNT)

    snap(phone, artifacts_dir / "1-site-de.png")


def test_german_debtor_pays(live_server: LiveServer, phone: Page, artifacts_dir):
    phone.goto(live_server.url("A-1"))
    phone.locator("[data-cta=pay]").tap()
    expect(phone).to_have_url(live_server.url("A-1", "/pay"))
    expect(phone.locator("h1")).to_have_text("Jetzt zahlen")
    expect(phone.locator(".amount")).to_have_text(AMOUNT)
    snap(phone, artifacts_dir / "2-pay-de.png")

    phone.locator("[data-cta=checkout]").tap()
    expect(phone).to_have_url(re.compile(r"/sandbox/checkout/sbx_[A-Za-z0-9_-]+$"))
    expect(phone.locator(".sandbox-banner")).to_contain_text("TEST CHECKOUT")
    expect(phone.locator(".amount")).to_have_text(AMOUNT)
    snap(phone, artifacts_dir / "3-checkout-de.png")

    phone.locator("[data-sandbox=succeed]").tap()
    expect(phone).to_have_url(live_server.url("A-1", "?payment=succeeded"))
    status = phone.locator(".status")
    expect(status).to_contain_text(f"Ihre Zahlung über {AMOUNT} ist eingegangen")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    snap(phone, artifacts_dir / "4-thanks-de.png")

    numbers = live_server.stats()
    funnel = numbers["funnel"]
    assert funnel["paid"] == 1
    assert funnel["payment_started"] == 1
    assert funnel["viewed"] >= 1
    assert funnel["cta"] >= 1
    assert numbers["collected"] == {"EUR": "1234.56"}


def test_english_debtor_cancels_at_checkout(live_server: LiveServer, phone: Page, artifacts_dir):
    phone.goto(live_server.url("A-2"))
    expect(phone.locator(".amount")).to_have_text("£89.90")
    phone.locator("[data-cta=pay]").tap()
    expect(phone).to_have_url(live_server.url("A-2", "/pay"))
    phone.locator("[data-cta=checkout]").tap()
    expect(phone.locator(".sandbox-banner")).to_contain_text("TEST CHECKOUT")

    phone.locator("[data-sandbox=cancel]").tap()
    expect(phone).to_have_url(live_server.url("A-2", "?payment=canceled"))
    expect(phone.locator(".status")).to_have_text("The payment was cancelled. Nothing was charged.")
    expect(phone.locator(".status")).not_to_contain_text("Thank you")
    snap(phone, artifacts_dir / "5-canceled-en.png")

    assert live_server.stats()["collected"] == {"EUR": "1234.56"}


def test_video_plays(live_server: LiveServer, phone: Page):
    phone.goto(live_server.url("A-3"))
    video = phone.locator("video")
    expect(video).to_have_count(1)

    poster = phone.request.get(live_server.base_url + video.get_attribute("poster"))
    assert poster.status == 200
    assert poster.headers["content-type"] == "image/jpeg"
    assert poster.body()[:3] == b"\xff\xd8\xff"

    source = live_server.base_url + phone.locator("video source").get_attribute("src")
    partial = phone.request.get(source, headers={"Range": "bytes=0-99"})
    assert partial.status == 206
    assert partial.headers["content-range"].startswith("bytes 0-99/")
    assert len(partial.body()) == 100

    h264 = phone.evaluate(
        "document.querySelector('video').canPlayType('video/mp4; codecs=\"avc1.42E01E\"')"
    )
    if not h264:
        pytest.skip("this Chromium cannot play H.264 (canPlayType is empty); playback unchecked")
    played = phone.evaluate(
        """async () => {
            const video = document.querySelector('video');
            video.muted = true;
            await video.play();
            await new Promise((resolve) => setTimeout(resolve, 1200));
            video.pause();
            return {time: video.currentTime, error: video.error && video.error.code};
        }"""
    )
    assert played["error"] is None
    assert played["time"] > 0


def test_unknown_link(live_server: LiveServer, phone: Page, artifacts_dir):
    response = phone.goto(f"{live_server.base_url}/s/{secrets.token_urlsafe(24)}")
    assert response is not None and response.status == 404
    expect(phone.locator("h1")).to_have_text("Diesen Link finden wir nicht")
    expect(phone.locator('form[action$="/find"]')).to_be_visible()  # a way to find the case
    html = phone.content()
    assert "Traceback" not in html
    assert "werkzeug" not in html.lower()
    snap(phone, artifacts_dir / "6-not-found-de.png")
