"""Costs by step on a 360 px phone (issue 19, item 3): after two cadence steps the debtor's
page shows each cost by type, amount and legal basis, in German and in English, fits the
screen and passes axe. Screenshots: /tmp/shots-costs/."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from tests.e2e.conftest import snap
from tests.e2e.test_microsite import axe_problems, new_phone

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/shots-costs")
PASSWORD = "correct horse battery staple"
AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
RULES = {
    "defaults": {
        "channels": ["email", "letter"], "cadence_days": [0, 7, 14],
        "costs": [
            {"step": 0, "type": "collection_fee", "amount": "12.50",
             "basis": "RDG § 13a i. V. m. RVG VV 2300 (Geschäftsgebühr)"},
            {"step": 1, "type": "dunning_fee", "amount": "5.00", "basis": "§ 288 Abs. 4 BGB"},
            {"step": 1, "type": "address_inquiry", "amount": "3.20", "basis": "§ 286 BGB"},
        ],
    }
}  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The front in-process on SQLite, two steps sent (costs booked), on a free port."""
    from kindly.accounts import users
    from kindly.campaigns.models import Campaign, Debtor
    from kindly.messaging import delivery
    from kindly.rules.store import decide, save_rules
    from kindly.rules.validate import parse_rules
    from tests.support.app import installed, launched, load_campaign, make_settings
    from web import create_app
    from workers.queues import Dispatcher
    from workers.send import enqueue_sends

    settings = make_settings(tmp_path_factory.mktemp("costs") / "var")
    with installed(settings) as context:
        load_campaign(context)
        launched(context)
        with context.db.session() as session:
            campaign = session.scalar(select(Campaign))
            decide(session, campaign, save_rules(session, campaign, parse_rules(RULES)), AT.date())
        for at in (AT, AT + dt.timedelta(days=7)):
            with context.db.session() as session:
                planned = delivery.plan(session, session.scalar(select(Campaign)), at)
            enqueue_sends(Dispatcher(context.settings), planned, at)
        with context.db.session() as session:
            tokens = dict(session.execute(select(Debtor.reference, Debtor.token)).all())
            users.create_user(session, "manager@example.org", PASSWORD, "manager")
        app = create_app(context.settings, context=context)
        app.config["KINDLY_EVENT_WRITER"] = False
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_port}", tokens
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("locale", "reference", "expected"),
    [
        ("de-DE", "A-1", [("Inkassokosten", "12,50\u00a0€"), ("Mahngebühr", "5,00\u00a0€"),
                          ("Adressermittlung", "3,20\u00a0€")]),
        ("en-GB", "A-2", [("Collection costs", "£12.50"), ("Reminder fee", "£5.00"),
                          ("Address enquiry", "£3.20")]),
    ],
)  # fmt: skip
def test_the_phone_shows_each_cost_by_type_amount_and_basis(
    browser, served, locale, reference, expected
):
    url, tokens = served
    context, page = new_phone(browser, locale, bypass_csp=True)  # axe is injected inline
    try:
        page.goto(f"{url}/s/{tokens[reference]}")
        section = page.locator("[data-costs]")
        section.scroll_into_view_if_needed()
        assert section.is_visible()
        rows = section.locator("tr[data-cost]")
        seen = [
            (row.locator("th").evaluate("n => n.firstChild.textContent.trim()"),
             row.locator("[data-cost-amount]").inner_text())
            for row in rows.all()
        ]  # fmt: skip
        assert seen == expected
        bases = section.locator("[data-basis]").all_inner_texts()
        assert bases[1].endswith("§ 288 Abs. 4 BGB") and "RVG VV 2300" in bases[0]
        # nothing wider than the phone: the long basis wraps under its type
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        SHOTS.mkdir(parents=True, exist_ok=True)
        snap(page, SHOTS / f"costs-{locale}.png")
        section.screenshot(path=str(SHOTS / f"costs-{locale}-section.png"))
        assert axe_problems(page) == []
    finally:
        context.close()


def test_the_cockpit_case_page_lists_costs_by_type_and_basis_and_each_booking(browser, served):
    url, _ = served
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    try:
        page.goto(f"{url}/admin/login")
        page.fill("#email", "manager@example.org")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{url}/admin/campaigns/winter/debtors/A-1")
        section = page.locator("#costs")
        section.scroll_into_view_if_needed()
        lines = section.locator("#cost-lines tr[data-cost]").all_inner_texts()
        assert [line.split("\t")[0] for line in lines] == [
            "collection_fee",
            "dunning_fee",
            "address_inquiry",
        ]
        assert "20.70" in section.locator("#costs-total").inner_text()
        assert section.locator("#cost-bookings tbody tr").count() == 3
        SHOTS.mkdir(parents=True, exist_ok=True)
        section.screenshot(path=str(SHOTS / "cockpit-costs.png"))
    finally:
        context.close()
