"""Bad input on every public route: random tokens, paths, headers, bodies and sizes against the
debtor pages, tracking, forms, webhooks and the sandbox. Never a 500, never a traceback in the
body, and a refused request (4xx) writes nothing to the database."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from kindly.campaigns.models import Debtor
from kindly.infra.db import Base
from kindly.payments import provider_events
from kindly.payments.models import Payment
from tests.support.app import front_client, installed, load_campaign, make_settings

WEBHOOK_SECRET = "whsec_fuzz_0123456789"
WEBHOOK_TOKEN = "gateway-token-0123456789"
ROUTES = [
    "/s/{t}", "/s/{t}/pay", "/s/{t}/plan", "/s/{t}/plan/agreed", "/s/{t}/plan/confirmation.pdf",
    "/s/{t}/check", "/s/{t}/e", "/s/{t}/promise", "/s/{t}/contact", "/s/{t}/preferences",
    "/s/{t}/faq", "/s/{t}/renew", "/s/{t}/letter.pdf", "/s/{t}/video.mp4", "/s/{t}/poster.jpg",
    "/s/{t}/captions.vtt", "/s/{t}/{x}", "/o/{t}.gif", "/c/{t}", "/u/{t}", "/webhooks/stripe",
    "/webhooks/bounces", "/webhooks/sms", "/sandbox/checkout/{x}", "/sandbox/checkout/sbx_{x}",
    "/{x}", "/s/", "/o/.gif",
]  # fmt: skip


@pytest.fixture
def front(tmp_path):
    """The app with every route switched on: sandbox payments, a Stripe webhook secret and
    a gateway token; a campaign with a pending payment so real references exist too."""
    settings = make_settings(
        tmp_path / "var",
        KINDLY_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        KINDLY_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
    )
    with installed(settings) as context:
        load_campaign(context)
        client = front_client(context, user_agent="Mozilla/5.0 (Android 14) Mobile Safari")
        with context.db.session() as session:
            tokens = list(session.scalars(select(Debtor.token)))
        yield context, client, tokens


def row_counts(context) -> dict[str, int]:
    """Rows per table: what a request may have written."""
    with context.db.session() as session:
        return {
            name: session.scalar(select(func.count()).select_from(table))
            for name, table in Base.metadata.tables.items()
        }


texts = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40
) | st.sampled_from(["", "..", "%00", "%2F..%2F", "a" * 5000, "' OR 1=1 --", "<svg onload=1>"])


@st.composite
def requests(draw, tokens: list[str]):
    """One request: a route with a token real, damaged or invented, and anything as body."""
    token = draw(
        st.sampled_from(tokens)
        | st.sampled_from(tokens).map(lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"))
        | st.sampled_from(tokens).map(lambda t: t.upper())
        | texts.filter(lambda t: "/" not in t and "?" not in t and "#" not in t)
    )
    extra = draw(texts.filter(lambda t: "?" not in t and "#" not in t))
    path = draw(st.sampled_from(ROUTES)).replace("{t}", token).replace("{x}", extra)
    if draw(st.booleans()):
        path += "?" + draw(
            st.sampled_from(["payment=succeeded", "u=javascript:alert(1)", "to=http://evil",
                             "step=-1", "a=%ff%fe", "u=" + "x" * 3000])
        )  # fmt: skip
    method = draw(st.sampled_from(["GET", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"]))
    headers = {}
    if draw(st.booleans()):
        headers["Content-Type"] = draw(
            st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                             "multipart/form-data", "multipart/form-data; boundary=x",
                             "text/plain; charset=utf-16", "application/json; charset=latin-1",
                             "message/delivery-status", "\x7f"])
        )  # fmt: skip
    for name in draw(
        st.lists(
            st.sampled_from(["Authorization", "Stripe-Signature", "Sec-Purpose", "Purpose",
                             "Sec-Fetch-User", "Sec-Fetch-Site", "Accept-Language", "Range",
                             "If-None-Match", "Cookie", "User-Agent", "X-Forwarded-For",
                             "Referer", "Content-Encoding"]),
            max_size=4,
        )
    ):  # fmt: skip
        headers[name] = draw(
            texts.filter(lambda t: "\n" not in t and "\r" not in t)
            | st.sampled_from([f"Bearer {WEBHOOK_TOKEN}", "bytes=5-1", "bytes=0-", "gzip",
                               "t=1,v1=00", "prefetch", "?1", "same-origin", "de;q=x",
                               "kindly_session=garbage"])
        )  # fmt: skip
    body_kind = draw(st.sampled_from(["none", "bytes", "form", "json", "signed", "big"]))
    data = None
    if body_kind == "bytes":
        data = draw(st.binary(max_size=300))
    elif body_kind == "form":
        data = draw(
            st.dictionaries(
                st.sampled_from(["csrf_token", "outcome", "date", "amount", "message", "answer",
                                 "birth_date", "postal_code", "instalments", "channel", "email",
                                 "type", "name", "value", "first"]),
                texts,
                max_size=5,
            )
        )  # fmt: skip
    elif body_kind in ("json", "signed"):
        event = draw(
            st.recursive(
                st.none() | st.booleans() | st.integers() | texts,
                lambda inner: st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["id", "type", "data", "object", "metadata", "amount_total",
                                     "currency", "payment_status", "kindly_payment", "reference",
                                     "status", "payment_intent", "amount", "charge"]),
                    inner,
                    max_size=5,
                ),
                max_leaves=12,
            )
        )  # fmt: skip
        data = json.dumps(event).encode()
        headers["Content-Type"] = "application/json"
        if body_kind == "signed":  # passes the signature check: the content must be checked
            headers["Stripe-Signature"] = provider_events.sign(data, WEBHOOK_SECRET)
    elif body_kind == "big":
        data = b"x" * draw(st.sampled_from([1024 * 1024 + 1, 3 * 1024 * 1024]))
    return method, path, headers, data


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_request_gets_a_500_or_a_traceback_and_refused_ones_write_nothing(front, data):
    context, client, tokens = front
    method, path, headers, body = data.draw(requests(tokens))
    before = row_counts(context)
    response = client.open(path, method=method, headers=headers, data=body)
    text = response.get_data(as_text=False)
    event(f"{response.status_code // 100}xx")  # --hypothesis-show-statistics shows the spread
    assert response.status_code < 500, (response.status_code, method, path)
    assert b"Traceback" not in text and b'File "' not in text
    if response.status_code >= 400:
        assert row_counts(context) == before, (response.status_code, method, path)


def test_a_signed_event_for_a_payment_that_does_not_exist_changes_no_payment(front):
    context, client, _ = front
    payload = json.dumps({
        "id": "evt_fuzz", "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_nope", "metadata": {"kindly_payment": "999999"},
                            "amount_total": 100, "currency": "eur", "payment_status": "paid"}},
    }).encode()  # fmt: skip
    response = client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": provider_events.sign(payload, WEBHOOK_SECRET)},
    )
    assert response.status_code < 500
    with context.db.session() as session:
        assert session.scalar(select(func.count(Payment.id))) == 0
