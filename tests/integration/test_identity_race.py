"""The identity check and the debtor's forms under parallel requests, on PostgreSQL through a
real threaded server: nothing is lost, nothing answers 500, no limit is out-run."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from kindly.campaigns.models import Debtor
from kindly.site.models import IdentityCheck
from tests.support.app import installed, load_campaign, make_settings
from web.debtor import limits

pytestmark = pytest.mark.integration

PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36"
DEBTORS = "\n".join(
    f"G-{n},Anna,Müller,EUR,100.00,2026-12-15,Stadtwerke GmbH,10115,1980-04-{n:02d},de-DE"
    for n in range(1, 9)
)
PORTFOLIO = (
    "reference,first_name,last_name,currency,amount_due,due_date,creditor,postal_code,"
    "birth_date,locale\n" + DEBTORS + "\n"
)


class Server:
    """The Flask app served by werkzeug, one thread per request, on a free port."""

    def __init__(self, context):
        from web import create_app

        app = create_app(context.settings, context=context)
        app.config["KINDLY_EVENT_WRITER"] = False
        self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def browser(self) -> requests.Session:
        """A browser of its own: its own cookie, so its own CSRF token."""
        session = requests.Session()
        session.headers["User-Agent"] = PHONE
        return session

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(params=["database", "redis"])
def served(request, tmp_path, postgres_url):
    """The front on PostgreSQL; rate limits counted in the database or in Redis."""
    env = {"KINDLY_DATABASE_URL": postgres_url}
    if request.param == "redis":
        env["KINDLY_REDIS_URL"] = request.getfixturevalue("redis_url")
    settings = make_settings(Path(tmp_path / "var"), **env)
    with installed(settings) as context:
        load_campaign(context, text=PORTFOLIO)
        with context.db.session() as session:
            campaign = session.scalar(select(Debtor)).campaign
            campaign.settings = {"identity_check": "birth_date"}
        server = Server(context)
        yield context, server
        server.stop()
        context.close()


def tokens(context) -> list[str]:
    with context.db.session() as session:
        return list(session.scalars(select(Debtor.token).order_by(Debtor.reference)))


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def answer(server: Server, browser: requests.Session, token: str, text: str, csrf_token: str):
    return browser.post(f"{server.url}/s/{token}/check",
                        data={"csrf_token": csrf_token, "answer": text},
                        allow_redirects=False)  # fmt: skip


def test_48_parallel_wrong_answers_are_each_counted_and_only_five_are_compared(served):
    context, server = served
    token = tokens(context)[0]
    owner = server.browser()  # the debtor, with the gate open before the storm
    owner_form = csrf(owner.get(f"{server.url}/s/{token}").text)

    def three_wrong(n: int) -> list[int]:
        browser = server.browser()
        form = csrf(browser.get(f"{server.url}/s/{token}").text)
        return [answer(server, browser, token, f"1990-01-{n:02d}", form).status_code
                for _ in range(3)]  # fmt: skip

    with ThreadPoolExecutor(16) as pool:
        statuses = [s for batch in pool.map(three_wrong, range(1, 17)) for s in batch]
    assert len(statuses) == 48
    assert set(statuses) <= {400, 429}, statuses  # never a 500
    with context.db.session() as session:
        state = session.get(IdentityCheck, session.scalar(select(Debtor.id).limit(1)))
        # every compared answer was counted: four said "try again", the fifth locked
        assert statuses.count(400) == 4
        assert (state.total_failures, state.locks, state.failures) == (5, 1, 0)
    gate = server.browser().get(f"{server.url}/s/{token}")
    assert gate.status_code == 429 and "für 15 Minuten gesperrt" in gate.text
    # the right answer is refused too while the lock lasts
    assert answer(server, owner, token, "1980-04-01", owner_form).status_code == 429


def test_wrong_answers_from_one_address_are_limited_across_links(served):
    context, server = served
    links = tokens(context)
    browser = server.browser()
    form = csrf(browser.get(f"{server.url}/s/{links[0]}").text)
    limit = limits.CHECK_PER_ADDRESS.hits

    def wrong(n: int) -> int:  # four per link: no link reaches its own lock
        return answer(server, browser, links[n % 8], "1990-01-01", form).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(wrong, range(limit + 8)))
    assert sorted(statuses) == [400] * limit + [429] * 8, statuses
    refused = answer(server, browser, links[5], "1990-01-01", form)
    assert refused.status_code == 429
    assert "zu viele Anfragen" in refused.text and "Minuten erneut" in refused.text
    with context.db.session() as session:
        counted = session.scalar(select(func.sum(IdentityCheck.total_failures)))
        assert counted == limit  # the refused ones were never compared
    # past the limit even a right answer waits: comparing it is what the limit withholds
    assert answer(server, browser, links[7], "1980-04-08", form).status_code == 429


class Stripe(BaseHTTPRequestHandler):
    """Stripe's API as far as a checkout session goes; counts the sessions opened."""

    opened: ClassVar[list[str]] = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        Stripe.opened.append(self.path)
        n = len(Stripe.opened)
        body = json.dumps({"id": f"cs_test_{n:04d}", "object": "checkout.session",
                           "url": f"https://checkout.stripe.com/c/pay/cs_test_{n:04d}",
                           "payment_status": "unpaid", "status": "open"}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stripe_served(tmp_path, postgres_url):
    """The front on PostgreSQL with Stripe pointed at a stub; no identity check."""
    Stripe.opened = []
    stub = ThreadingHTTPServer(("127.0.0.1", 0), Stripe)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    settings = make_settings(
        Path(tmp_path / "var"),
        KINDLY_DATABASE_URL=postgres_url,
        KINDLY_STRIPE_SECRET_KEY="sk_test_kindly",
        KINDLY_STRIPE_WEBHOOK_SECRET="whsec_test",
        KINDLY_STRIPE_API_BASE=f"http://127.0.0.1:{stub.server_address[1]}",
    )
    with installed(settings) as context:
        load_campaign(context, text=PORTFOLIO)
        server = Server(context)
        yield context, server
        server.stop()
        context.close()
    stub.shutdown()
    stub.server_close()


def test_parallel_pay_posts_open_no_more_checkouts_than_the_link_allows(stripe_served):
    context, server = stripe_served
    token = tokens(context)[0]
    browser = server.browser()
    form = csrf(browser.get(f"{server.url}/s/{token}/pay").text)

    def pay(_: int) -> int:
        return browser.post(f"{server.url}/s/{token}/pay", data={"csrf_token": form},
                            allow_redirects=False).status_code  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(pay, range(30)))
    allowed = limits.FORM_PER_LINK.hits
    assert sorted(statuses) == [303] * allowed + [429] * (30 - allowed), statuses
    assert Stripe.opened == ["/v1/checkout/sessions"] * allowed
    refused = browser.post(f"{server.url}/s/{token}/pay", data={"csrf_token": form},
                           allow_redirects=False)  # fmt: skip
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Bitte warten Sie einen Moment" in refused.text
    assert "Traceback" not in refused.text
