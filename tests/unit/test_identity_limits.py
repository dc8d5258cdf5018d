"""The identity check's escalating locks, the lock for good and the new link that ends it, and
the rate limits on the debtor's forms (kindly.site.identity, web.debtor.limits)."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from kindly.campaigns.models import Debtor
from kindly.payments.models import Payment
from kindly.site import identity, links
from kindly.site.models import IdentityCheck
from kindly.site.ratelimit import RateLimiter, Rule
from kindly.tracking.models import Event
from tests.support.app import load_campaign
from tests.unit.test_microsite_actions import PORTFOLIO_WITH_BIRTH, set_campaign
from tests.unit.test_web import csrf_from, token_of
from web.debtor import limits

T0 = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
RIGHT, WRONG = "1980-04-02", "1999-09-09"


def five_wrong(ctx, at: dt.datetime) -> identity.Attempt:
    """Five wrong answers at one moment; the last attempt."""
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor))
        for _ in range(5):
            attempt = identity.check(session, debtor, "birth_date", WRONG, now=at)
    return attempt


def answer(ctx, text: str, at: dt.datetime) -> identity.Attempt:
    with ctx.db.session() as session:
        return identity.check(session, session.scalar(select(Debtor)), "birth_date", text, now=at)


def state(ctx) -> IdentityCheck:
    with ctx.db.session() as session:
        row = session.scalar(select(IdentityCheck))
        session.expunge(row)
        return row


def test_each_lock_lasts_longer_and_the_fifth_lasts_until_a_new_link(ctx):
    load_campaign(ctx, text=PORTFOLIO_WITH_BIRTH)
    at = T0
    for step in identity.LOCK_STEPS:  # 15 minutes, 1 hour, 4 hours, 24 hours
        locked = five_wrong(ctx, at)
        assert locked.locked_until == at + step and not locked.sealed
        # the right answer is not even compared until the lock ends
        assert answer(ctx, RIGHT, at + step - dt.timedelta(seconds=1)).refused
        at += step + dt.timedelta(seconds=1)
    sealed = five_wrong(ctx, at)
    assert sealed.sealed and sealed.locked_until is None
    for later in (dt.timedelta(days=1), dt.timedelta(days=365)):
        refused = answer(ctx, RIGHT, at + later)
        assert refused.refused and not refused.passed and refused.sealed
    row = state(ctx)
    assert (row.locks, row.total_failures) == (identity.MAX_LOCKS, 5 * identity.MAX_LOCKS)
    with ctx.db.session() as session:
        links.reissue(session, session.scalar(select(Debtor)), ctx.storage)
    assert answer(ctx, RIGHT, at + dt.timedelta(days=2)).passed


def test_a_right_answer_clears_the_tries_but_not_the_escalation(ctx):
    load_campaign(ctx, text=PORTFOLIO_WITH_BIRTH)
    five_wrong(ctx, T0)
    after = T0 + dt.timedelta(minutes=16)
    assert [answer(ctx, WRONG, after).tries_left for _ in range(2)] == [4, 3]
    assert answer(ctx, RIGHT, after).passed
    assert answer(ctx, WRONG, after).tries_left == 4
    assert (state(ctx).locks, state(ctx).total_failures) == (1, 8)
    # the next lock is the second step, however long ago the first was
    assert five_wrong(ctx, after).locked_until == after + identity.LOCK_STEPS[1]


def seal(ctx) -> None:
    at = T0
    for step in (*identity.LOCK_STEPS, None):
        five_wrong(ctx, at)
        at += (step or dt.timedelta(0)) + dt.timedelta(seconds=1)


def test_a_sealed_link_refuses_the_right_answer_until_the_operator_issues_a_new_one(
    client, ctx, tmp_path, monkeypatch
):
    load_campaign(ctx, text=PORTFOLIO_WITH_BIRTH)
    set_campaign(ctx, identity_check="birth_date")
    token = token_of(ctx, "G-1")
    csrf = csrf_from(client.get(f"/s/{token}").get_data(as_text=True))
    seal(ctx)
    gate = client.get(f"/s/{token}")
    html = gate.get_data(as_text=True)
    assert gate.status_code == 429
    assert "Zu Ihrer Sicherheit ist dieser Link gesperrt" in html and "Müller" not in html
    assert f'action="/s/{token}/renew"' in html and f'action="/s/{token}/check"' not in html
    refused = client.post(f"/s/{token}/check", data={"csrf_token": csrf, "answer": RIGHT})
    assert refused.status_code == 429
    assert "Müller" not in client.get(f"/s/{token}").get_data(as_text=True)
    # the debtor can ask for a new link from the locked page
    asked = client.post(f"/s/{token}/renew", data={"csrf_token": csrf})
    assert asked.status_code == 410 and "neuen Link" in asked.get_data(as_text=True)
    monkeypatch.setenv("KINDLY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("KINDLY_SECRET_KEY", ctx.settings.secret_key)
    result = CliRunner().invoke(_cli(), ["link", "new", "winter", "G-1", "--no-render"])
    assert result.exit_code == 0, result.output
    new = token_of(ctx, "G-1")
    assert new != token and f"/s/{new}" in result.output
    assert client.get(f"/s/{token}").status_code == 404  # the old link is dead
    csrf = csrf_from(client.get(f"/s/{new}").get_data(as_text=True))
    passed = client.post(f"/s/{new}/check", data={"csrf_token": csrf, "answer": RIGHT})
    assert passed.status_code == 303
    assert "Müller" in client.get(f"/s/{new}").get_data(as_text=True)


def test_over_http_each_lock_is_longer_and_the_fifth_holds_the_right_answer(client, ctx):
    load_campaign(ctx, text=PORTFOLIO_WITH_BIRTH)
    set_campaign(ctx, identity_check="birth_date")
    token = token_of(ctx, "G-1")
    csrf = csrf_from(client.get(f"/s/{token}").get_data(as_text=True))
    told = []
    for n in range(5):  # each round from an address of its own: it is the link's limit here
        for _ in range(5):
            wrong_from(client, token, csrf, f"10.1.0.{n}")
        told.append(client.get(f"/s/{token}").get_data(as_text=True))
        with ctx.db.session() as session:  # time passes: the lock has ended
            row = session.scalar(select(IdentityCheck))
            if row.locked_until is not None:
                row.locked_until = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    assert "für 15 Minuten" in told[0] and "für 60 Minuten" in told[1]
    assert "für 4 Stunden" in told[2] and "für 24 Stunden" in told[3]
    assert "dieser Link gesperrt" in told[4]
    right = client.post(f"/s/{token}/check", data={"csrf_token": csrf, "answer": RIGHT})
    assert right.status_code == 429 and "Müller" not in right.get_data(as_text=True)


def _cli():
    from kindly.cli import cli

    return cli


def test_a_long_lock_is_told_in_hours(client, ctx):
    load_campaign(ctx, text=PORTFOLIO_WITH_BIRTH)
    set_campaign(ctx, identity_check="birth_date")
    now = dt.datetime.now(dt.UTC)
    five_wrong(ctx, now - dt.timedelta(hours=1))  # the first lock, long over
    five_wrong(ctx, now)  # the second: an hour
    five_wrong(ctx, now + dt.timedelta(hours=1))  # the third: four hours
    page = client.get(f"/s/{token_of(ctx, 'G-1')}").get_data(as_text=True)
    assert "für 5 Stunden gesperrt" in page


def wrong_from(client, token: str, csrf: str, address: str):
    return client.post(f"/s/{token}/check", data={"csrf_token": csrf, "answer": WRONG},
                       environ_overrides={"REMOTE_ADDR": address})  # fmt: skip


MANY = "\n".join(
    f"G-{n},Anna,Müller,EUR,100.00,2026-12-15,Stadtwerke GmbH,10115,1980-04-{n:02d},de-DE"
    for n in range(1, 7)
)


def test_wrong_answers_are_limited_per_address_and_right_ones_never_count(client, ctx):
    header = PORTFOLIO_WITH_BIRTH.splitlines()[0]
    load_campaign(ctx, text=f"{header}\n{MANY}\n")
    set_campaign(ctx, identity_check="birth_date")
    tokens = [token_of(ctx, f"G-{n}") for n in range(1, 7)]
    csrf = csrf_from(client.get(f"/s/{tokens[0]}").get_data(as_text=True))
    for n in range(25):  # right answers from the address, each a browser of its own, cost nothing
        browser = client.application.test_client()
        fresh = csrf_from(browser.get(f"/s/{tokens[5]}").get_data(as_text=True))
        right = browser.post(f"/s/{tokens[5]}/check", data={"csrf_token": fresh,
                             "answer": "1980-04-06"}, environ_overrides={"REMOTE_ADDR": "10.0.0.1"})  # fmt: skip
        assert right.status_code == 303, n
    statuses = [wrong_from(client, tokens[n % 6], csrf, "10.0.0.1").status_code
                for n in range(limits.CHECK_PER_ADDRESS.hits + 1)]  # fmt: skip
    assert statuses == [400] * limits.CHECK_PER_ADDRESS.hits + [429]
    busy = wrong_from(client, tokens[0], csrf, "10.0.0.1")
    assert busy.status_code == 429 and "zu viele Anfragen" in busy.get_data(as_text=True)
    assert 0 < int(busy.headers["Retry-After"]) <= 3600
    # another address is not held up, and no link was locked by the refused answers
    assert wrong_from(client, tokens[5], csrf, "10.0.0.2").status_code == 400
    with ctx.db.session() as session:
        assert session.scalar(select(func.max(IdentityCheck.locks))) == 0


FORMS = [
    ("contact", {"topic": "question", "message": "Wann?"}),
    ("promise", {"date": (dt.date.today() + dt.timedelta(days=3)).isoformat()}),
    ("preferences", {"channel": "email"}),
    ("plan", {"instalments": "3", "frequency": "monthly", "show": "1"}),
    ("pay", {"choice": "full"}),
]


@pytest.mark.parametrize(("form", "data"), FORMS, ids=[f for f, _ in FORMS])
def test_a_debtor_form_answers_429_past_its_limit_and_does_nothing(client, ctx, form, data):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    csrf = csrf_from(client.get(f"/s/{token}/{form}").get_data(as_text=True))
    for _ in range(limits.FORM_PER_LINK.hits):
        assert client.post(f"/s/{token}/{form}", data={"csrf_token": csrf, **data}).status_code \
            in (200, 302, 303)  # fmt: skip
    before = stored(ctx)
    refused = client.post(f"/s/{token}/{form}", data={"csrf_token": csrf, **data})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 3600
    assert "<h1>Bitte warten Sie einen Moment</h1>" in html and 'lang="de"' in html
    assert stored(ctx) == before  # no event, no payment
    # another link from another address is not held up by this one
    other = token_of(ctx, "A-2")
    other_csrf = csrf_from(client.get(f"/s/{other}/{form}").get_data(as_text=True))
    again = client.post(f"/s/{other}/{form}", data={"csrf_token": other_csrf, **data},
                        environ_overrides={"REMOTE_ADDR": "10.9.9.9"})  # fmt: skip
    assert again.status_code in (200, 302, 303)


def stored(ctx) -> tuple[int, int]:
    with ctx.db.session() as session:
        events = session.scalar(select(func.count(Event.id)).where(Event.type != "cta"))
        return events, session.scalar(select(func.count(Payment.id)))


def test_form_posts_from_one_address_are_limited_across_links(client, ctx, monkeypatch):
    monkeypatch.setattr(limits, "FORM_PER_ADDRESS", Rule("form-address", 4, 3600))
    load_campaign(ctx)
    tokens = [token_of(ctx, ref) for ref in ("A-1", "A-2", "A-3")]
    csrf = csrf_from(client.get(f"/s/{tokens[0]}/contact").get_data(as_text=True))
    data = {"csrf_token": csrf, "topic": "question", "message": "Hallo"}
    statuses = [client.post(f"/s/{tokens[n % 3]}/contact", data=data).status_code
                for n in range(6)]  # fmt: skip
    assert statuses == [303] * 4 + [429] * 2
    italian = client.post(f"/s/{tokens[2]}/contact", data=data).get_data(as_text=True)
    assert "Attenda un momento" in italian  # the page speaks the link's language


def test_asking_for_a_new_link_is_limited_per_link(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    with ctx.db.session() as session:
        session.scalar(select(Debtor).where(Debtor.token == token)).created_at -= dt.timedelta(
            days=400
        )
    csrf = csrf_from(client.get(f"/s/{token}").get_data(as_text=True))
    statuses = [client.post(f"/s/{token}/renew", data={"csrf_token": csrf}).status_code
                for _ in range(limits.RENEW_PER_LINK.hits + 1)]  # fmt: skip
    assert statuses == [410] * limits.RENEW_PER_LINK.hits + [429]


def test_the_counter_is_atomic_per_window_and_a_hit_can_be_given_back(ctx):
    limiter = RateLimiter(ctx.db, "secret")
    rule = Rule("test", 2, 60)
    first, second, third = (limiter.take(rule, "203.0.113.5", now=120.0) for _ in range(3))
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert third.retry_after(now=150.0) == 30
    limiter.give_back(second)
    limiter.give_back(third)
    assert limiter.take(rule, "203.0.113.5", now=130.0).allowed
    assert limiter.take(rule, "203.0.113.5", now=180.0).count == 1  # the next window
    with ctx.db.session() as session:
        keys = {row.key for row in session.execute(select(_rate_table()))}
    assert keys and not any("203.0.113" in key for key in keys)  # the address is not stored


def _rate_table():
    from kindly.site.models import RateCount

    return RateCount.__table__


def test_an_unreachable_redis_falls_back_to_the_database(ctx):
    limiter = RateLimiter(ctx.db, "secret", "redis://127.0.0.1:1/0")
    rule = Rule("test", 1, 60)
    assert limiter.take(rule, "x", now=0.0).allowed
    assert not limiter.take(rule, "x", now=1.0).allowed
