"""What a debtor can do on the microsite, and what it tells the campaign manager."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.claims import balance as claims_balance
from kindly.site.models import IdentityCheck
from kindly.tracking.models import Event
from tests.support.app import load_campaign
from tests.unit.test_web import csrf_from, events_of, stats, token_of

PORTFOLIO_WITH_BIRTH = """reference,first_name,last_name,currency,amount_due,due_date,creditor,postal_code,birth_date,locale
G-1,Anna,Müller,EUR,100.00,2026-12-15,Stadtwerke GmbH,10115,1980-04-02,de-DE
"""


def set_campaign(ctx, **settings) -> None:
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        campaign.settings = {**(campaign.settings or {}), **settings}


def test_identity_gate_hides_everything_personal_until_passed(client, ctx):
    load_campaign(ctx, text=PORTFOLIO_WITH_BIRTH)
    set_campaign(ctx, identity_check="birth_date")
    token = token_of(ctx, "G-1")
    gate = client.get(f"/s/{token}").get_data(as_text=True)
    for secret in ("Müller", "Anna", "100,00", "Stadtwerke", "G-1"):
        assert secret not in gate
    assert "Bitte bestätigen Sie, dass Sie es sind" in gate
    # every sub-page and file sends a stranger back to the check
    for path in ("pay", "plan", "promise", "contact", "letter.pdf"):
        response = client.get(f"/s/{token}/{path}")
        assert response.status_code == 303 and response.headers["Location"] == f"/s/{token}"
    wrong = client.post(
        f"/s/{token}/check", data={"csrf_token": csrf_from(gate), "answer": "1980-04-03"}
    )
    assert wrong.status_code == 400
    assert "noch 4 Versuche" in wrong.get_data(as_text=True)
    right = client.post(
        f"/s/{token}/check", data={"csrf_token": csrf_from(gate), "answer": "1980-04-02"}
    )
    assert right.status_code == 303
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "Guten Tag Anna Müller," in page and "100,00\xa0€" in page
    assert len(events_of(ctx, "verified")) == 1


def test_five_wrong_answers_lock_the_link_for_fifteen_minutes(client, ctx, app):
    load_campaign(ctx, text=PORTFOLIO_WITH_BIRTH)
    set_campaign(ctx, identity_check="postal_code")
    token = token_of(ctx, "G-1")
    csrf = csrf_from(client.get(f"/s/{token}").get_data(as_text=True))
    for _ in range(5):
        client.post(f"/s/{token}/check", data={"csrf_token": csrf, "answer": "99999"})
    # now even the right answer is refused, and the page says why
    locked = client.post(f"/s/{token}/check", data={"csrf_token": csrf, "answer": "10115"})
    assert locked.status_code == 429
    assert "für 15 Minuten gesperrt" in locked.get_data(as_text=True)
    assert "Müller" not in client.get(f"/s/{token}").get_data(as_text=True)
    with ctx.db.session() as session:
        state = session.scalar(select(IdentityCheck))
        assert (state.locks, state.total_failures) == (1, 5)
        # the manager sees the lock; a quarter of an hour later it is gone
        state.locked_until = state.locked_until - dt.timedelta(minutes=16)
    passed = client.post(f"/s/{token}/check", data={"csrf_token": csrf, "answer": "10 115"})
    assert passed.status_code == 303


def test_an_expired_link_says_so_politely_and_offers_a_new_one(client, ctx):
    load_campaign(ctx)
    set_campaign(ctx, link_days=30)
    token = token_of(ctx, "A-1")
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.token == token))
        debtor.created_at = debtor.created_at - dt.timedelta(days=31)
    page = client.get(f"/s/{token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 410
    assert "Dieser Link ist abgelaufen" in html
    for secret in ("Müller", "1.234,56", "Stadtwerke", "A-1"):
        assert secret not in html
    renewed = client.post(f"/s/{token}/renew", data={"csrf_token": csrf_from(html)})
    assert "Wir senden Ihnen in Kürze einen neuen Link" in renewed.get_data(as_text=True)
    [asked] = events_of(ctx, "contact")
    assert asked.data == {"topic": "new_link"}


def test_promise_within_the_limit_is_recorded_and_shown(client, ctx):
    load_campaign(ctx)
    set_campaign(ctx, promise_max_days=14)
    token = token_of(ctx, "A-1")
    form = client.get(f"/s/{token}/promise").get_data(as_text=True)
    limit = (dt.date.today() + dt.timedelta(days=14)).isoformat()
    assert f'max="{limit}"' in form
    too_late = (dt.date.today() + dt.timedelta(days=15)).isoformat()
    refused = client.post(
        f"/s/{token}/promise", data={"csrf_token": csrf_from(form), "date": too_late}
    )
    assert refused.status_code == 400 and "Bitte wählen Sie ein Datum" in refused.get_data(
        as_text=True
    )
    assert events_of(ctx, "promise") == []
    when = dt.date.today() + dt.timedelta(days=7)
    done = client.post(
        f"/s/{token}/promise", data={"csrf_token": csrf_from(form), "date": when.isoformat()}
    )
    assert done.status_code == 303
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "Sie haben die Zahlung von 1.234,56\xa0€ zum" in page
    [promised] = events_of(ctx, "promise")
    assert (promised.data["date"], promised.agent) == (when.isoformat(), "human")
    # a form sent by a person also counts as a human view
    assert stats(ctx)["funnel"]["viewed"] == 1


def test_dispute_and_callback_reach_the_manager(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-2")
    form = client.get(f"/s/{token}/contact").get_data(as_text=True)
    assert "I dispute this claim" in form
    empty = client.post(
        f"/s/{token}/contact",
        data={"csrf_token": csrf_from(form), "topic": "dispute", "message": ""},
    )
    assert empty.status_code == 400
    sent = client.post(f"/s/{token}/contact", data={
        "csrf_token": csrf_from(form), "topic": "dispute",
        "message": "I never had a contract with <b>you</b>.", "phone": "",
    })  # fmt: skip
    assert sent.status_code == 303
    assert "We are looking into your objection" in client.get(sent.headers["Location"]).get_data(
        as_text=True
    )
    [contact] = events_of(ctx, "contact")
    assert contact.data["topic"] == "dispute"
    assert contact.data["message"] == "I never had a contract with <b>you</b>."


def test_opting_out_and_choosing_a_channel_are_recorded(client, ctx):
    from kindly.messaging import optout

    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    form = client.get(f"/s/{token}/preferences").get_data(as_text=True)
    assert "Keine E-Mails mehr zu dieser Forderung" in form
    client.post(
        f"/s/{token}/preferences",
        data={"csrf_token": csrf_from(form), "channel": "letter", "opt_out": "1"},
    )
    [pref] = events_of(ctx, "preference")
    assert pref.data == {"preferred_channel": "letter"}
    assert sorted(e.channel for e in events_of(ctx, "opted_out")) == ["email", "sms"]
    # `kindly send` consults the same suppression list
    with ctx.db.session() as session:
        assert optout.blocked(session, "anna@example.org", "email")
        assert optout.blocked(session, "+4915112345678", "sms")


def test_faq_names_the_creditor_and_reference(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-2")
    page = client.get(f"/s/{token}/faq").get_data(as_text=True)
    assert "it comes from Northern Water Ltd, and the reference A-2" in page


def test_apple_privacy_proxy_and_scanners_are_stored_but_not_counted_as_people(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    client.get(f"/o/{token}.gif", headers={"User-Agent": "Mozilla/5.0"})
    client.get(
        f"/c/{token}?to=site&c=email",
        headers={"User-Agent": "Mozilla/5.0 (compatible; Barracuda Sentinel)"},
    )
    client.head(f"/s/{token}")
    with ctx.db.session() as session:
        agents = sorted(session.scalars(select(Event.agent)))
    assert agents == ["automated", "prefetch"]  # HEAD answered, never counted
    numbers = stats(ctx)
    assert (numbers["funnel"]["opened"], numbers["funnel_raw"]["opened"]) == (0, 1)
    assert (numbers["funnel"]["clicked"], numbers["funnel_raw"]["clicked"]) == (0, 1)


def test_clicks_right_after_the_send_or_on_every_link_at_once_are_automated(client, ctx, app):
    from kindly.tracking import events

    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.token == token))
        events.record(session, debtor, "sent", channel="email")
    client.get(f"/c/{token}?to=site&c=email")  # two seconds after the send: a scanner
    with ctx.db.session() as session:  # an hour passes ...
        for event in session.scalars(select(Event)):
            event.occurred_at = event.occurred_at - dt.timedelta(hours=1)
    app.extensions.pop("kindly_tokens")  # ... and with it the 30-second token cache
    for target in ("pay", "plan", "letter"):  # every link within a second: a scanner
        client.get(f"/c/{token}?to={target}&c=email")
    with ctx.db.session() as session:
        agents = list(
            session.scalars(select(Event.agent).where(Event.type == "clicked").order_by(Event.id))
        )
    assert agents == ["automated", "human", "human", "automated"]


def test_video_progress_beacons_are_counted_once_per_mark(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    for body in (
        '{"type":"video_play","id":"page-0002"}',
        '{"type":"video_progress","pct":25,"id":"page-0002"}',
        '{"type":"video_progress","pct":25,"id":"page-0002"}',
        '{"type":"video_complete","id":"page-0002"}',
    ):
        assert client.post(f"/s/{token}/e", data=body, content_type="text/plain").status_code == 204
    for bad in (
        '{"type":"paid","id":"page-0002"}',
        '{"type":"video_progress","pct":30,"id":"page-0002"}',
        "not json",
        '{"type":"view","id":"<script>"}',
    ):
        assert client.post(f"/s/{token}/e", data=bad, content_type="text/plain").status_code == 400
    assert [len(events_of(ctx, t)) for t in ("video_play", "video_progress", "video_complete")] == [
        1,
        1,
        1,
    ]
    assert events_of(ctx, "paid") == []


def test_pages_carry_strict_security_headers(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    response = client.get(f"/s/{token}")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in response.headers["X-Robots-Tag"]
    form = client.get(f"/s/{token}/contact")
    cookie = form.headers["Set-Cookie"]
    assert "kindly_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_tap_on_our_own_page_is_a_person_a_crawler_following_links_is_not(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    client.get(f"/s/{token}/faq")  # a crawler: no user activation
    tap = {"Sec-Fetch-User": "?1", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}
    client.get(f"/s/{token}/promise", headers=tap)
    with ctx.db.session() as session:
        ctas = dict(
            session.execute(
                select(Event.data["cta"].as_string(), Event.agent).where(Event.type == "cta")
            ).all()
        )
    assert ctas == {"faq": "unverified", "promise": "human"}
    assert (stats(ctx)["funnel"]["cta"], stats(ctx)["funnel"]["viewed"]) == (1, 1)


def test_an_agreed_plan_shows_its_next_instalment_on_the_page(client, ctx):
    from kindly.payments import plans

    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.token == token))
        proposal = plans.propose(
            plans.rules_for(debtor, claims_balance.balance_minor(session, debtor)),
            123456,
            today=dt.date.today(),
            count=3,
        )
        plan = plans.agree(
            session, debtor, proposal, balance_minor=claims_balance.balance_minor(session, debtor)
        )
        first = plan.instalments[0]
    # 1.234,56 € in three: 411,52 € now, the last one absorbs the rounding
    assert first.amount_minor == 41152
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "Nächste Rate" in page and "411,52\xa0€" in page and "0 von 3 Raten" in page


def test_back_from_checkout_before_the_webhook_says_it_is_being_confirmed(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    page = client.get(f"/s/{token}?payment=succeeded").get_data(as_text=True)
    assert "Ihre Zahlung wird gerade bestätigt" in page
    assert "ist eingegangen" not in page
