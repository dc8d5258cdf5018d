"""The debtor's page obeys the case, on a 360 px phone (issue 17): a dispute raised on the page
holds collection in send, page and cockpit; an agreed plan shows the plan; a promise holds
until its day and is then followed up; a schedule looked at holds nothing; saved preferences
show as saved and opting back in works; a paid case stops asking, its video no longer offered.
Every state is photographed in the five languages (SHOTS)."""

from __future__ import annotations

import csv
import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.e2e.conftest import PHONE_UA, LiveServer, snap

SHOTS = Path("/work/notes/shots/page")
PASSWORD = "correct horse battery staple"
LANGS = {"de": ("de-DE", "EUR"), "en": ("en-GB", "GBP"), "it": ("it-IT", "EUR"),
         "es": ("es-ES", "EUR"), "fr": ("fr-FR", "EUR")}  # fmt: skip
NAMES = {"de": ("Frau", "Anna", "Schäfer"), "en": ("Ms", "Priya", "Raman"),
         "it": ("", "Giulia", "Ferrari"), "es": ("", "Lucía", "García"),
         "fr": ("Mme", "Camille", "Lefèvre")}  # fmt: skip
STATES = ("open", "dispute", "plan", "schedule", "promise", "promise_broken", "plan_requested",
          "plan_broken", "partly_paid", "paid", "prefs")  # fmt: skip
FLOWS = ("F-DISPUTE", "F-PLAN", "F-PROMISE", "F-BROKEN", "F-LOOK", "F-PREFS", "F-PAID")


def _portfolio() -> str:
    rows = ["reference,salutation,first_name,last_name,email,phone,locale,currency,amount_due,"
            "due_date,creditor,contract"]  # fmt: skip
    for lang, (locale, currency) in LANGS.items():
        salutation, first, last = NAMES[lang]
        amount = "256.72" if currency == "GBP" else "238.97"
        for state in STATES:
            rows.append(f"{state}-{lang},{salutation},{first},{last},{state}.{lang}@example.org,"
                        f"+4915112345678,{locale},{currency},{amount},2026-12-14,"
                        f"Stadtwerke Beispielstadt GmbH,Vertrag 4711")  # fmt: skip
    for flow in FLOWS:
        rows.append(f"{flow},Frau,Anna,Schäfer,{flow.lower()}@example.org,+4915112345679,de-DE,"
                    f"EUR,238.97,2026-12-14,Stadtwerke Beispielstadt GmbH,Vertrag 4711")  # fmt: skip
    return "\n".join(rows) + "\n"


@contextmanager
def database(server: LiveServer):
    """A session on the server's database (the same SQLite file it serves from)."""
    from kindly.context import Context
    from kindly.infra.config import load_settings

    context = Context(load_settings(server.env))
    try:
        with context.db.session() as session:
            yield session
    finally:
        context.close()


def debtor(session, reference: str):
    from kindly.campaigns.models import Debtor

    return session.scalar(select(Debtor).where(Debtor.reference == reference))


@pytest.fixture(scope="module")
def cases(live_server: LiveServer) -> Iterator[LiveServer]:
    """Campaign `cases`: one debtor per state and language and one per flow tested by hand,
    pages rendered (one of them with its video), and a manager for the cockpit."""
    portfolio = live_server.workdir / "cases.csv"
    portfolio.write_text(_portfolio(), encoding="utf-8")
    result = live_server.kindly("import", str(portfolio), "--campaign", "cases", "--create")
    assert result.returncode == 0, result.stderr
    assert live_server.kindly("render", "cases", "--kinds", "site").returncode == 0
    video = live_server.workdir / "cases-video.csv"
    video.write_text(_portfolio().splitlines()[0] + "\n" + "F-VIDEO,Frau,Anna,Schäfer,"
                     "v@example.org,,de-DE,EUR,238.97,2026-12-14,Stadtwerke Beispielstadt GmbH,"
                     "Vertrag 4711\n", encoding="utf-8")  # fmt: skip
    assert (
        live_server.kindly("import", str(video), "--campaign", "thanks", "--create").returncode == 0
    )
    assert live_server.kindly("render", "thanks", "--kinds", "site,video").returncode == 0
    for slug in ("cases", "thanks"):
        export = live_server.workdir / f"{slug}-export.csv"
        assert live_server.kindly("export", slug, "--out", str(export)).returncode == 0
        with export.open(encoding="utf-8") as handle:
            live_server.tokens.update({r["reference"]: r["token"] for r in csv.DictReader(handle)})
    made = subprocess.run(
        [sys.executable, "-m", "kindly", "user", "create", "cases@example.org", "--role",
         "manager", "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, env=live_server.env,
        cwd=live_server.workdir, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    SHOTS.mkdir(parents=True, exist_ok=True)
    return live_server


@pytest.fixture
def phone_in(browser):
    """A 360 px phone in a given locale (a fresh one per call)."""
    contexts = []

    def make(locale: str = "de-DE") -> Page:
        context = browser.new_context(
            viewport={"width": 360, "height": 780}, device_scale_factor=2, is_mobile=True,
            has_touch=True, locale=locale, user_agent=PHONE_UA,
        )  # fmt: skip
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def fits(page: Page) -> None:
    """Nothing is wider than the phone."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def send_reason(server: LiveServer, reference: str) -> str | None:
    """Why the send plan holds the debtor back (None: a reminder would go)."""
    from kindly.messaging import delivery
    from kindly.rules.models import Decision
    from kindly.rules.store import current_rules, decide, save_rules
    from kindly.rules.validate import parse_rules

    with database(server) as session:
        who = debtor(session, reference)
        campaign = who.campaign
        if session.scalar(select(Decision).where(Decision.debtor_id == who.id)) is None:
            rules = parse_rules({"defaults": {"channels": ["email"]}})
            decide(session, campaign, save_rules(session, campaign, rules), dt.date.today())
        decision = session.scalar(select(Decision).where(Decision.debtor_id == who.id))
        at = dt.datetime.now(dt.UTC).replace(hour=10, minute=0)
        planned = delivery.plan_debtor(session, who, decision, current_rules(session, campaign), at)
        return planned.reason if planned.status == "held" else None


def types_of(server: LiveServer, reference: str) -> list[str]:
    from kindly.tracking.models import Event

    with database(server) as session:
        who = debtor(session, reference)
        return list(session.scalars(select(Event.type).where(Event.debtor_id == who.id)))


def test_a_dispute_raised_on_the_page_holds_collection_in_send_page_and_cockpit(
    cases: LiveServer, phone_in, browser
):
    phone = phone_in()
    phone.goto(cases.url("F-DISPUTE"))
    expect(phone.locator("[data-cta=pay]")).to_be_visible()
    phone.locator("[data-cta=contact]").tap()
    phone.check("input[value=dispute]")
    phone.fill("#message", "Diesen Vertrag habe ich nie abgeschlossen.")
    phone.locator("[data-cta=contact-send]").tap()
    main = phone.locator("main")
    expect(main).to_contain_text("Wir prüfen Ihren Widerspruch")
    expect(main).to_contain_text("innerhalb von zwei Werktagen per E-Mail")
    expect(phone.locator("[data-cta=pay]")).to_have_count(0)
    expect(phone.locator("[data-cta=plan]")).to_have_count(0)
    expect(phone.locator(".notice")).to_have_count(0)
    fits(phone)
    phone.reload()  # still so on the next visit
    expect(phone.locator("[data-case=disputed]")).to_be_visible()
    assert send_reason(cases, "F-DISPUTE") == "dispute_open"

    desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    try:
        admin = desk.new_page()
        admin.goto(f"{cases.base_url}/admin/login")
        admin.fill("#email", "cases@example.org")
        admin.fill("#password", PASSWORD)
        admin.click("button[type=submit]")
        expect(admin.locator("h1")).to_have_text("Campaigns")
        admin.goto(f"{cases.base_url}/admin/campaigns/cases/debtors/F-DISPUTE")
        expect(admin.locator("#case-state")).to_contain_text("disputed")
        expect(admin.locator("#case-state")).to_contain_text("collection held: dispute open")
    finally:
        desk.close()


def test_an_agreed_plan_shows_the_plan_instead_of_the_full_amount(cases: LiveServer, phone_in):
    from kindly.payments import plans

    phone = phone_in()
    phone.goto(cases.url("F-PLAN"))
    phone.locator("[data-cta=plan]").tap()
    phone.select_option("#instalments", "3")
    phone.locator("[data-cta=plan-show]").tap()
    expect(phone.locator("[data-plan-rule]")).to_contain_text("zwei Raten hintereinander")
    phone.locator("[data-cta=plan-agree]").tap()
    expect(phone.locator("[data-method-saved]")).to_have_count(0)  # nothing saved yet
    phone.locator("[data-cta=instalment]").tap()
    phone.locator("[data-sandbox=succeed]").tap()
    expect(phone.locator(".status")).to_contain_text("eingegangen")
    expect(phone.locator(".notice")).to_have_count(1)  # one notice, not three
    plan = phone.locator("[data-case=plan_active]")
    expect(plan).to_contain_text("Nächste Rate")
    second = plans.split(23897, 3)[1]
    expect(plan).to_contain_text(f"{second // 100},{second % 100:02d}\xa0€")
    expect(plan).to_contain_text("Bisher bezahlt: 1 von 3 Raten.")
    expect(phone.locator("[data-cta=pay]")).to_have_count(0)  # no "pay it all now"
    expect(phone.locator("[data-cta=plan-move]")).to_be_visible()
    expect(phone.locator("[data-plan-rule]")).to_be_visible()
    fits(phone)
    phone.locator("[data-cta=plan-move]").tap()  # its own page now (issue 19: time)
    expect(phone.locator("form.move").first).to_be_visible()
    expect(phone.locator("[data-cta=plan-move-confirm]").first).to_be_visible()


def test_a_promise_holds_reminders_until_its_day_and_is_then_followed_up(
    cases: LiveServer, phone_in
):
    phone = phone_in()
    phone.goto(cases.url("F-PROMISE"))
    phone.locator("[data-cta=promise]").tap()
    when = dt.date.today() + dt.timedelta(days=10)
    phone.fill("#date", when.isoformat())
    phone.locator("[data-cta=promise-confirm]").tap()
    promised = phone.locator("[data-case=promised]")
    expect(promised).to_contain_text("Sie haben die Zahlung von 238,97\xa0€ zum")
    expect(phone.locator("[data-cta=pay]")).not_to_have_class("button primary")
    expect(phone.locator("[data-cta=promise]")).to_have_count(1)  # to move the date
    assert send_reason(cases, "F-PROMISE") == "promise_pending"
    from kindly.tracking.models import Event

    with database(cases) as session:
        who = debtor(session, "F-PROMISE")
        event = session.scalar(
            select(Event).where(Event.debtor_id == who.id, Event.type == "promise")
        )
        assert event.data["amount_minor"] == 23897
        # the day passes unpaid (for a twin whose page nobody has opened yet)
        twin = debtor(session, "F-BROKEN")
        session.add(Event(idempotency_key="f-broken-promise", campaign_id=twin.campaign_id,
                          debtor_id=twin.id, type="promise", channel="web",
                          occurred_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=9),
                          data={"date": str(dt.date.today() - dt.timedelta(days=1)),
                                "amount_minor": 23897}))  # fmt: skip
    phone.goto(cases.url("F-BROKEN"))
    expect(phone.locator("[data-case=promise_broken]")).to_contain_text(
        "bei uns ist noch keine Zahlung eingegangen"
    )
    expect(phone.locator("[data-cta=pay]")).to_have_class("button primary")
    assert send_reason(cases, "F-BROKEN") is None  # reminders resume
    fits(phone)


def test_a_schedule_looked_at_holds_nothing(cases: LiveServer, phone_in):
    phone = phone_in()
    phone.goto(cases.url("F-LOOK"))
    phone.locator("[data-cta=plan]").tap()
    phone.locator("[data-cta=plan-show]").tap()
    expect(phone.locator("[data-schedule]")).to_be_visible()
    phone.goto(cases.url("F-LOOK"))
    expect(phone.locator("[data-cta=pay]")).to_have_class("button primary")
    events = types_of(cases, "F-LOOK")
    assert "plan_viewed" in events and "plan_requested" not in events
    assert send_reason(cases, "F-LOOK") is None


def test_saved_preferences_show_as_saved_and_opting_back_in_works(cases: LiveServer, phone_in):
    phone = phone_in()
    phone.goto(cases.url("F-PREFS"))
    phone.locator("[data-cta=preferences]").tap()
    phone.check("input[value=sms]")
    phone.check("input[name=stop_email]")
    phone.locator("[data-cta=preferences-save]").tap()
    expect(phone.locator(".status")).to_contain_text("Ihre Auswahl ist gespeichert")
    phone.locator("[data-cta=preferences]").tap()
    expect(phone.locator("input[value=sms]")).to_be_checked()
    expect(phone.locator("input[name=stop_email]")).to_be_checked()
    expect(phone.locator("input[name=stop_sms]")).not_to_be_checked()
    expect(phone.locator("main")).to_contain_text("Sie erhalten zu dieser Forderung keine E-Mails.")
    fits(phone)
    phone.uncheck("input[name=stop_email]")
    phone.locator("[data-cta=preferences-save]").tap()
    phone.locator("[data-cta=preferences]").tap()
    expect(phone.locator("input[name=stop_email]")).not_to_be_checked()
    assert "opted_in" in types_of(cases, "F-PREFS")
    from kindly.messaging import optout

    with database(cases) as session:
        assert optout.blocked(session, "f-prefs@example.org", "email") is None


def test_a_paid_case_thanks_and_its_video_is_no_longer_offered(cases: LiveServer, phone_in):
    phone = phone_in()
    phone.goto(cases.url("F-VIDEO"))
    expect(phone.locator("video")).to_have_count(1)
    phone.locator("[data-cta=pay]").first.tap()
    phone.locator("[data-cta=checkout]").tap()
    phone.locator("[data-sandbox=succeed]").tap()
    expect(phone.locator(".status")).to_contain_text("eingegangen")
    expect(phone.locator("[data-case=paid]")).to_contain_text("Es ist nichts mehr offen")
    for cta in ("pay", "plan", "promise", "letter"):
        expect(phone.locator(f"[data-cta={cta}]")).to_have_count(0)
    expect(phone.locator("video")).to_have_count(0)
    expect(phone.locator("[data-cta=contact]")).to_be_visible()
    fits(phone)
    assert send_reason(cases, "F-VIDEO") == "paid"


def _set_up(session, state: str, reference: str) -> str:
    """Bring one debtor into `state` as the real actions would; the page path to photograph."""
    from kindly.cases import holds
    from kindly.messaging import optout
    from kindly.payments import plans
    from kindly.payments.models import Payment
    from kindly.tracking import events

    who = debtor(session, reference)
    today = dt.date.today()

    def pay(minor: int, ref: str, instalment=None) -> None:
        session.add(Payment(campaign_id=who.campaign_id, debtor_id=who.id, provider="sandbox",
                            provider_ref=ref, amount_minor=minor, currency=who.currency,
                            status="succeeded", instalment_id=instalment))  # fmt: skip

    if state == "dispute":
        events.record(session, who, "contact", channel="web", data={"topic": "dispute"})
        holds.place(session, who, "dispute", source="page", note="not mine")
    elif state in ("plan", "plan_broken"):
        proposal = plans.propose(plans.rules_for(who, who.amount_due_minor), who.amount_due_minor,
                                 today=today, count=3)  # fmt: skip
        plan = plans.agree(session, who, proposal, balance_minor=who.amount_due_minor)
        first = plan.instalments[0]
        first.status, plan.status, plan.method_ref = "paid", "active", "pm_sandbox"
        pay(first.amount_minor, f"{reference}-1", first.id)
        if state == "plan_broken":
            plan.status = "broken"
    elif state == "schedule":
        return "/plan?instalments=3"
    elif state == "promise":
        events.record(session, who, "promise", channel="web",
                      data={"date": str(today + dt.timedelta(days=6)),
                            "amount_minor": who.amount_due_minor})  # fmt: skip
    elif state == "promise_broken":
        events.record(session, who, "promise", channel="web",
                      data={"date": str(today - dt.timedelta(days=1)),
                            "amount_minor": who.amount_due_minor})  # fmt: skip
        session.flush()
        from kindly.tracking.models import Event

        made = session.scalar(
            select(Event).where(Event.debtor_id == who.id, Event.type == "promise")
        )
        made.occurred_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    elif state == "plan_requested":
        events.record(session, who, "plan_requested", channel="web", data={"instalments": "3"})
    elif state == "partly_paid":
        pay(5000, f"{reference}-part")
    elif state == "paid":
        pay(who.amount_due_minor, f"{reference}-all")
    elif state == "prefs":
        events.record(session, who, "preference", channel="web",
                      data={"preferred_channel": "sms"})  # fmt: skip
        optout.opt_out(session, who, "email", source="microsite")
        return "/preferences"
    return ""


def test_every_state_photographed_in_five_languages(cases: LiveServer, phone_in):
    paths = {}
    with database(cases) as session:
        for lang in LANGS:
            for state in STATES:
                paths[state, lang] = _set_up(session, state, f"{state}-{lang}")
    for lang, (locale, _) in LANGS.items():
        phone = phone_in(locale)
        for state in STATES:
            phone.goto(cases.url(f"{state}-{lang}", paths[state, lang]))
            assert phone.locator("html").get_attribute("lang") == lang
            fits(phone)
            shown = phone.locator("[data-case]")
            if state in ("dispute", "plan", "promise", "paid", "partly_paid"):
                expected = {"dispute": "disputed", "plan": "plan_active", "promise": "promised"}
                assert shown.first.get_attribute("data-case") == expected.get(state, state)
            if state in ("dispute", "plan", "paid", "plan_requested", "promise"):
                assert phone.locator("[data-cta=pay].primary").count() == 0, (state, lang)
            snap(phone, SHOTS / f"{state}-{lang}.png")
