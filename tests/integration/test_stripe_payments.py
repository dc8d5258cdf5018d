"""Stripe, exactly once: part payments, out-of-order and repeated webhooks, refunds,
disputes, currencies, and a plan collected off-session — against a local API stub."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.claims import balance as claims_balance
from kindly.payments import plans
from kindly.payments import service as payments
from kindly.payments.models import Payment, Plan, WebhookEvent
from kindly.payments.provider_events import sign
from kindly.reporting.metrics import campaign_stats
from tests.support.app import front_client, installed, load_campaign, make_settings

pytestmark = pytest.mark.integration
SECRET = "whsec_test_payments_0123456789"
JPY = """reference,last_name,locale,currency,amount_due,due_date,creditor
J-1,Tanaka,en-GB,JPY,125000,2026-12-01,Tokyo Gas
"""


class Stub(BaseHTTPRequestHandler):
    """Checkout Sessions and PaymentIntents the way Stripe answers them."""

    requests: ClassVar[list[dict]] = []
    declines: ClassVar[list[bool]] = []
    answered: ClassVar[dict[str, tuple[int, dict]]] = {}

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        intent = self.path.split("?")[0].rsplit("/", 1)[-1]
        pm = {"id": "pm_card_saved", "object": "payment_method", "type": "card"}
        self._send(200, {"id": intent, "object": "payment_intent", "payment_method": pm})

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = {k: v[0] for k, v in parse_qs(body).items()}
        key = self.headers.get("Idempotency-Key") or ""
        if key in Stub.answered:  # Stripe replays the first answer for a repeated key
            self._send(*Stub.answered[key])
            return
        Stub.requests.append({"path": self.path, "form": form, "idempotency": key})
        n = len(Stub.requests)
        if self.path == "/v1/checkout/sessions":
            answer = (200, {"id": f"cs_test_{n:04d}", "object": "checkout.session",
                            "url": f"https://checkout.stripe.com/c/pay/cs_test_{n:04d}",
                            "payment_status": "unpaid", "status": "open"})  # fmt: skip
        elif Stub.declines and Stub.declines.pop(0):
            error = {"type": "card_error", "code": "card_declined", "message": "declined",
                     "payment_intent": {"id": f"pi_test_{n:04d}", "object": "payment_intent",
                                        "status": "requires_payment_method"}}  # fmt: skip
            answer = (402, {"error": error})
        else:
            answer = (200, {"id": f"pi_test_{n:04d}", "object": "payment_intent",
                            "status": "succeeded", "amount": int(form["amount"]),
                            "currency": form["currency"]})  # fmt: skip
        Stub.answered[key] = answer
        self._send(*answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def stripe(tmp_path):

    Stub.requests, Stub.declines, Stub.answered = [], [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = make_settings(
        tmp_path / "var",
        KINDLY_STRIPE_SECRET_KEY="sk_test_kindly",
        KINDLY_STRIPE_WEBHOOK_SECRET=SECRET,
        KINDLY_STRIPE_API_BASE=f"http://127.0.0.1:{server.server_address[1]}",
    )
    with installed(settings) as context:
        load_campaign(context)
        yield context, front_client(context, user_agent="Mozilla/5.0 (Android 14) Mobile Safari")
    server.shutdown()
    server.server_close()


def token(context, reference: str) -> str:
    with context.db.session() as session:
        return session.scalar(select(Debtor.token).where(Debtor.reference == reference))


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def pay(client, tok: str, **form):
    page = client.get(f"/s/{tok}/pay").get_data(as_text=True)
    return client.post(f"/s/{tok}/pay", data={"csrf_token": csrf(page), **form})


def deliver(client, event_id: str, type_: str, obj: dict, *, header=None):
    payload = json.dumps({"id": event_id, "object": "event", "type": type_,
                          "data": {"object": obj}}).encode()  # fmt: skip
    return client.post("/webhooks/stripe", data=payload, content_type="application/json",
                       headers={"Stripe-Signature": header or sign(payload, SECRET)})  # fmt: skip


def session_obj(cs: str, amount: int, currency: str = "eur", **extra) -> dict:
    return {"id": cs, "object": "checkout.session", "payment_status": "paid",
            "amount_total": amount, "currency": currency, "payment_intent": f"pi_{cs}", **extra}  # fmt: skip


def stats(context) -> dict:
    with context.db.session() as session:
        return campaign_stats(session, session.scalar(select(Campaign)))


def balance(context, reference: str) -> int:
    with context.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == reference))
        return claims_balance.balance_minor(session, debtor)


def test_part_payment_above_the_minimum_and_refusals_outside_it(stripe):
    context, client = stripe
    tok = token(context, "A-1")
    over = pay(client, tok, choice="part", amount="1234,57")
    assert over.status_code == 422
    assert "nicht mehr zahlen, als noch offen ist: 1.234,56\xa0€" in over.get_data(as_text=True)
    under = pay(client, tok, choice="part", amount="9,99")
    assert under.status_code == 422
    assert "ist 10,00\xa0€" in under.get_data(as_text=True)
    assert Stub.requests == []
    part = pay(client, tok, choice="part", amount="1.000,00")
    assert part.headers["Location"] == "https://checkout.stripe.com/c/pay/cs_test_0001"
    form = Stub.requests[0]["form"]
    assert form["line_items[0][price_data][unit_amount]"] == "100000"
    assert form["payment_intent_data[metadata][kindly_payment]"] == form["metadata[kindly_payment]"]
    assert form["locale"] == "de"
    deliver(client, "evt_1", "checkout.session.completed", session_obj("cs_test_0001", 100000))
    assert balance(context, "A-1") == 23456
    assert stats(context)["collected"] == {"EUR": "1000.00"}
    # what is left is less than the minimum: paying all of it is still possible
    rest = pay(client, tok, choice="part", amount="234.56")
    assert rest.status_code == 303
    with context.db.session() as session:
        assert session.scalar(select(Payment.amount_minor).where(Payment.id == 2)) == 23456


def test_each_event_counts_once_whatever_the_order_and_repeats(stripe):
    context, client = stripe
    tok = token(context, "A-1")
    pay(client, tok)
    with context.db.session() as session:
        payment_id = session.scalar(select(Payment.id))
    intent = {"id": "pi_cs_test_0001", "object": "payment_intent", "amount": 123456,
              "currency": "eur", "metadata": {"kindly_payment": str(payment_id)}}  # fmt: skip
    # the intent's success arrives before the session's, before the debtor is back
    assert (
        deliver(client, "evt_a", "payment_intent.succeeded", intent).json["outcome"] == "succeeded"
    )
    assert (
        deliver(client, "evt_a", "payment_intent.succeeded", intent).json["outcome"] == "duplicate"
    )
    done = session_obj("cs_test_0001", 123456)
    for _ in range(2):
        deliver(client, "evt_b", "checkout.session.completed", done)
    # late and contradicting: an expiry and a failure never undo the success
    deliver(client, "evt_c", "checkout.session.expired", {**done, "payment_status": "unpaid"})
    deliver(client, "evt_d", "payment_intent.payment_failed", intent)
    page = client.get(f"/s/{tok}?payment=succeeded").get_data(as_text=True)
    assert "Ihre Zahlung über 1.234,56\xa0€ ist eingegangen" in page
    numbers = stats(context)
    assert numbers["collected"] == {"EUR": "1234.56"}
    assert (numbers["funnel"]["payment_started"], numbers["funnel"]["paid"]) == (1, 1)
    with context.db.session() as session:
        assert session.scalar(select(Payment.status)) == "succeeded"
        assert len(session.scalars(select(WebhookEvent)).all()) == 4


def test_tampered_payload_gets_400_and_changes_nothing(stripe):
    context, client = stripe
    pay(client, token(context, "A-1"))
    honest = json.dumps({"id": "evt_x", "type": "checkout.session.completed",
                         "data": {"object": session_obj("cs_test_0001", 1)}}).encode()  # fmt: skip
    forged = deliver(client, "evt_x", "checkout.session.completed",
                     session_obj("cs_test_0001", 123456), header=sign(honest, SECRET))  # fmt: skip
    assert forged.status_code == 400
    assert stats(context)["collected"] == {}


def test_expired_session_is_an_abandoned_attempt(stripe):
    context, client = stripe
    pay(client, token(context, "A-2"))
    obj = session_obj("cs_test_0001", 8990, "gbp", payment_status="unpaid")
    assert deliver(client, "evt_e", "checkout.session.expired", obj).json["outcome"] == "canceled"
    with context.db.session() as session:
        assert session.scalar(select(Payment.status)) == "canceled"
    numbers = stats(context)["funnel"]
    assert (numbers["payment_started"], numbers["paid"], numbers["collected"]) == (1, 0, {})


def test_other_currency_or_amount_is_not_counted(stripe):
    context, client = stripe
    pay(client, token(context, "A-1"))
    wrong = session_obj("cs_test_0001", 123456, "usd")
    assert (
        deliver(client, "evt_m", "checkout.session.completed", wrong).json["outcome"] == "mismatch"
    )
    assert stats(context)["collected"] == {}


def test_refunds_and_lost_disputes_take_money_back_once(stripe):
    context, client = stripe
    pay(client, token(context, "A-1"))
    deliver(client, "evt_1", "checkout.session.completed", session_obj("cs_test_0001", 123456))
    refund = {"id": "re_1", "object": "refund", "amount": 23456, "currency": "eur",
              "payment_intent": "pi_cs_test_0001", "status": "succeeded"}  # fmt: skip
    # succeeded arrives before created (pending): the late pending changes nothing
    deliver(client, "evt_r2", "refund.updated", refund)
    deliver(client, "evt_r1", "refund.created", {**refund, "status": "pending"})
    deliver(client, "evt_r2", "refund.updated", refund)
    assert stats(context)["collected"] == {"EUR": "1000.00"}
    assert balance(context, "A-1") == 23456
    dispute = {"id": "dp_1", "object": "dispute", "amount": 50000, "currency": "eur",
               "payment_intent": "pi_cs_test_0001", "status": "needs_response"}  # fmt: skip
    deliver(client, "evt_d1", "charge.dispute.created", dispute)
    assert stats(context)["collected"] == {"EUR": "1000.00"}  # open: still counted as paid
    deliver(client, "evt_d2", "charge.dispute.closed", {**dispute, "status": "lost"})
    deliver(client, "evt_d3", "charge.dispute.updated", dispute)  # late, older news
    assert stats(context)["collected"] == {"EUR": "500.00"}
    assert balance(context, "A-1") == 73456
    page = client.get(f"/s/{token(context, 'A-1')}").get_data(as_text=True)
    # the case is partly paid again: the page asks for what is open (kindly.cases)
    assert 'data-amount="73456"' in page and "734,56\xa0€" in page


def test_a_won_dispute_keeps_the_money(stripe):
    context, client = stripe
    pay(client, token(context, "A-1"))
    deliver(client, "evt_1", "checkout.session.completed", session_obj("cs_test_0001", 123456))
    dispute = {"id": "dp_2", "object": "dispute", "amount": 123456, "currency": "eur",
               "payment_intent": "pi_cs_test_0001", "status": "won"}  # fmt: skip
    deliver(client, "evt_d", "charge.dispute.closed", dispute)
    assert stats(context)["collected"] == {"EUR": "1234.56"}


def test_yen_have_no_minor_unit(stripe):
    context, client = stripe
    load_campaign(context, slug="tokyo", text=JPY)
    tok = token(context, "J-1")
    assert pay(client, tok, choice="part", amount="999").status_code == 422  # below ¥1,000
    pay(client, tok, choice="part", amount="25000")
    form = Stub.requests[0]["form"]
    assert (
        form["line_items[0][price_data][unit_amount]"],
        form["line_items[0][price_data][currency]"],
    ) == ("25000", "jpy")
    deliver(
        client, "evt_j", "checkout.session.completed", session_obj("cs_test_0001", 25000, "jpy")
    )
    with context.db.session() as session:
        tokyo = session.scalar(select(Campaign).where(Campaign.slug == "tokyo"))
        assert campaign_stats(session, tokyo)["collected"] == {"JPY": "25000"}
    assert balance(context, "J-1") == 100000


def agree_plan(client, tok: str, instalments: int) -> None:
    page = client.get(f"/s/{tok}/plan").get_data(as_text=True)
    shown = client.post(f"/s/{tok}/plan", data={"csrf_token": csrf(page), "show": "1",
                                                 "instalments": str(instalments)})  # fmt: skip
    review = client.get(shown.headers["Location"]).get_data(as_text=True)
    assert review.count("data-instalment=") == instalments
    agreed = client.post(f"/s/{tok}/plan", data={"csrf_token": csrf(review), "agree": "1",
                                                  "instalments": str(instalments)})  # fmt: skip
    assert agreed.headers["Location"] == f"/s/{tok}/plan/agreed"


def run_months(context, months: int, start: dt.date) -> list[plans.Collection]:
    provider = payments.StripeProvider("sk_test_kindly", context.settings.stripe_api_base)
    out = []
    for day in range(0, months * 31 + 10):
        with context.db.session() as session:
            out.append(plans.collect_due(session, provider, start + dt.timedelta(days=day)))
    return out


def test_six_monthly_instalments_run_to_completion_with_one_failure_and_a_retry(stripe):
    context, client = stripe
    tok = token(context, "A-1")
    agree_plan(client, tok, 6)
    first = client.post(f"/s/{tok}/pay", data={
        "csrf_token": csrf(client.get(f"/s/{tok}/plan/agreed").get_data(as_text=True)),
        "instalment": "1"})  # fmt: skip
    assert first.status_code == 303
    form = Stub.requests[0]["form"]
    assert form["payment_intent_data[setup_future_usage]"] == "off_session"
    assert form["customer_creation"] == "always"
    assert form["line_items[0][price_data][unit_amount]"] == "20576"
    done = session_obj("cs_test_0001", 20576, customer="cus_1")
    deliver(client, "evt_p1", "checkout.session.completed", done)
    Stub.declines = [False, True, False]  # instalment 2 ok, 3 declined once, then retried
    start = dt.date.today()
    collections = run_months(context, 6, start)
    charges = [r for r in Stub.requests if r["path"] == "/v1/payment_intents"]
    assert len(charges) == 6  # five instalments plus one retry
    assert [c["form"]["amount"] for c in charges] == ["20576"] * 5 + ["20576"]
    assert (
        charges[0]["form"]["off_session"] == "true"
        and charges[0]["form"]["payment_method"] == "pm_card_saved"
    )
    assert sum(c.failed for c in collections) == 1
    with context.db.session() as session:
        plan = session.scalar(select(Plan))
        assert plan.status == "completed"
        assert [i.amount_minor for i in plan.instalments] == [20576] * 6
        assert plan.instalments[2].attempts == 2
    numbers = stats(context)
    assert numbers["collected"] == {"EUR": "1234.56"}
    assert (numbers["funnel"]["plan_agreed"], numbers["funnel"]["paid"]) == (1, 1)
    assert balance(context, "A-1") == 0
    # running the scheduler again charges nothing more
    run_months(context, 1, start)
    assert len([r for r in Stub.requests if r["path"] == "/v1/payment_intents"]) == 6


def test_two_misses_in_a_row_break_the_plan_and_return_the_case(stripe):
    context, client = stripe
    tok = token(context, "A-1")
    agree_plan(client, tok, 6)
    client.post(f"/s/{tok}/pay", data={
        "csrf_token": csrf(client.get(f"/s/{tok}/plan/agreed").get_data(as_text=True)),
        "instalment": "1"})  # fmt: skip
    deliver(
        client,
        "evt_p1",
        "checkout.session.completed",
        session_obj("cs_test_0001", 20576, customer="cus_1"),
    )
    Stub.declines = [False, True, True]
    run_months(context, 6, dt.date.today())
    with context.db.session() as session:
        plan = session.scalar(select(Plan))
        assert plan.status == "broken"
        assert [i.status for i in plan.instalments] == [
            "paid",
            "paid",
            "canceled",
            "canceled",
            "canceled",
            "canceled",
        ]
    assert balance(context, "A-1") == 123456 - 2 * 20576
    assert stats(context)["collected"] == {"EUR": "411.52"}
    # back in the normal flow: the microsite offers paying and a new plan again
    assert client.get(f"/s/{tok}/plan").status_code == 200
