"""Person or machine from headers and timing alone (kindly.tracking.verdict), as the Flask
routes and the fast lane both ask it."""

from __future__ import annotations

import datetime as dt

from kindly.tracking import verdict

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
PHONE = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"}


def test_the_headers_decide_first():
    assert verdict.judge(PHONE, None, NOW) == "human"
    assert verdict.judge({}, None, NOW) == "automated"
    assert verdict.judge({"User-Agent": "Mozilla/5.0"}, None, NOW) == "prefetch"
    assert verdict.judge(PHONE | {"Sec-Purpose": "prefetch"}, None, NOW) == "prefetch"


def test_a_hit_within_seconds_of_the_send_is_a_scanner():
    assert verdict.judge(PHONE, NOW - dt.timedelta(seconds=3), NOW) == "automated"
    assert verdict.judge(PHONE, NOW - verdict.SEND_GRACE, NOW) == "human"
    naive = (NOW - dt.timedelta(seconds=3)).replace(tzinfo=None)  # SQLite gives naive UTC
    assert verdict.too_soon(naive, NOW)
    assert not verdict.too_soon(None, NOW)


def test_a_burst_on_every_link_is_a_scanner_and_is_asked_only_when_it_matters():
    asked = []

    def links(found):
        return lambda: asked.append(found) or found

    assert verdict.judge(PHONE, None, NOW, links=links({"site", "pay", "plan"})) == "automated"
    assert verdict.judge(PHONE, None, NOW, links=links({"site", "pay"})) == "human"
    assert len(asked) == 2
    assert verdict.refine("prefetch", None, NOW, links=links({"a", "b", "c"})) == "prefetch"
    soon = NOW - dt.timedelta(seconds=1)
    assert verdict.refine("human", soon, NOW, links=links({"a", "b", "c"})) == "automated"
    assert len(asked) == 2  # neither answer needed the links
