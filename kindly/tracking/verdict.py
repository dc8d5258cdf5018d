"""Person or machine: the verdict on one tracking hit, from its headers and its timing.

Plain functions of headers, timestamps and link names, so the Flask routes
(web.debtor.hits) and the WSGI fast lane (web.debtor.fastlane) reach the same verdict.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping

from kindly.tracking import events

SEND_GRACE = dt.timedelta(seconds=10)
"""A hit this soon after the message was sent is a scanner, not a person."""
BURST_WINDOW = dt.timedelta(seconds=3)
BURST_LINKS = 3
"""Hits on this many different links within the window are a scanner following every link."""


def judge(
    headers: Mapping[str, str],
    sent_at: dt.datetime | None,
    now: dt.datetime,
    *,
    links: Callable[[], Collection[str]] | None = None,
) -> str:
    """The headers' verdict (events.classify), sharpened by timing (see `refine`)."""
    return refine(events.classify(headers), sent_at, now, links=links)


def refine(
    agent: str,
    sent_at: dt.datetime | None,
    now: dt.datetime,
    *,
    links: Callable[[], Collection[str]] | None = None,
) -> str:
    """What the headers said (`agent`), sharpened by timing: too soon after the send, or a
    burst of hits on every link, is automated. `links` returns the links clicked in the
    burst window, this one too; it is called only when the answer depends on it."""
    if agent != "human":
        return agent
    if too_soon(sent_at, now):
        return "automated"
    if links is not None and is_burst(links()):
        return "automated"
    return "human"


def too_soon(sent_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether a hit at `now` came too soon after the message was sent to be a person."""
    if sent_at is None:
        return False
    if sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=dt.UTC)
    return now - sent_at < SEND_GRACE


def is_burst(links: Collection[str]) -> bool:
    """Whether hits on these different links within the burst window are a scanner."""
    return len(links) >= BURST_LINKS
