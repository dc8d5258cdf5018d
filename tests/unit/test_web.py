"""The debtor's path through the front on the embedded defaults: view, pay, count."""

from __future__ import annotations

import re

from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.payments.models import Payment
from kindly.reporting.metrics import campaign_stats
from kindly.tracking.models import Event
from tests.support.app import load_campaign
from workers.jobs import render_debtor


def token_of(ctx, reference: str) -> str:
    with ctx.db.session() as session:
        return session.scalar(select(Debtor.token).where(Debtor.reference == reference))


def events_of(ctx, type_: str) -> list[Event]:
    with ctx.db.session() as session:
        return list(session.scalars(select(Event).where(Event.type == type_)))


def stats(ctx) -> dict:
    with ctx.db.session() as session:
        return campaign_stats(session, session.scalar(select(Campaign)))


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_unknown_and_malformed_tokens_answer_the_same_404(client, ctx):
    load_campaign(ctx)
    unknown = client.get("/s/" + "A" * 32)
    malformed = client.get("/s/short")
    assert unknown.status_code == malformed.status_code == 404
    assert unknown.data == malformed.data
    assert b"Traceback" not in unknown.data
    assert events_of(ctx, "viewed") == []


def test_microsite_is_served_and_the_view_counted(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    with ctx.db.session() as session:
        render_debtor(session.scalar(select(Debtor.id).where(Debtor.token == token)), ["site"])
    page = client.get(f"/s/{token}?c=sms")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Sehr geehrte Frau Müller," in html
    assert "1.234,56\xa0€" in html
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    # a GET alone proves nothing: a scanner with a browser's user agent looks the same
    [viewed] = events_of(ctx, "viewed")
    assert (viewed.channel, viewed.agent) == ("sms", "unverified")
    assert stats(ctx)["funnel"]["viewed"] == 0
    # the page's script reports the view: now a person is counted, once per page load
    for _ in range(2):
        beacon = client.post(
            f"/s/{token}/e", data='{"type": "view", "id": "page-0001"}', content_type="text/plain"
        )
        assert beacon.status_code == 204
    assert stats(ctx)["funnel"]["viewed"] == 1
    assert stats(ctx)["funnel_raw"]["viewed"] == 1


def test_a_link_scanner_is_counted_apart_from_people(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-2")
    client.get(f"/s/{token}", headers={"User-Agent": "Mozilla/5.0 (compatible; SafeLinks scanner)"})
    client.get(
        f"/o/{token}.gif", headers={"User-Agent": "Mozilla/5.0 via ggpht.com GoogleImageProxy"}
    )
    numbers = stats(ctx)
    assert numbers["funnel"]["viewed"] == 0 and numbers["funnel_raw"]["viewed"] == 1
    assert numbers["funnel"]["opened"] == 0 and numbers["funnel_raw"]["opened"] == 1


def test_open_pixel_and_click_redirect_are_counted(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    pixel = client.get(f"/o/{token}.gif")
    assert pixel.status_code == 200 and pixel.mimetype == "image/gif"
    click = client.get(f"/c/{token}?to=pay&c=email")
    assert click.status_code == 302
    assert click.headers["Location"] == f"/s/{token}/pay?c=email"
    assert client.get(f"/c/{token}?to=https://evil.example").status_code == 404
    numbers = stats(ctx)["funnel"]
    assert (numbers["opened"], numbers["clicked"]) == (1, 1)


def pay_in_sandbox(client, token: str, outcome: str):
    form = client.get(f"/s/{token}/pay")
    assert form.status_code == 200
    to_checkout = client.post(
        f"/s/{token}/pay", data={"csrf_token": csrf_from(form.get_data(as_text=True))}
    )
    assert to_checkout.status_code == 303
    checkout_path = to_checkout.headers["Location"].split("127.0.0.1:5000", 1)[-1]
    checkout = client.get(checkout_path)
    html = checkout.get_data(as_text=True)
    assert "TEST CHECKOUT" in html
    for button in ("succeed", "fail", "cancel"):
        assert f'data-sandbox="{button}"' in html
    done = client.post(checkout_path, data={"csrf_token": csrf_from(html), "outcome": outcome})
    assert done.status_code == 303
    return checkout_path, csrf_from(html), done.headers["Location"]


def test_sandbox_payment_succeeds_and_is_counted_once(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    checkout_path, csrf, back = pay_in_sandbox(client, token, "succeeded")
    assert back == f"/s/{token}?payment=succeeded"
    # pressing the button again (a double submit) changes nothing
    client.post(checkout_path, data={"csrf_token": csrf, "outcome": "succeeded"})
    client.post(checkout_path, data={"csrf_token": csrf, "outcome": "failed"})
    page = client.get(back).get_data(as_text=True)
    assert "Ihre Zahlung über 1.234,56\xa0€ ist eingegangen" in page
    # a settled claim offers no payment any more, and says so instead of showing 0,00 €
    assert 'data-cta="pay"' not in page and 'data-cta="plan"' not in page
    assert "Es ist nichts mehr offen. Vielen Dank!" in page
    assert "Jetzt 0,00" not in page
    numbers = stats(ctx)
    assert numbers["funnel"]["paid"] == 1
    assert numbers["collected"] == {"EUR": "1234.56"}
    assert len(events_of(ctx, "paid")) == 1
    assert len(events_of(ctx, "payment_failed")) == 0
    # nothing left to pay: the pay page says so instead of offering a checkout
    assert "Es ist nichts mehr offen" in client.get(f"/s/{token}/pay").get_data(as_text=True)


def test_failed_and_cancelled_payments_collect_nothing(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-2")
    _, _, back = pay_in_sandbox(client, token, "failed")
    assert "did not go through" in client.get(back).get_data(as_text=True)
    _, _, back = pay_in_sandbox(client, token, "canceled")
    assert "was cancelled" in client.get(back).get_data(as_text=True)
    with ctx.db.session() as session:
        statuses = sorted(session.scalars(select(Payment.status)))
    assert statuses == ["canceled", "failed"]
    numbers = stats(ctx)["funnel"]
    assert (numbers["payment_started"], numbers["paid"], numbers["collected"]) == (1, 0, {})


def test_forms_without_the_csrf_token_are_refused_and_change_nothing(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    response = client.post(f"/s/{token}/pay", data={})
    assert response.status_code == 400
    assert b"Traceback" not in response.data
    assert csrf_from(client.get(f"/s/{token}/plan").get_data(as_text=True))  # one to compare
    for odd in ("\x80", "é" * 43, "\u20ac"):  # non-ASCII once broke the comparison (a 500)
        response = client.post(f"/s/{token}/pay", data={"csrf_token": odd})
        assert response.status_code == 400, odd
    with ctx.db.session() as session:
        assert session.scalars(select(Payment)).all() == []


def test_plan_request_is_recorded_and_confirmed_on_the_page(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-3")
    form = client.get(f"/s/{token}/plan").get_data(as_text=True)
    assert "Numero di rate mensili" in form
    assert "3 × 14,00\xa0€" in form
    back = client.post(f"/s/{token}/plan", data={"csrf_token": csrf_from(form), "instalments": "3"})
    assert back.status_code == 303
    assert "la sua richiesta di un piano di rate" in client.get(back.headers["Location"]).get_data(
        as_text=True
    )
    [requested] = events_of(ctx, "plan_requested")
    assert requested.data["instalments"] == "3"
    bad = client.post(f"/s/{token}/plan", data={"csrf_token": csrf_from(form), "instalments": "99"})
    assert bad.status_code == 400
    assert len(events_of(ctx, "plan_requested")) == 1


def test_partial_balance_rerenders_the_page_with_what_is_left(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.token == token))
        render_debtor(debtor.id, ["site"])
        session.add(Payment(campaign_id=debtor.campaign_id, debtor_id=debtor.id, provider="sandbox",
                            provider_ref="sbx_manual_test_0001", amount_minor=23456, currency="EUR",
                            status="succeeded"))  # fmt: skip
    html = client.get(f"/s/{token}").get_data(as_text=True)
    assert 'class="amount" data-amount="100000"' in html
    assert "Vielen Dank für Ihre Zahlung von 234,56\xa0€." in html and "Noch offen</p>" in html
    assert "Bereits gezahlt</th><td>− 234,56\xa0€" in html
    assert "Jetzt 1.000,00\xa0€ zahlen" in html


def test_the_page_offers_the_video_and_letter_only_once_they_exist(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-2")
    with ctx.db.session() as session:
        debtor_id = session.scalar(select(Debtor.id).where(Debtor.token == token))
    render_debtor(debtor_id, ["site"])
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "<video" not in page and "letter.pdf" not in page
    render_debtor(debtor_id, ["letter"])  # a later job: the stored page follows
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "<video" not in page and 'data-cta="letter"' in page
