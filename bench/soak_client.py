"""The soak's client: phones that view pages, load pixels, click links and send beacons,
debtors who pay in the sandbox, and Stripe delivering signed webhooks. Each counts what it
got answered, with the ids the check finds in the database (bench.soak)."""

from __future__ import annotations

import http.client
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"
TIMEOUT = 20.0
"""Seconds a request may take before the client gives up on it (counted as unanswered)."""
KINDS = ("view", "pixel", "click", "beacon")
MIX = (30, 25, 20, 25)
"""Shares of page views, open pixels, link clicks and page beacons in the hit traffic."""


class Line:
    """One keep-alive HTTP connection to the front, as one phone (or Stripe) holds it."""

    def __init__(self, port: int):
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPResponse, bytes] | None:  # fmt: skip
        """(status, response, body), or None when no answer came (the request may or may not
        have been served)."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
            self.conn.request(
                method, path, body=body, headers={"User-Agent": UA, **(headers or {})}
            )
            response = self.conn.getresponse()
            data = response.read()
            if response.will_close:
                self.close()
            return response.status, response, data
        except (OSError, http.client.HTTPException):
            self.close()
            return None

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class Tally:
    """What the client saw: per (debtor id, kind) the hits answered and those unanswered,
    the beacon ids answered and unanswered, every status by kind, and latencies."""

    answered: Counter = field(default_factory=Counter)
    unanswered: Counter = field(default_factory=Counter)
    beacons: set = field(default_factory=set)
    beacons_unanswered: set = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)  # (kind, status or "none")
    latencies: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # (monotonic time, kind, status or "none")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def total(self) -> int:
        """Hits sent."""
        return sum(self.statuses.values())


CATCH_UP = 1.0
"""Seconds of requests a held-up client thread may send at once to catch up."""


class Pace:
    """Open-loop pacing: one request every `interval` seconds (0: as fast as answered)."""

    def __init__(self, interval: float):
        self.interval = interval
        self.next_at = time.monotonic()

    def wait(self, stopping: threading.Event) -> None:
        """Sleep until the next request is due; a thread held up catches up at most
        CATCH_UP seconds of requests (no burst after an outage)."""
        if self.interval <= 0:
            return
        now = time.monotonic()
        self.next_at = max(self.next_at + self.interval, now - CATCH_UP)
        if self.next_at > now:
            stopping.wait(self.next_at - now)


def hit_loop(index: int, port: int, debtors: list[tuple[int, str]], tally: Tally, pace: Pace,
             stopping: threading.Event, until: float, phase: str, run_id: str,
             budget: int) -> None:  # fmt: skip
    """One thread of hit traffic: random debtors, random kinds of hit, until `until`."""
    rng = random.Random(f"{run_id}-{phase}-{index}")
    line = Line(port)
    n = 0
    while not stopping.is_set() and time.monotonic() < until and n < budget:
        pace.wait(stopping)
        if stopping.is_set() or time.monotonic() >= until:
            break
        n += 1
        debtor_id, token = rng.choice(debtors)
        kind = rng.choices(KINDS, MIX)[0]
        body, headers, page = None, {}, None
        if kind == "view":
            method, path = "GET", f"/s/{token}"
        elif kind == "pixel":
            method, path = "GET", f"/o/{token}.gif"
        elif kind == "click":
            method, path = "GET", f"/c/{token}?to=site"
        else:
            page = f"soak-{run_id}-{phase}-{index}-{n}"
            method, path = "POST", f"/s/{token}/e"
            body = json.dumps({"type": "view", "id": page}).encode()
            headers = {"Content-Type": "application/json"}
        at = time.monotonic()
        answer = line.request(method, path, body, headers)
        took = time.monotonic() - at
        status = answer[0] if answer is not None else None
        ok = status is not None and 200 <= status < 400
        with tally.lock:
            tally.statuses[(kind, status or "none")] += 1
            if ok:
                tally.answered[(debtor_id, kind)] += 1
                tally.latencies.append(took)
                if page:
                    tally.beacons.add((debtor_id, page))
            else:
                # no answer, or an error answer after the event may have been kept: in doubt
                tally.unanswered[(debtor_id, kind)] += 1
                if page:
                    tally.beacons_unanswered.add((debtor_id, page))
                # an error answer counts when it came, a missing one when it was asked for
                tally.errors.append((at + took if status else at, kind, status or "none"))
    line.close()


def drive(port: int, debtors: list[tuple[int, str]], tally: Tally, *, threads: int,
          seconds: float, rate: float | None, phase: str, run_id: str,
          stopping: threading.Event, budget: int) -> float:  # fmt: skip
    """Hit traffic from `threads` threads for `seconds` (rate None: as fast as answered);
    returns the answered hits per second."""
    before = sum(tally.answered.values())
    until = time.monotonic() + seconds
    interval = threads / rate if rate else 0.0
    workers = [
        threading.Thread(target=hit_loop, args=(i, port, debtors, tally, Pace(interval), stopping,
                                                until, phase, run_id, budget // threads),
                         daemon=True)
        for i in range(threads)
    ]  # fmt: skip
    began = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 2 * TIMEOUT + 10)
    return (sum(tally.answered.values()) - before) / (time.monotonic() - began)


def _cookies(response: http.client.HTTPResponse, jar: dict[str, str]) -> None:
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, value = header.split(";", 1)[0].partition("=")
        jar[name.strip()] = value.strip()


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Payments:
    """Payments the client made in the sandbox: each debtor's reference that got its
    success answered, attempts that never got an answer, and statuses seen."""

    paid: dict = field(default_factory=dict)  # debtor id -> sandbox reference
    unfinished: list = field(default_factory=list)  # debtor ids whose flow gave up
    statuses: Counter = field(default_factory=Counter)
    per_minute: float = 0.0  # the pace kept: fewer payers than the plan's rate asks spread out


def pay_once(port: int, debtor_id: int, token: str, payments: Payments,
             stopping: threading.Event) -> None:  # fmt: skip
    """A debtor pays in full in the sandbox: the pay page, its form, the test checkout's
    'succeed' button. Each step is retried on a 503 or no answer (as a person presses
    again), for at most two minutes."""
    line = Line(port)
    jar: dict[str, str] = {}
    forwarded = f"10.{debtor_id >> 16 & 255}.{debtor_id >> 8 & 255}.{debtor_id & 255}"
    deadline = time.monotonic() + 120

    def step(what: str, method: str, path: str, form: dict | None = None):
        while time.monotonic() < deadline and not stopping.is_set():
            headers = {"X-Forwarded-For": forwarded}
            if jar:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
            body = None
            if form is not None:
                body = "&".join(f"{k}={v}" for k, v in form.items()).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            answer = line.request(method, path, body, headers)
            status = answer[0] if answer else "none"
            payments.statuses[(what, status)] += 1
            if answer is not None and answer[0] < 500:
                _cookies(answer[1], jar)
                return answer
            stopping.wait(2.0)
        return None

    try:
        page = step("pay page", "GET", f"/s/{token}/pay")
        found = CSRF.search(page[2].decode()) if page and page[0] == 200 else None
        if found is None:
            payments.unfinished.append(debtor_id)
            return
        csrf = found.group(1)
        started = step(
            "pay form", "POST", f"/s/{token}/pay", {"choice": "full", "csrf_token": csrf}
        )
        location = started[1].getheader("Location", "") if started else ""
        ref = (
            location.rsplit("/sandbox/checkout/", 1)[-1]
            if "/sandbox/checkout/" in location
            else None
        )
        if ref is None:
            payments.unfinished.append(debtor_id)
            return
        done = step(
            "sandbox checkout",
            "POST",
            f"/sandbox/checkout/{ref}",
            {"outcome": "succeeded", "csrf_token": csrf},
        )
        if done is not None and "payment=succeeded" in done[1].getheader("Location", ""):
            payments.paid[debtor_id] = ref
        else:
            payments.unfinished.append(debtor_id)
    finally:
        line.close()


def pay_loop(port: int, payers: list[tuple[int, str]], per_minute: float, payments: Payments,
             stopping: threading.Event, until: float) -> None:  # fmt: skip
    """Payments at a steady pace, each debtor at most once, until `until`."""
    # spread over the whole soak when there are fewer payers than the rate asks for
    minutes = max(until - time.monotonic(), 1.0) / 60
    payments.per_minute = min(per_minute, max(len(payers), 1) / minutes)
    pace = Pace(60.0 / payments.per_minute)
    for debtor_id, token in payers:
        pace.wait(stopping)
        if stopping.is_set() or time.monotonic() >= until:
            return
        pay_once(port, debtor_id, token, payments, stopping)


@dataclass
class Webhooks:
    """Stripe-style deliveries: event ids answered 2xx, those never answered, outcomes."""

    answered: set = field(default_factory=set)
    unanswered: set = field(default_factory=set)
    outcomes: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)


def webhook_loop(port: int, secret: str, per_minute: float, hooks: Webhooks, run_id: str,
                 stopping: threading.Event, until: float) -> None:  # fmt: skip
    """Signed Stripe events, as Stripe delivers them: a 2xx ends a delivery, anything else is
    delivered again later (every 2 s here, at most for two minutes); one in ten answered
    events is delivered a second time, as Stripe sometimes does."""
    sys.path.insert(0, str(ROOT))
    from kindly.payments.provider_events import sign

    line = Line(port)
    pace = Pace(60.0 / per_minute)
    rng = random.Random(run_id)
    n = 0
    while not stopping.is_set() and time.monotonic() < until and n < 100_000:
        pace.wait(stopping)
        n += 1
        event_id = f"evt_soak_{run_id}_{n}"
        session = {"id": f"cs_soak_{run_id}_{n}", "object": "checkout.session",
                   "payment_status": "paid", "amount_total": 1000 + n, "currency": "eur"}  # fmt: skip
        payload = json.dumps({"id": event_id, "type": "checkout.session.completed",
                              "data": {"object": session}}).encode()  # fmt: skip
        deliveries = 2 if rng.random() < 0.1 else 1
        deadline = time.monotonic() + 120
        for _ in range(deliveries):
            while time.monotonic() < deadline and not stopping.is_set():
                answer = line.request("POST", "/webhooks/stripe", payload,
                                      {"Content-Type": "application/json",
                                       "Stripe-Signature": sign(payload, secret)})  # fmt: skip
                hooks.statuses[answer[0] if answer else "none"] += 1
                if answer is not None and 200 <= answer[0] < 300:
                    hooks.answered.add(event_id)
                    hooks.unanswered.discard(event_id)
                    hooks.outcomes[json.loads(answer[2]).get("outcome")] += 1
                    break
                hooks.unanswered.add(event_id)
                stopping.wait(2.0)
    line.close()
