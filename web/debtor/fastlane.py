"""The fast lane: the hits mail scanners and debtors make most, answered without Flask.

An open pixel, a click redirect or a page's beacon needs little: the token's cached entry,
the verdict on the request's headers and timing, one event written to the local journal
(kindly.tracking.journal; without one, appended to the Redis stream), and a fixed answer.
A warm microsite view needs the page this process keeps and the live state it was built
from; on PostgreSQL the page watch (kindly.site.pagewatch) says when either may have
changed, so a view reads the database only after a change, elsewhere on every view.
Through Flask (request context, session, URL routing, response object, the after-request
hooks) that was three quarters of the CPU a tracking hit took; this WSGI layer in front of the
app does only the work itself.

A tracking hit for a token not in this process's cache reads it with one query
(web.debtor.hits.load_tracked) and is answered here too: in a real send most hits are a
process's first for their debtor.

It answers only the plain case and hands every other request to Flask unchanged: an unknown
token, a page not in this process's cache (Flask's route builds it, so the next view takes
the lane),
a page whose state changed, notices asked for in the query, the database down, an expired
link, a page or beacon behind an identity check (the session cookie decides), a HEAD, an
unknown link target, a malformed beacon (Flask answers the 400), and any request when Redis
fails. What it answers is what Flask would: the same status, headers and event (tests
compare the two, tests/integration/test_fastlane.py). `app.config["KINDLY_FAST_LANE"] = False`
turns it off.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from io import BytesIO
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Flask
from sqlalchemy.exc import OperationalError

from kindly.infra import logs, metrics
from kindly.infra.db import utcnow
from kindly.site import microsite
from kindly.site.pagewatch import PageWatch, Seen
from kindly.tracking import events
from kindly.tracking.eventbuffer import pending
from kindly.tracking.sink import EventSink
from kindly.tracking.verdict import judge
from web.debtor.beacon import BEACON_MAX, read_beacon
from web.debtor.hits import TOKEN, TokenCache, Tracked, load_tracked
from web.debtor.page import page_body
from web.debtor.pagecache import PAGE_CACHE_SIZE, PAGE_SECONDS, Page, PageCache
from web.debtor.track import PIXEL, TARGETS
from web.requestlog import ROUTE

log = logging.getLogger(__name__)

_REDIRECT = (
    "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n"
    "<p>You should be redirected automatically to the target URL: "
    '<a href="{url}">{url}</a>. If not, click the link.\n'
)
"""Werkzeug's redirect body, so both paths answer alike."""

Answer = tuple[str, list[tuple[str, str]], bytes]


class _Headers:
    """The request headers a verdict reads (events.classify), straight from the environ.

    Werkzeug's EnvironHeaders does the same but costs about 7 µs more per hit (it raises
    and catches a KeyError for every absent header), on the path that exists to be cheap.
    """

    __slots__ = ("environ",)

    def __init__(self, environ: dict[str, Any]):
        self.environ = environ

    def get(self, name: str, default: str | None = None) -> str | None:
        """The header's value, as Mapping.get."""
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), default)


def _verdict(environ: dict[str, Any], entry: Tracked) -> str:
    """The verdict on a hit without a link target (kindly.tracking.verdict)."""
    return judge(_Headers(environ), entry.sent_at, utcnow())


def _args(environ: dict[str, Any]) -> dict[str, str]:
    """The query's arguments, the first value of a repeated name (as request.args.get)."""
    return dict(reversed(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)))


class FastLane:
    """WSGI middleware around the Flask app (see the module's docstring)."""

    def __init__(self, app: Flask, inner: Callable, on_request: Callable[[], None]):
        self.app = app
        self.inner = inner
        self.on_request = on_request  # starts this process's event writer if not yet running
        self._watch: PageWatch | None = None
        self._lock = threading.Lock()
        self._fresh: dict[str, tuple[Page, microsite.LiveState, Seen]] = {}
        """Token -> the kept page, the live state last read for it, when it was read."""

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO") or ""
        answer = route = None
        try:
            if not self.app.config.get("KINDLY_FAST_LANE", True):
                pass
            elif method == "GET" and path.startswith("/o/") and path.endswith(".gif"):
                answer, route = self._opened(environ, path[3:-4]), "/o/<token>.gif"
            elif method == "GET" and path.startswith("/s/") and path.count("/") == 2:
                answer, route = self._site(environ, path[3:]), "/s/<token>"
            elif method == "GET" and path.startswith("/c/"):
                answer, route = self._clicked(environ, path[3:]), "/c/<token>"
            elif method == "POST" and path.startswith("/s/") and path.endswith("/e"):
                answer, route = self._beacon(environ, path[3:-2]), "/s/<token>/e"
        except Exception as exc:  # Redis failing: Flask's route tries again and answers for it
            log.warning("fast lane: %s: %s; handing the request to Flask",
                        type(exc).__name__, str(exc)[:200])  # fmt: skip
            answer = None
        if answer is None:
            return self.inner(environ, start_response)
        environ[ROUTE] = route  # the Flask rule that would have answered, for the log
        status, headers, body = answer
        start_response(status, headers)
        # counted as Flask would count it, under the same URL rule (web.request_metrics)
        metrics.observe_request(route, method, int(status[:3]), time.perf_counter() - started)
        return [body]

    def _sink(self) -> EventSink | None:
        """Where this process's hits go, when it has a journal or Redis (else Flask's way)."""
        context = self.app.extensions["kindly"]
        if context.journal is None and context.event_buffer is None:
            return None
        return context.events

    def _entry(self, token: str) -> tuple[Tracked, EventSink] | None:
        """The token's cached entry and the event sink, when the lane can answer for it."""
        if not TOKEN.match(token):
            return None
        buffer = self._sink()
        if buffer is None:
            return None
        cache: TokenCache | None = self.app.extensions.get("kindly_tokens")
        if cache is None:
            cache = self.app.extensions.setdefault("kindly_tokens", TokenCache())
        entry = cache.get(token)
        if entry is None:  # a process's first hit for this debtor: one query, no Flask
            try:
                entry = load_tracked(self.app.extensions["kindly"].db, token)
            except OperationalError:
                # the database is down: what this process last read answers (not cached
                # again, so the first hit after the outage reads it anew); a token it never
                # read goes to Flask, which answers 503
                entry = cache.stale(token)
                if entry is None:
                    raise
            else:
                if entry is None:  # unknown: Flask's route answers the 404
                    return None
                cache.put(entry)
        if utcnow() > entry.expires_at:
            return None
        logs.note_campaign(entry.campaign)
        self.on_request()
        return entry, buffer

    def _headers(self, content_type: str, body: bytes | None) -> list[tuple[str, str]]:
        length = [] if body is None else [("Content-Length", str(len(body)))]
        return [("Content-Type", content_type), *length, *self.app.extensions["kindly_headers"]]

    def _opened(self, environ: dict[str, Any], token: str) -> Answer | None:
        found = self._entry(token)
        if found is None:
            return None
        entry, buffer = found
        agent = _verdict(environ, entry)
        buffer.add(pending(entry, "opened", channel="email", agent=agent))
        return "200 OK", self._headers("image/gif", PIXEL), PIXEL

    def _site(self, environ: dict[str, Any], token: str) -> Answer | None:
        """A warm view of a microsite: the page this process keeps, if it is still the right
        one (PostgreSQL's notifications say so, or else one read of the live state)."""
        args = _args(environ)
        if set(args) - {"c"}:  # notices after paying, a plan or a form: Flask's route
            return None
        pages: PageCache | None = self.app.extensions.get("kindly_pages")
        kept = pages.peek(token) if pages is not None and TOKEN.match(token) else None
        if kept is None or kept.who.check != "none":  # a check needs the session cookie
            return None
        buffer = self._sink()
        if buffer is None:
            return None
        current = self._current(token, kept, pages)
        if current is None:
            return None
        page, state = current
        if utcnow() > page.who.expires_at:
            return None
        self.on_request()
        who = replace(page.who, sent_at=state.sent_at)
        agent = _verdict(environ, who)
        if agent == "human":  # a GET proves no person (web.debtor.hits.count)
            agent = "unverified"
        channel = args.get("c")
        channel = channel if channel in events.CHANNELS else None
        buffer.add(pending(who, "viewed", channel=channel, agent=agent))
        body = page_body(page, state, args).encode()
        return "200 OK", self._headers("text/html; charset=utf-8", body), body

    def _current(
        self, token: str, kept: Page, pages: PageCache
    ) -> tuple[Page, microsite.LiveState] | None:
        """The kept page and its live state: as last read while the page watch says nothing
        changed since, else read now (None: Flask's route builds the page or answers)."""
        watch = self._page_watch()
        fresh = self._fresh.get(token)
        if fresh is not None and watch is not None:
            page, state, seen = fresh
            if (
                page is kept
                and state.today == dt.date.today()  # a new day: the amount (interest) moved
                and time.monotonic() - page.loaded <= PAGE_SECONDS
                and watch.current(seen, page.who.id, page.who.campaign_id)
            ):
                return page, state
        seen = watch.snapshot() if watch is not None else None  # before the read
        try:
            state = microsite.read_live_state(self.app.extensions["kindly"].db, token)
        except OperationalError:  # Flask's route serves the kept page with a notice
            return None
        page = pages.get(token, state.stamp) if state is not None else None
        if page is None:
            return None
        if seen is not None:
            if len(self._fresh) >= PAGE_CACHE_SIZE:
                self._fresh.clear()
            self._fresh[token] = (page, state, seen)
        return page, state

    def _page_watch(self) -> PageWatch | None:
        """This process's page watch (started on first use; PostgreSQL only), or None."""
        watch = self._watch
        if watch is not None and watch.pid == os.getpid() and watch.is_alive():
            return watch
        context = self.app.extensions["kindly"]
        if not self.app.config.get("KINDLY_PAGE_WATCH", True):
            return None
        url = context.db.engine.url
        if url.get_backend_name() != "postgresql":
            return None
        with self._lock:
            if self._watch is None or self._watch.pid != os.getpid():
                watch = PageWatch(url.set(drivername="postgresql").render_as_string(False))
                watch.pid = os.getpid()
                watch.start()
                self._watch = watch
        return self._watch

    def _clicked(self, environ: dict[str, Any], token: str) -> Answer | None:
        query = _args(environ)
        target = query.get("to", "site")
        if target not in TARGETS:
            return None
        found = self._entry(token)
        if found is None:
            return None
        entry, buffer = found
        channel = query.get("c")
        channel = channel if channel in events.CHANNELS else None
        agent = _verdict(environ, entry)
        event = pending(entry, "clicked", channel=channel, agent=agent, data={"to": target})
        # a person's click may yet be a scanner's burst over every link: the journal's shipper
        # (or Redis, in the same round trip as the event) settles it, not this answer
        burst = (target, utcnow().timestamp()) if agent == "human" else None
        buffer.add(event, burst=burst)
        url = f"/s/{token}{TARGETS[target]}" + ("?" + urlencode({"c": channel}) if channel else "")
        body = _REDIRECT.format(url=html.escape(url)).encode()
        headers = self._headers("text/html; charset=utf-8", body)
        headers.insert(2, ("Location", url))
        return "302 FOUND", headers, body

    def _beacon(self, environ: dict[str, Any], token: str) -> Answer | None:
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        if not 0 < length <= BEACON_MAX:
            return None
        found = self._entry(token)
        if found is None or found[0].check != "none":  # the gate needs the session cookie
            return None
        entry, buffer = found
        body = environ["wsgi.input"].read(length)
        # whatever happens next, Flask can still read the body if it gets the request
        environ["wsgi.input"] = BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        try:
            report = read_beacon(json.loads(body.decode("utf-8", "replace")))  # as Flask reads it
        except ValueError:
            return None
        if report is None:
            return None
        agent = _verdict(environ, entry)
        kind, data, key = report.event(entry.id)
        buffer.add(pending(entry, kind, channel="web", agent=agent, data=data, key=key))
        return "204 NO CONTENT", self._headers("text/html; charset=utf-8", None), b""
