"""The video on the microsite: plays inline with captions, reports progress, and its
overlaid buttons open the same pay flow as the page's."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer


def test_video_plays_with_captions_and_its_overlay_opens_the_pay_flow(
    live_server: LiveServer, phone: Page, artifacts_dir
):
    phone.goto(live_server.url("A-3"))
    if not phone.evaluate(
        "document.querySelector('video').canPlayType('video/mp4; codecs=\"avc1.42E01E\"')"
    ):
        pytest.skip("this Chromium cannot play H.264")
    before = live_server.stats()["funnel_raw"]
    state = phone.evaluate(
        """async () => {
            const video = document.querySelector('video');
            video.muted = true;
            await video.play();
            await new Promise((resolve) => setTimeout(resolve, 1500));
            const track = video.textTracks[0];
            return {ready: video.readyState, time: video.currentTime,
                    captions: track ? track.mode : null, language: track ? track.language : null};
        }"""
    )
    assert state["ready"] == 4 and state["time"] > 0.5
    assert (state["captions"], state["language"]) == ("showing", "it")
    overlay = phone.locator("[data-cta=video-pay]")
    expect(overlay).to_be_hidden()  # the pay button belongs to a later scene
    start = float(overlay.get_attribute("data-from"))
    phone.evaluate(f"document.querySelector('video').currentTime = {start + 0.5}")
    expect(overlay).to_be_visible()
    expect(overlay).to_have_text("Paghi ora 42,00\xa0€")
    phone.locator(".player").screenshot(path=str(artifacts_dir / "video-overlay-it.png"))
    # keyboard users reach it too
    overlay.focus()
    expect(overlay).to_be_focused()
    phone.keyboard.press("Enter")
    expect(phone).to_have_url(live_server.url("A-3", "/pay?c=video"))
    expect(phone.locator("h1")).to_have_text("Paghi ora")
    after = live_server.stats()["funnel_raw"]
    assert after["cta"] > before["cta"]
    assert after["viewed"] >= before["viewed"]


def test_progress_is_reported_once_per_mark(live_server: LiveServer, phone: Page):
    phone.goto(live_server.url("A-3"))
    phone.evaluate(
        """async () => {
            const video = document.querySelector('video');
            video.muted = true;
            await video.play();
            video.currentTime = video.duration * 0.8;
            await new Promise((resolve) => setTimeout(resolve, 800));
            video.pause();
        }"""
    )
    phone.wait_for_timeout(500)
    from sqlalchemy import select

    from kindly.context import Context
    from kindly.infra.config import load_settings
    from kindly.tracking.models import Event

    context = Context(load_settings(live_server.env))
    with context.db.session() as session:
        marks = sorted(
            e.data.get("pct")
            for e in session.scalars(select(Event).where(Event.type == "video_progress"))
        )
        plays = session.scalars(select(Event).where(Event.type == "video_play")).all()
    context.close()
    assert plays and all(p.agent == "human" for p in plays)
    assert {"25", "50", "75"} <= set(marks)
