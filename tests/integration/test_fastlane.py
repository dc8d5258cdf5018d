"""The fast lane answers the tracking hits Flask would answer, the same way, and gives Flask
everything else (kindly.web.fastlane)."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import request
from sqlalchemy import select, update

from kindly.core.models import Campaign, Debtor, Event

pytestmark = pytest.mark.integration

BEACON = '{"type": "video_progress", "id": "page-%04d", "pct": 75}'


def flask_paths(client) -> list[str]:
    """Paths of the requests that reached Flask from now on."""
    seen: list[str] = []
    client.application.before_request_funcs.setdefault(None, []).append(
        lambda: seen.append(request.path)
    )
    return seen


def events(context) -> list[tuple]:
    """Stored tracking events, the random parts (key, time, id) left out."""
    context.event_buffer.flush_all(context.db)
    with context.db.session() as session:
        rows = session.scalars(select(Event).where(Event.type != "sent").order_by(Event.id))
        return [(e.type, e.channel, e.agent, e.variant, e.debtor_id, e.data) for e in rows]


def exchange(client, method: str, path: str, body: str | None = None):
    response = client.open(path, method=method, data=body)
    return response.status, list(response.headers.items()), response.get_data()


REQUESTS = [
    ("GET", "/s/{token}", None),
    ("GET", "/s/{token}?c=sms&c=email", None),
    ("GET", "/o/{token}.gif", None),
    ("GET", "/c/{token}?to=pay&c=sms", None),
    ("GET", "/c/{token}?c=letter", None),
    ("GET", "/c/{token}?to=video&to=pay&c=nonsense", None),
    ("GET", "/c/{token}?to=letter&c=", None),
    ("POST", "/s/{token}/e", '{{"type": "view", "id": "page-000{run}1"}}'),
    ("POST", "/s/{token}/e", '{{"type": "video_progress", "id": "page-000{run}2", "pct": 50}}'),
]


def test_the_lane_answers_as_flask_does_and_stores_the_same_events(buffered):
    context, client, token = buffered
    app = client.application
    seen = flask_paths(client)
    client.get(f"/o/{token}.gif")  # the first hits load the token and the page through Flask
    client.get(f"/s/{token}")
    assert seen == [f"/o/{token}.gif", f"/s/{token}"]
    stored = events(context)
    debtor_id = stored[0][4]
    warm = len(stored)
    answers = {}
    for run, lane in enumerate((True, False)):
        app.config["KINDLY_FAST_LANE"] = lane
        context.event_buffer.redis.delete(f"kindly:clicks:{debtor_id}")  # a fresh burst window
        seen.clear()
        answers[lane] = [
            exchange(client, method, path.format(token=token), body and body.format(run=run))
            for method, path, body in REQUESTS
        ]
        assert len(seen) == (0 if lane else len(REQUESTS))
        stored = events(context)
    lane_events = stored[warm : warm + len(REQUESTS)]
    flask_events = stored[warm + len(REQUESTS) :]
    assert answers[True] == answers[False]
    assert lane_events == flask_events
    assert len(lane_events) == len(REQUESTS)
    statuses = [status for status, _, _ in answers[True]]
    assert statuses == ["200 OK"] * 3 + ["302 FOUND"] * 4 + ["204 NO CONTENT"] * 2
    assert b"1.234,56" in answers[True][0][2]
    # a page view proves no person; the third and fourth links within seconds are a scanner's
    agents = [agent for _, _, agent, *_ in lane_events]
    assert agents[:2] == ["unverified"] * 2
    assert agents[3:7] == ["human", "human", "automated", "automated"]
    assert [channel for _, channel, *_ in lane_events[:2]] == [None, "sms"]


def test_whatever_the_lane_does_not_answer_goes_to_flask(buffered):
    context, client, token = buffered
    client.get(f"/o/{token}.gif")
    seen = flask_paths(client)
    assert client.get("/o/" + "x" * 32 + ".gif").status_code == 404  # unknown token
    assert client.get(f"/c/{token}?to=elsewhere").status_code == 404  # unknown target
    assert client.head(f"/o/{token}.gif").status_code == 200  # looks, counts nothing
    for bad in ('{"type": "view"}', '{"type": ["view"]}', "[1]", "{", '{"type": "view", "id": "'
                'page-0003", "pct": 50}x', '{"type": "video_progress", "id": "page-0004"}'):  # fmt: skip
        assert client.post(f"/s/{token}/e", data=bad).status_code == 400, bad
    too_long = '{"type": "view", "id": "page-0005", "pad": "%s"}' % ("x" * 3000)
    assert client.post(f"/s/{token}/e", data=too_long).status_code == 400
    assert len(seen) == 10
    assert [kind for kind, *_ in events(context)] == ["opened"]


def test_an_expired_link_and_a_checked_beacon_are_flasks(buffered):
    context, client, token = buffered
    assert client.post(f"/s/{token}/e", data=BEACON % 1).status_code == 204
    with context.db.session() as session:
        campaign = session.scalar(select(Campaign))
        campaign.settings = {**(campaign.settings or {}), "identity_check": "birth_date"}
        session.execute(update(Debtor).values(birth_date=dt.date(1970, 1, 1)))
    client.application.extensions["kindly_tokens"]._entries.clear()
    seen = flask_paths(client)
    # behind an identity check only a browser that passed it may report
    assert client.post(f"/s/{token}/e", data=BEACON % 2).status_code == 303
    assert client.post(f"/s/{token}/e", data=BEACON % 3).status_code == 303
    assert len(seen) == 2
    with context.db.session() as session:
        session.execute(update(Debtor).values(created_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    client.application.extensions["kindly_tokens"]._entries.clear()
    client.get(f"/o/{token}.gif")
    assert client.get(f"/o/{token}.gif").status_code == 410  # expired: Flask's page
    assert len(seen) == 4
    assert [e[0] for e in events(context)] == ["video_progress"]


def test_redis_failing_in_the_lane_hands_the_hit_to_flask_once(buffered, monkeypatch, caplog):
    from redis.exceptions import ConnectionError

    context, client, token = buffered
    client.get(f"/o/{token}.gif")
    buffer = context.event_buffer
    real, failures = buffer.send, []

    def flaky(commands):
        if not failures:
            failures.append(commands)
            raise ConnectionError("Redis went away")
        return real(commands)

    monkeypatch.setattr(buffer, "send", flaky)
    seen = flask_paths(client)
    assert client.get(f"/o/{token}.gif").status_code == 200
    assert seen == [f"/o/{token}.gif"] and len(failures) == 1
    assert "fast lane: ConnectionError" in caplog.text and token not in caplog.text
    assert len(events(context)) == 2  # the warm-up hit and this one, once each


def test_a_connection_redis_closed_is_opened_again(buffered):
    from kindly.core.eventbuffer import _packed

    context, client, token = buffered
    client.get(f"/o/{token}.gif")
    assert client.get(f"/o/{token}.gif").status_code == 200  # the lane's connection exists
    buffer = context.event_buffer
    (own,) = buffer.send([_packed(b"CLIENT", b"ID")])
    assert buffer.redis.client_kill_filter(_id=own) == 1  # Redis drops that connection
    seen = flask_paths(client)
    assert client.get(f"/o/{token}.gif").status_code == 200
    assert seen == []  # answered by the lane, on a new connection
    (again,) = buffer.send([_packed(b"CLIENT", b"ID")])
    assert again != own
    assert len(events(context)) == 3


def test_a_page_whose_state_changed_is_rebuilt_by_flask_then_served_by_the_lane(buffered):
    from kindly.core.models import Payment

    context, client, token = buffered
    assert "1.234,56" in client.get(f"/s/{token}").get_data(as_text=True)
    seen = flask_paths(client)
    client.get(f"/s/{token}")
    assert seen == []
    with context.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.token == token))
        session.add(
            Payment(campaign_id=debtor.campaign_id, debtor_id=debtor.id, provider="sandbox",
                    provider_ref="p-1", amount_minor=23456, currency="EUR", status="succeeded")
        )  # fmt: skip
    html = client.get(f"/s/{token}").get_data(as_text=True)
    assert "234,56" in html and "1.000,00" in html  # paid, and what is left
    assert seen == [f"/s/{token}"]  # the stamp moved: Flask built the page again
    assert client.get(f"/s/{token}").get_data(as_text=True) == html
    assert client.get(f"/s/{token}?payment=succeeded").status_code == 200  # notices: Flask's
    assert seen == [f"/s/{token}"] * 2
    with context.db.session() as session:  # the campaign's settings are in the stamp too
        campaign = session.scalar(select(Campaign))
        campaign.settings = {**(campaign.settings or {}), "link_days": 365}
    client.get(f"/s/{token}")
    client.get(f"/s/{token}")
    assert seen == [f"/s/{token}"] * 3
    assert [kind for kind, *_ in events(context)] == ["viewed"] * 7
