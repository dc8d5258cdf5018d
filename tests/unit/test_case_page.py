"""The debtor's page obeys the case (issue 17): a dispute holds collection and says so, a plan
shows the plan, a promise holds until its day and is then followed up, a schedule looked at
asks for nothing, preferences show what was saved and can be undone, a paid case thanks."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.cases.read import case_of
from kindly.claims import balance as claims_balance
from kindly.messaging import delivery, optout
from kindly.messaging.models import OptOut
from kindly.payments import plans
from kindly.payments.models import Payment
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.tracking.models import Event
from tests.support.app import launched, load_campaign
from tests.unit.test_web import csrf_from, events_of, token_of
from workers.jobs import render_debtor


@pytest.fixture
def anna(client, ctx):
    """(client, token) of A-1 (1.234,56 €, German), its stored page rendered."""
    load_campaign(ctx)
    launched(ctx)  # only a live campaign's send plan asks each case
    token = token_of(ctx, "A-1")
    with ctx.db.session() as session:
        render_debtor(session.scalar(select(Debtor.id).where(Debtor.token == token)), ["site"])
    return client, token


def page(client, token: str, query: str = "") -> str:
    response = client.get(f"/s/{token}{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def debtor_of(session, token: str) -> Debtor:
    return session.scalar(select(Debtor).where(Debtor.token == token))


def send_reason(session, debtor: Debtor) -> str | None:
    """Why `kindly send`'s plan holds this debtor back (None: a message would go)."""
    campaign = session.get(Campaign, debtor.campaign_id)
    rules = save_rules(session, campaign, parse_rules({"defaults": {"channels": ["email"]}}))
    decide(session, campaign, rules, dt.date.today())
    at = dt.datetime.now(dt.UTC).replace(hour=10, minute=0)
    [planned] = [p for p in delivery.plan(session, campaign, at) if p.debtor_id == debtor.id]
    return planned.reason if planned.status == "held" else None


def test_a_dispute_raised_on_the_page_holds_collection_at_once(anna, ctx):
    client, token = anna
    assert 'data-cta="pay"' in page(client, token)
    form = page(client, token, "/contact?topic=dispute")
    sent = client.post(
        f"/s/{token}/contact",
        data={"csrf_token": csrf_from(form), "topic": "dispute", "message": "Not my meter."},
    )
    assert sent.status_code == 303
    html = page(client, token, sent.headers["Location"].split(token, 1)[1])
    assert "Wir prüfen Ihren Widerspruch" in html
    assert "innerhalb von zwei Werktagen per E-Mail" in html
    assert 'data-cta="pay"' not in html and 'data-cta="plan"' not in html
    assert 'data-cta="pay-anyway"' in html  # a quiet way, below the fold
    assert "Wir antworten bald" not in html  # no second notice saying less
    with ctx.db.session() as session:
        debtor = debtor_of(session, token)
        case = case_of(session, debtor)
        assert (case.state, case.hold) == ("disputed", "dispute_open")
        assert send_reason(session, debtor) == "dispute_open"
    # a second dispute adds no second hold
    client.post(
        f"/s/{token}/contact",
        data={"csrf_token": csrf_from(form), "topic": "dispute", "message": "Again."},
    )
    assert len(events_of(ctx, "hold")) == 1


def test_the_cockpit_case_page_shows_the_dispute(anna, ctx):
    from tests.unit.test_admin import make_user, sign_in

    client, token = anna
    form = page(client, token, "/contact")
    client.post(
        f"/s/{token}/contact",
        data={"csrf_token": csrf_from(form), "topic": "dispute", "message": "Wrong amount."},
    )
    make_user(ctx)
    assert sign_in(client).status_code == 303
    html = client.get("/admin/campaigns/winter/debtors/A-1").get_data(as_text=True)
    assert 'data-state="disputed"' in html and "collection held: <strong>dispute open" in html


def test_an_agreed_plan_shows_the_plan_not_the_full_amount(anna, ctx):
    client, token = anna
    with ctx.db.session() as session:
        debtor = debtor_of(session, token)
        rules = plans.rules_for(debtor, claims_balance.balance_minor(session, debtor))
        proposal = plans.propose(rules, 123456, today=dt.date.today(), count=3)
        plan = plans.agree(
            session, debtor, proposal, balance_minor=claims_balance.balance_minor(session, debtor)
        )
        first = plan.instalments[0]
        first.status = "paid"
        session.add(Payment(campaign_id=debtor.campaign_id, debtor_id=debtor.id,
                            provider="sandbox", provider_ref="p-plan-1",
                            amount_minor=first.amount_minor, currency="EUR",
                            status="succeeded", instalment_id=first.id))  # fmt: skip
        plan.status = "active"
        second = plan.instalments[1]
        when = second.due_date
    html = page(client, token)
    assert 'data-case="plan_active"' in html
    assert "Nächste Rate" in html and "411,52\xa0€" in html
    assert "Bisher bezahlt: 1 von 3 Raten." in html
    assert 'data-cta="pay"' not in html and "Jetzt 823,04" not in html
    assert 'data-cta="plan-move"' in html and "/plan/move" in html  # moved by the debtor
    assert "Können zwei Raten hintereinander nicht eingezogen werden" in html
    assert "Ihre Zahlungsart ist gespeichert" not in html  # no method saved yet
    assert html.count('class="notice') == 0  # the plan is the first screen, not a banner
    assert f"{when.day}." in html
    # once a method is saved the page says so
    with ctx.db.session() as session:
        debtor = debtor_of(session, token)
        plans.open_plan(session, debtor).method_ref = "pm_test_1"
    agreed = client.get(f"/s/{token}/plan/agreed").get_data(as_text=True)
    assert "data-method-saved" in agreed and "data-plan-rule" in agreed
    move = page(client, token, "/contact?topic=plan_date")
    assert 'value="plan_date" checked' in move


def test_the_plan_page_states_the_two_missed_instalments_rule_before_agreeing(anna, ctx):
    client, token = anna
    schedule = page(client, token, "/plan?instalments=3")
    rule = schedule.index("data-plan-rule")
    assert rule < schedule.index('data-cta="plan-agree"')
    assert "Können zwei Raten hintereinander nicht eingezogen werden" in schedule
    agreed = client.post(
        f"/s/{token}/plan",
        data={"csrf_token": csrf_from(schedule), "instalments": "3", "agree": "1"},
    )
    assert agreed.status_code == 303
    after = client.get(f"/s/{token}/plan/agreed").get_data(as_text=True)
    assert "data-method-saved" not in after  # nothing is saved before the first payment
    assert "data-method-later" in after


def test_a_schedule_looked_at_is_a_view_and_holds_nothing(anna, ctx):
    client, token = anna
    schedule = page(client, token, "/plan?instalments=3")
    assert 'data-cta="plan-agree"' in schedule
    assert events_of(ctx, "plan_requested") == []
    [viewed] = events_of(ctx, "plan_viewed")
    assert viewed.data["instalments"] == "3"
    with ctx.db.session() as session:
        debtor = debtor_of(session, token)
        assert case_of(session, debtor).state == "open"
        assert send_reason(session, debtor) is None
    assert 'data-cta="pay"' in page(client, token)
    # asking (a POST without "I agree") is a request, and the page says it was received
    asked = client.post(
        f"/s/{token}/plan", data={"csrf_token": csrf_from(schedule), "instalments": "3"}
    )
    assert len(events_of(ctx, "plan_requested")) == 1
    html = page(client, token, asked.headers["Location"].split(token, 1)[1])
    assert "Ihre Anfrage nach einer Ratenzahlung ist bei uns eingegangen" in html
    assert 'class="button primary" data-cta="pay"' not in html


def test_a_promise_holds_until_its_day_and_then_follows_up(anna, ctx):
    client, token = anna
    form = page(client, token, "/promise")
    when = dt.date.today() + dt.timedelta(days=7)
    done = client.post(
        f"/s/{token}/promise", data={"csrf_token": csrf_from(form), "date": when.isoformat()}
    )
    assert done.status_code == 303
    [promise] = events_of(ctx, "promise")
    assert promise.data["amount_minor"] == 123456  # a number, not text
    html = page(client, token)
    assert "Sie haben die Zahlung von 1.234,56\xa0€ zum" in html
    assert 'class="button primary" data-cta="pay"' not in html  # not pushed before the day
    assert 'data-cta="pay"' in html  # but there when they are ready
    assert 'data-cta="promise"' in html  # to move the date
    again = page(client, token, "/promise")  # to move it, the form says what stands
    assert "data-promise-current" in again and "Sie haben die Zahlung von 1.234,56" in again
    with ctx.db.session() as session:
        assert send_reason(session, debtor_of(session, token)) == "promise_pending"
    # the day passes unpaid: a gentle follow-up, and the page asks again
    with ctx.db.session() as session:
        event = session.scalar(select(Event).where(Event.type == "promise"))
        past = dt.date.today() - dt.timedelta(days=1)
        event.data = {**event.data, "date": past.isoformat()}
        event.occurred_at = event.occurred_at - dt.timedelta(days=8)
    with ctx.db.session() as session:
        assert case_of(session, debtor_of(session, token)).state == "promise_broken"
    client.application.extensions.pop("kindly_pages")  # as a new day does (it is in the stamp)
    html = page(client, token)
    assert "bei uns ist noch keine Zahlung eingegangen" in html
    assert 'class="button primary" data-cta="pay"' in html


def test_saved_preferences_show_as_saved_and_opting_back_in_works(anna, ctx):
    client, token = anna
    form = page(client, token, "/preferences")
    assert "Ihre aktuelle Wahl: E-Mail." in form
    client.post(
        f"/s/{token}/preferences",
        data={"csrf_token": csrf_from(form), "channel": "sms", "stop_email": "1"},
    )
    again = page(client, token, "/preferences")
    assert 'value="sms" checked' in again and 'value="email" checked' not in again
    assert 'name="stop_email" value="1" checked' in again
    assert 'name="stop_sms" value="1" checked' not in again
    assert "Sie erhalten zu dieser Forderung keine E-Mails." in again
    with ctx.db.session() as session:
        assert optout.blocked(session, "anna@example.org", "email") == "opted_out"
        assert case_of(session, debtor_of(session, token)).opted_out == {"email"}
        # a suppression on the phone, set by the operator, must survive any opt-in
        optout.add(session, "+4915112345678", "sms", "suppression")
    client.post(f"/s/{token}/preferences", data={"csrf_token": csrf_from(again), "channel": "sms"})
    [opted_in] = events_of(ctx, "opted_in")
    assert opted_in.data["channel"] == "email"
    with ctx.db.session() as session:
        assert optout.blocked(session, "anna@example.org", "email") is None
        assert optout.blocked(session, "+4915112345678", "sms") == "suppressed"
        assert case_of(session, debtor_of(session, token)).opted_out == frozenset()
    assert "keine E-Mails." not in page(client, token, "/preferences")


def test_opt_in_lifts_only_the_debtors_own_opt_out(ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        assert optout.opt_in(session, anna, "email") is False  # nothing to lift
        optout.opt_out(session, anna, "email", source="microsite")
        optout.add(session, "anna@example.org", "*", "bounced_hard")
        assert optout.own_opt_outs(session, anna) == {"email"}
        assert optout.opt_in(session, anna, "email") is True
        reasons = sorted(session.scalars(select(OptOut.reason)))
        assert reasons == ["bounced_hard"]  # the bounce stays: the address does not work
        assert optout.blocked(session, "anna@example.org", "email") == "bounced_hard"
        assert optout.own_opt_outs(session, anna) == frozenset()


def test_a_paid_case_thanks_and_stops_asking(anna, ctx):
    client, token = anna
    with ctx.db.session() as session:
        debtor = debtor_of(session, token)
        render_debtor(debtor.id, ["site"])
        session.add(Payment(campaign_id=debtor.campaign_id, debtor_id=debtor.id,
                            provider="sandbox", provider_ref="p-part", amount_minor=23456,
                            currency="EUR", status="succeeded"))  # fmt: skip
    partly = page(client, token)
    assert "Vielen Dank für Ihre Zahlung von 234,56\xa0€." in partly
    assert "Noch offen</p>" in partly and 'data-amount="100000"' in partly
    assert 'data-cta="pay"' in partly
    with ctx.db.session() as session:
        session.scalar(select(Payment)).amount_minor = 123456
    paid = page(client, token)
    assert "Es ist nichts mehr offen. Vielen Dank!" in paid
    assert "Sie haben insgesamt 1.234,56\xa0€ gezahlt." in paid
    for cta in ("pay", "plan", "promise", "letter", "preferences"):
        assert f'data-cta="{cta}"' not in paid
    assert 'data-cta="contact"' in paid
    assert "<video" not in paid
    with ctx.db.session() as session:
        assert send_reason(session, debtor_of(session, token)) == "paid"


def test_the_video_is_offered_only_while_the_case_asks_for_the_balance():
    from renderer.site import render_site
    from renderer.view import CaseView
    from tests.support.views import make_view

    view = make_view()
    ctas = [{"cta": "pay", "from": 7.4, "to": 15.0}]
    assert b"<video" in render_site(view, has_video=True, video_ctas=ctas)
    for state in ("paid", "disputed", "plan_active", "promised"):
        html = render_site(view, has_video=True, video_ctas=ctas, case=CaseView(state, False))
        assert b"<video" not in html, state


def test_one_notice_at_a_time(anna, ctx):
    client, token = anna
    with ctx.db.session() as session:
        debtor = debtor_of(session, token)
        session.add(Payment(campaign_id=debtor.campaign_id, debtor_id=debtor.id,
                            provider="sandbox", provider_ref="p-1", amount_minor=23456,
                            currency="EUR", status="succeeded"))  # fmt: skip
    html = page(client, token, "?payment=succeeded&done=contact&plan=requested")
    assert html.count('class="notice') == 1
    assert "Ihre Zahlung über 234,56\xa0€ ist eingegangen" in html


def test_the_stamp_follows_the_day_and_the_case(anna, ctx):
    from kindly.cases import holds
    from kindly.site import microsite

    _, token = anna
    today = dt.date.today()
    with ctx.db.engine.connect() as connection:
        before = microsite.live_state(connection, token, today)
        tomorrow = microsite.live_state(connection, token, today + dt.timedelta(days=1))
    assert before.stamp != tomorrow.stamp  # a promise's day or a hold's end passes
    with ctx.db.session() as session:
        holds.place(session, debtor_of(session, token), "manual", source="cockpit")
    with ctx.db.engine.connect() as connection:
        assert microsite.live_state(connection, token, today).stamp != before.stamp
