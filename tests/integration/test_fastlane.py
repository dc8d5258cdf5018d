"""The fast lane answers the tracking hits Flask would answer, the same way, and gives Flask
everything else (web.debtor.fastlane)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from flask import request
from sqlalchemy import select, update

from kindly.campaigns.models import Campaign, Debtor
from kindly.tracking.models import Event

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
    client.get(f"/o/{token}.gif")  # the lane reads a new token itself; Flask builds the page
    client.get(f"/s/{token}")
    assert seen == [f"/s/{token}"]
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
    from kindly.tracking.eventbuffer import _packed

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


def lane_of(client):
    """The app's fast lane (the WSGI layer in front of Flask)."""
    return client.application.wsgi_app


def settle(client, before: int) -> None:
    """Wait until the page watch has heard a notification after sequence `before` (in
    production a view can come before it: the window is the few ms it takes to arrive)."""
    watch = lane_of(client)._watch
    deadline = time.monotonic() + 10
    while watch._seq <= before:
        assert time.monotonic() < deadline, "no notification arrived"
        time.sleep(0.01)


def listening(client) -> int:
    """Wait until the page watch listens; its sequence now."""
    lane = lane_of(client)
    deadline = time.monotonic() + 10
    while lane._watch is None or not lane._watch.listening.is_set():
        assert time.monotonic() < deadline, "the page watch does not listen"
        time.sleep(0.01)
    return lane._watch._seq


def test_warm_views_read_nothing_until_a_change_is_notified(buffered, monkeypatch):
    from babel.dates import format_date

    from kindly.payments.models import Payment
    from kindly.site import microsite
    from kindly.tracking import events as core_events

    context, client, token = buffered
    reads = []
    real = microsite.read_live_state
    monkeypatch.setattr(microsite, "read_live_state", lambda *a: reads.append(1) or real(*a))
    first = client.get(f"/s/{token}").get_data(as_text=True)  # Flask builds and keeps it
    assert "1.234,56" in first
    client.get(f"/s/{token}")  # the lane starts the watch and reads once
    seq = listening(client)
    client.get(f"/s/{token}")  # read again: the first read came before the watch listened
    seen, reads[:] = flask_paths(client), []
    for _ in range(10):
        assert client.get(f"/s/{token}").get_data(as_text=True) == first
    assert reads == [] and seen == []  # ten views, no database read, no Flask

    def change(apply) -> str:
        nonlocal seq
        with context.db.session() as session:
            apply(session, session.scalar(select(Debtor).where(Debtor.token == token)))
        settle(client, seq)
        seq = lane_of(client)._watch._seq
        return client.get(f"/s/{token}").get_data(as_text=True)

    paid = change(lambda session, debtor: session.add(
        Payment(campaign_id=debtor.campaign_id, debtor_id=debtor.id, provider="sandbox",
                provider_ref="p-1", amount_minor=23456, currency="EUR", status="succeeded")
    ))  # fmt: skip
    assert "234,56" in paid and "1.000,00" in paid  # paid, and what is left
    assert seen == [f"/s/{token}"]  # the stamp moved: Flask built the page again
    day = dt.date.today() + dt.timedelta(days=7)
    promised = change(lambda session, debtor: core_events.record(
        session, debtor, "promise", data={"date": day.isoformat()}
    ))  # fmt: skip
    assert format_date(day, format="long", locale="de_DE") in promised
    assert seen == [f"/s/{token}"] * 2  # the case moved: its first screen is built again
    renamed = change(lambda session, debtor: setattr(debtor, "last_name", "Zoë-Nachname"))
    assert "Zoë-Nachname" in renamed and seen == [f"/s/{token}"] * 3
    settings = change(
        lambda session, debtor: setattr(debtor.campaign, "settings",
                                        {**(debtor.campaign.settings or {}), "link_days": 365})
    )  # fmt: skip
    assert settings == renamed and seen == [f"/s/{token}"] * 4
    client.get(f"/s/{token}")  # the lane reads the state once for the page Flask built
    reads[:] = []
    for _ in range(5):
        assert client.get(f"/s/{token}").get_data(as_text=True) == renamed
    assert reads == [] and len(seen) == 4
    assert [kind for kind, *_ in events(context)].count("viewed") == 3 + 10 + 4 + 1 + 5


def test_views_are_read_again_while_the_watch_is_not_listening(buffered, monkeypatch):
    from sqlalchemy import text

    from kindly.site import microsite

    context, client, token = buffered
    client.get(f"/s/{token}")
    client.get(f"/s/{token}")
    listening(client)
    client.get(f"/s/{token}")
    watch = lane_of(client)._watch
    reads = []
    real = microsite.read_live_state
    monkeypatch.setattr(microsite, "read_live_state", lambda *a: reads.append(1) or real(*a))
    with context.db.engine.connect() as conn:  # PostgreSQL drops the watch's connection
        conn.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        ))  # fmt: skip
    deadline = time.monotonic() + 10
    while watch.listening.is_set():
        assert time.monotonic() < deadline
        client.get(f"/s/{token}")
        time.sleep(0.01)
    client.get(f"/s/{token}")
    assert reads  # nothing is trusted while notifications may be missed
    listening(client)
    client.get(f"/s/{token}")  # the first read after listening again is trusted
    reads[:] = []
    client.get(f"/s/{token}")
    assert reads == []


def test_every_table_of_the_live_state_notifies_its_debtor(buffered):
    import psycopg
    from sqlalchemy import text

    context, _, _ = buffered
    url = context.db.engine.url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url, autocommit=True) as listen, context.db.engine.connect() as conn:
        listen.execute("LISTEN kindly_pages")
        one = conn.execute(text("SELECT min(id), min(campaign_id) FROM debtor")).one()
        params = {"d": one[0], "c": one[1]}

        def heard(sql: str) -> list[str]:
            conn.execute(text(sql), params)
            conn.commit()
            return [note.payload for note in listen.notifies(timeout=0.5)]

        d = f"d{one[0]}"
        assert heard("UPDATE debtor SET first_name = 'A' WHERE id = :d") == [d]
        assert heard("UPDATE campaign SET name = 'B' WHERE id = :c") == [f"c{one[1]}"]
        assert heard(
            "INSERT INTO payment (campaign_id, debtor_id, provider, provider_ref, amount_minor,"
            " currency, status, created_at, updated_at) VALUES (:c, :d, 'sandbox', 'p', 1,"
            " 'EUR', 'succeeded', now(), now())"
        ) == [d]
        assert heard("UPDATE payment SET status = 'refunded'") == [d]
        assert heard(
            "INSERT INTO payment_plan (campaign_id, debtor_id, currency, total_minor, frequency,"
            " count, status, misses, agreed_at) VALUES (:c, :d, 'EUR', 2, 'monthly', 2,"
            " 'agreed', 0, now())"
        ) == [d]
        assert heard(
            "INSERT INTO instalment (plan_id, seq, due_date, amount_minor, status, attempts)"
            " SELECT id, 1, current_date, 1, 'due', 0 FROM payment_plan"
        ) == [d]
        assert heard("UPDATE instalment SET status = 'paid'") == [d]
        assert heard(
            "INSERT INTO decision (campaign_id, debtor_id, rule_version, segment, variant, tone,"
            " channels, treatment, created_at) VALUES (:c, :d, 1, 's', 'A', 'warm', '[]', '{}',"
            " now())"
        ) == [d]
        assert heard(
            "INSERT INTO artifact (debtor_id, kind, key, sha256, size, content_type, created_at)"
            " VALUES (:d, 'site', 'k', 's', 1, 'text/html', now())"
        ) == [d]
        assert heard("DELETE FROM artifact") == [d]
        event = (
            "INSERT INTO event (idempotency_key, campaign_id, debtor_id, type, variant, agent,"
            " occurred_at, data) VALUES (:k, :c, :d, :t, 'A', 'human', now(), '{}')"
        )
        for kind, expected in (("viewed", []), ("opened", []), ("sent", [d]), ("promise", [d])):
            params |= {"k": f"key-{kind}", "t": kind}
            assert heard(event) == expected, kind
        assert heard("DELETE FROM instalment") == [d]
        assert heard("DELETE FROM payment_plan") == [d]
        ids = sorted(conn.execute(text("SELECT id FROM debtor")).scalars())
        assert heard("UPDATE debtor SET first_name = first_name") == [
            "d" + ",".join(str(i) for i in ids)
        ]


def test_hits_of_known_debtors_are_answered_while_postgresql_is_down(buffered, monkeypatch):
    # the soak's verdict: 4,869 tracking hits got a 503 in the 30 s PostgreSQL was stopped,
    # because every cached entry older than CACHE_SECONDS was read again first
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from web.debtor import hits

    context, client, token = buffered
    seen = flask_paths(client)
    assert client.get(f"/o/{token}.gif").status_code == 200  # read once, while up
    stored = len(events(context))
    monkeypatch.setattr(hits, "CACHE_SECONDS", 0.0)  # every entry is now past its time
    down = create_engine("postgresql+psycopg://kindly@127.0.0.1:1/none")  # nothing listens
    monkeypatch.setattr(context.db, "engine", down)
    monkeypatch.setattr(context.db, "sessions", sessionmaker(down))
    answers = [
        client.get(f"/o/{token}.gif").status_code,
        client.get(f"/c/{token}?to=pay&c=sms").status_code,
        client.post(f"/s/{token}/e", data=BEACON % 1).status_code,
    ]
    assert answers == [200, 302, 204] and seen == []  # the lane answered each, Flask none
    other = "x" * len(token)  # a token this process never read still gets Flask's 503
    assert client.get(f"/o/{other}.gif").status_code == 503
    monkeypatch.undo()
    assert len(events(context)) == stored + 3  # journaled and stored once the database is back
