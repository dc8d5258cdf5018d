"""A mistyped link is no dead end (issue 17): reference + postcode sends the debtor their own
link, and the answer never tells whether a case exists."""

from __future__ import annotations

import email
from pathlib import Path

from tests.support.app import load_campaign
from tests.unit.test_web import csrf_from, events_of, token_of

# in the sample portfolio: A-1 Anna Müller, 10115 Berlin, anna@example.org, German
HIT = {"reference": "A-1", "postal_code": "10115"}
WRONG_POSTCODE = {"reference": "A-1", "postal_code": "10117"}
NO_SUCH_CASE = {"reference": "A-999", "postal_code": "10115"}


def _outbox(ctx) -> list[Path]:
    folder = Path(ctx.settings.data_dir) / "outbox"
    return sorted(folder.glob("*")) if folder.is_dir() else []


def _post(client, data: dict, address: str = "203.0.113.7"):
    csrf = csrf_from(client.get("/find").get_data(as_text=True))
    response = client.post("/find", data={"csrf_token": csrf, **data},
                           environ_base={"REMOTE_ADDR": address})  # fmt: skip
    body = response.get_data(as_text=True)
    response.close()  # what the server does once the answer is out
    return response, body


def test_a_mistyped_link_offers_the_way_back_in_the_visitors_language(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    typo = token[:-1] + ("A" if token[-1] != "A" else "B")
    for path in (f"/s/{typo}", f"/c/{typo}", "/s/short"):
        response = client.get(path, headers={"Accept-Language": "de-DE,de;q=0.9"})
        page = response.get_data(as_text=True)
        assert response.status_code == 404
        assert "Diesen Link finden wir nicht" in page
        assert 'action="/find"' in page and 'name="csrf_token"' in page
        assert "Wenden Sie sich bitte an den Gläubiger" in page  # the contact channel
        assert token not in page
    # other missing pages keep the plain not-found page
    assert "/find" not in client.get(f"/s/{token}/nothing/here").get_data(as_text=True)


def test_hit_and_miss_get_the_same_answer_and_only_a_hit_sends_the_link(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    answers = []
    for data in (NO_SUCH_CASE, WRONG_POSTCODE, HIT):
        response, body = _post(client, data, address=f"198.51.100.{len(answers)}")
        answers.append((response.status_code, response.headers.get("Content-Type"), body))
    assert answers[0] == answers[1] == answers[2]
    status, _, body = answers[2]
    assert status == 200 and "we have sent your personal link" in body
    for secret in (token, "Anna", "Müller", "anna@example.org", "A-1"):
        assert secret not in body
    sent = _outbox(ctx)
    assert len(sent) == 1  # the hit only
    message = email.message_from_bytes(sent[0].read_bytes(), policy=email.policy.default)
    assert message["To"].addresses[0].addr_spec == "anna@example.org"  # the address on file
    text = message.get_content()
    assert f"/s/{token}" in text and "Sehr geehrte Frau Müller," in text
    (event,) = events_of(ctx, "contact")
    assert event.data == {"topic": "new_link", "via": "find", "sent": "email"}


def test_postcode_spelling_does_not_matter_but_the_postcode_does(client, ctx):
    load_campaign(ctx)
    _post(client, {"reference": " a-1 ", "postal_code": "10 115"})
    assert len(_outbox(ctx)) == 1
    _post(client, {"reference": "A-1", "postal_code": ""}, address="192.0.2.9")
    _post(client, {"reference": "A-1", "postal_code": "1011"}, address="192.0.2.8")
    assert len(_outbox(ctx)) == 1


def _reset_limits(ctx) -> None:
    from sqlalchemy import delete

    from kindly.site.models import RateCount

    with ctx.db.session() as session:
        session.execute(delete(RateCount))


def test_the_form_is_rate_limited_per_address_and_per_reference(client, ctx):
    load_campaign(ctx)
    for _ in range(5):
        response, _ = _post(client, NO_SUCH_CASE)
        assert response.status_code == 200
    response, body = _post(client, NO_SUCH_CASE)
    assert response.status_code == 429 and response.headers["Retry-After"]
    assert "Please wait a moment" in body
    _reset_limits(ctx)
    for n in range(5):  # one reference guessed from many addresses
        assert _post(client, WRONG_POSTCODE, address=f"192.0.2.{n}")[0].status_code == 200
    response, _ = _post(client, HIT, address="192.0.2.99")
    assert response.status_code == 429
    assert _outbox(ctx) == []  # past the limit, even the right postcode sends nothing


def test_the_form_needs_its_csrf_token(client, ctx):
    load_campaign(ctx)
    client.get("/find")
    response = client.post("/find", data=HIT)
    assert response.status_code == 400
    response.close()
    assert _outbox(ctx) == []
    assert _post(client, HIT)[0].status_code == 200  # the same request with its token
    assert len(_outbox(ctx)) == 1


def test_without_an_email_address_the_link_goes_by_text_message(client, ctx):
    load_campaign(ctx)
    from sqlalchemy import select

    from kindly.campaigns.models import Debtor

    with ctx.db.session() as session:
        session.scalar(select(Debtor).where(Debtor.reference == "A-1")).email = None
    _post(client, HIT)
    (sms,) = _outbox(ctx)
    assert sms.name.endswith(".sms.json")
    text = sms.read_text(encoding="utf-8")
    assert "+4915112345678" in text and f"/s/{token_of(ctx, 'A-1')}" in text


def test_a_mistyped_link_with_a_body_too_large_still_gets_its_404(client, ctx):
    # the lost-link page read the form for its language: a body over the limit raised 413
    # inside the 404 handler, and the visitor got a 500 (found by the bad-requests drill)
    for method in ("HEAD", "GET"):
        answer = client.open("/s/QZmnJggKmqejXMP_SXiB59SINQanQNjA", method=method,
                             data=b"x" * (2 * 1024 * 1024))  # fmt: skip
        assert answer.status_code == 404, method
