"""Stripe webhooks replayed, reordered and duplicated: once every event has arrived, the
ledger is what it is after one delivery of each in order.

A realistic history of signed deliveries for four debtors (EUR and JPY: a declined card and
a success on the same intent, an abandoned attempt, a SEPA payment settled later, refunds,
a lost and a won dispute) is posted to the real endpoint on PostgreSQL, once in order for a
snapshot, then in random orders with random repeats and late copies. A delivery answered
with anything but 2xx is delivered again later, as Stripe does.
"""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from kindly import context as context_module
from kindly.campaigns.models import Campaign, Debtor
from kindly.claims import balance as claims_balance
from kindly.context import Context
from kindly.payments import ledger
from kindly.payments import service as payments
from kindly.payments.models import Payment, WebhookEvent
from kindly.payments.provider_events import sign
from kindly.reporting.metrics import campaign_stats
from kindly.tracking.models import Event
from tests.integration.test_stripe_payments import Stub
from tests.support.app import load_campaign, make_settings

pytestmark = pytest.mark.integration
SECRET = "whsec_replay_drill_0123456789"
PORTFOLIO = """reference,last_name,locale,currency,amount_due,due_date,creditor
E-1,Müller,de-DE,EUR,1234.56,2026-12-15,Stadtwerke
E-2,Rossi,it-IT,EUR,42.00,2026-12-15,Acqua Roma
J-1,Tanaka,en-GB,JPY,125000,2026-12-01,Tokyo Gas
J-2,Sato,en-GB,JPY,8000,2026-12-01,Tokyo Gas
"""
# (debtor, amount in minor units): the checkouts opened, in this order (cs_test_0001…)
ATTEMPTS = [("E-1", 123456), ("E-2", 4200), ("E-2", 4200), ("J-1", 25000), ("J-2", 8000)]


def _session(n: int, amount: int, currency: str, status: str = "paid") -> dict:
    cs = f"cs_test_{n:04d}"
    return {"id": cs, "object": "checkout.session", "payment_status": status,
            "amount_total": amount, "currency": currency, "payment_intent": f"pi_{cs}"}  # fmt: skip


def _intent(n: int, amount: int, currency: str, payment_id: int) -> dict:
    return {"id": f"pi_cs_test_{n:04d}", "object": "payment_intent", "amount": amount,
            "currency": currency, "metadata": {"kindly_payment": str(payment_id)}}  # fmt: skip


def _reversal(kind: str, ref: str, n: int, amount: int, currency: str, status: str) -> dict:
    return {"id": ref, "object": kind, "amount": amount, "currency": currency,
            "payment_intent": f"pi_cs_test_{n:04d}", "status": status}  # fmt: skip


def history() -> list[tuple[str, str, dict]]:
    """Every (event id, type, object) Stripe sends for the attempts, in the order it happens."""
    eur, jpy = "eur", "jpy"
    e1, e2a, e2b, j1, j2 = 1, 2, 3, 4, 5  # attempt number = payment id = checkout number
    return [
        # E-1: the first card is declined, the second succeeds on the same intent
        ("evt_e1_fail", "payment_intent.payment_failed", _intent(e1, 123456, eur, e1)),
        ("evt_e1_pi", "payment_intent.succeeded", _intent(e1, 123456, eur, e1)),
        ("evt_e1_cs", "checkout.session.completed", _session(e1, 123456, eur)),
        # … then part of it is refunded and a dispute of another part is lost
        ("evt_e1_r1", "refund.created", _reversal("refund", "re_e1", e1, 23456, eur, "pending")),
        ("evt_e1_r2", "refund.updated", _reversal("refund", "re_e1", e1, 23456, eur, "succeeded")),
        ("evt_e1_d1", "charge.dispute.created",
         _reversal("dispute", "dp_e1", e1, 50000, eur, "needs_response")),
        ("evt_e1_d2", "charge.dispute.closed",
         _reversal("dispute", "dp_e1", e1, 50000, eur, "lost")),
        # E-2: a declined card, the session abandoned; then SEPA, settled days later
        ("evt_e2a_fail", "payment_intent.payment_failed", _intent(e2a, 4200, eur, e2a)),
        ("evt_e2a_exp", "checkout.session.expired", _session(e2a, 4200, eur, "unpaid")),
        ("evt_e2b_cs", "checkout.session.completed", _session(e2b, 4200, eur, "unpaid")),
        ("evt_e2b_ok", "checkout.session.async_payment_succeeded", _session(e2b, 4200, eur)),
        # J-1: a part payment in yen, partly refunded, a dispute the creditor wins
        ("evt_j1_pi", "payment_intent.succeeded", _intent(j1, 25000, jpy, j1)),
        ("evt_j1_cs", "checkout.session.completed", _session(j1, 25000, jpy)),
        ("evt_j1_ref", "charge.refunded",
         {"id": "ch_j1", "object": "charge", "payment_intent": f"pi_cs_test_{j1:04d}",
          "refunds": {"data": [_reversal("refund", "re_j1", j1, 5000, jpy, "succeeded")]}}),
        ("evt_j1_d1", "charge.dispute.created",
         _reversal("dispute", "dp_j1", j1, 20000, jpy, "warning_needs_response")),
        ("evt_j1_d2", "charge.dispute.closed", _reversal("dispute", "dp_j1", j1, 20000, jpy, "won")),
        # J-2: paid in full
        ("evt_j2_cs", "checkout.session.completed", _session(j2, 8000, jpy)),
        ("evt_j2_pi", "payment_intent.succeeded", _intent(j2, 8000, jpy, j2)),
    ]  # fmt: skip


HISTORY = history()


def _ended(kind: str, status: str) -> str:
    """Only a success is final (docs/payments.md): between a declined card and an expired
    session the later delivery names how the attempt ended, and neither counts money."""
    return "ended" if kind == "payment" and status in ("failed", "canceled") else status


class Drill:
    """The app on PostgreSQL with Stripe's API stubbed; `reset()` empties the database."""

    def __init__(self, context: Context, client, api_base: str):
        self.context, self.client, self.api_base = context, client, api_base

    def reset(self) -> None:
        """A fresh database (every table emptied, ids from 1) with the checkouts opened."""
        Stub.requests, Stub.declines, Stub.answered = [], [], {}
        with self.context.db.session() as session:
            tables = session.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                     "AND tablename <> 'alembic_version'")
            ).all()  # fmt: skip
            session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        load_campaign(self.context, slug="replay", text=PORTFOLIO)
        provider = payments.StripeProvider("sk_test_kindly", self.api_base)
        with self.context.db.session() as session:
            for reference, amount in ATTEMPTS:
                debtor = session.scalar(select(Debtor).where(Debtor.reference == reference))
                payments.start_payment(session, debtor, provider, amount_minor=amount,
                                       base_url="https://pay.example.org",
                                       decided_methods=None,
                                       balance_minor=claims_balance.balance_minor(session, debtor))  # fmt: skip
        with self.context.db.session() as session:
            opened = session.execute(select(Payment.id, Payment.provider_ref).order_by(Payment.id))
            assert [tuple(r) for r in opened] == [
                (n, f"cs_test_{n:04d}") for n in range(1, len(ATTEMPTS) + 1)
            ]

    def deliver(self, event_id: str, type_: str, obj: dict) -> int:
        """POST one signed delivery; the HTTP status Stripe would see."""
        payload = json.dumps({"id": event_id, "object": "event", "type": type_,
                              "data": {"object": obj}}).encode()  # fmt: skip
        response = self.client.post(
            "/webhooks/stripe", data=payload, content_type="application/json",
            headers={"Stripe-Signature": sign(payload, SECRET)},
        )  # fmt: skip
        return response.status_code

    def replay(self, deliveries: list[int]) -> int:
        """Deliver HISTORY[i] for each i; a non-2xx answer is delivered again at the end."""
        queue, retries = list(deliveries), 0
        while queue:
            index = queue.pop(0)
            status = self.deliver(*HISTORY[index])
            if not 200 <= status < 300:
                assert status == 503, f"{HISTORY[index][0]} answered {status}"
                retries += 1
                assert retries <= 10 * len(HISTORY), "a delivery is refused for ever"
                queue.append(index)
        return retries

    def ledger(self) -> dict:
        """What a person checks: each payment row, balances, the funnel and money collected."""
        with self.context.db.session() as session:
            rows = session.execute(
                select(Payment.provider_ref, Payment.kind, Payment.status, Payment.amount_minor,
                       Payment.currency).order_by(Payment.provider_ref)
            ).all()  # fmt: skip
            debtors = session.scalars(select(Debtor).order_by(Debtor.reference)).all()
            stats = campaign_stats(session, session.scalar(select(Campaign)))
            paid_events = session.scalar(select(func.count()).where(Event.type == "paid"))
            applied = session.scalars(select(WebhookEvent.event_id)).all()
            return {
                "payments": [
                    (ref, kind, _ended(kind, status), amount, currency)
                    for ref, kind, status, amount, currency in rows
                ],
                "balances": {
                    d.reference: claims_balance.balance_minor(session, d) for d in debtors
                },
                "paid_minor": {d.reference: ledger.paid_minor(session, d) for d in debtors},
                "payment_started": stats["funnel"]["payment_started"],
                "paid": stats["funnel"]["paid"],
                "paid_events": paid_events,
                "collected": stats["collected"],
                "applied": sorted(applied),
            }


@pytest.fixture
def drill(tmp_path, postgres_url):
    from web import create_app

    Stub.requests, Stub.declines, Stub.answered = [], [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings_ = make_settings(
        Path(tmp_path / "var"),
        KINDLY_DATABASE_URL=postgres_url,
        KINDLY_STRIPE_SECRET_KEY="sk_test_kindly",
        KINDLY_STRIPE_WEBHOOK_SECRET=SECRET,
        KINDLY_STRIPE_API_BASE=f"http://127.0.0.1:{server.server_address[1]}",
    )
    context = Context(settings_)
    context.db.migrate()
    context_module.use(context)
    app = create_app(settings_, context=context)
    app.config["TESTING"] = True
    yield Drill(context, app.test_client(), settings_.stripe_api_base)
    context_module.use(None)
    server.shutdown()
    server.server_close()
    context.close()


EXPECTED = {
    "payments": [
        ("cs_test_0001", "payment", "succeeded", 123456, "EUR"),
        ("cs_test_0002", "payment", "ended", 4200, "EUR"),
        ("cs_test_0003", "payment", "succeeded", 4200, "EUR"),
        ("cs_test_0004", "payment", "succeeded", 25000, "JPY"),
        ("cs_test_0005", "payment", "succeeded", 8000, "JPY"),
        ("dp_e1", "dispute", "succeeded", -50000, "EUR"),  # lost: the money went back
        ("dp_j1", "dispute", "canceled", -20000, "JPY"),  # won: nothing went back
        ("re_e1", "refund", "succeeded", -23456, "EUR"),
        ("re_j1", "refund", "succeeded", -5000, "JPY"),
    ],
    "balances": {"E-1": 73456, "E-2": 0, "J-1": 105000, "J-2": 0},
    "paid_minor": {"E-1": 50000, "E-2": 4200, "J-1": 20000, "J-2": 8000},
    "payment_started": 4,
    "paid": 4,
    "paid_events": 4,
    "collected": {"EUR": "542.00", "JPY": "28000"},
    "applied": sorted(event_id for event_id, _, _ in HISTORY),
}


def test_the_history_in_order_gives_the_expected_ledger(drill):
    drill.reset()
    assert drill.replay(list(range(len(HISTORY)))) == 0
    assert drill.ledger() == EXPECTED


@st.composite
def deliveries(draw) -> list[int]:
    """Every event at least once, in any order, some of them again anywhere (late too)."""
    order = draw(st.permutations(range(len(HISTORY))))
    extra = draw(st.lists(st.integers(0, len(HISTORY) - 1), max_size=8))
    out = list(order)
    for index in extra:
        out.insert(draw(st.integers(0, len(out))), index)
    return out


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(order=deliveries())
def test_replayed_reordered_and_repeated_webhooks_leave_the_same_ledger(drill, order):
    drill.reset()  # each example on an empty database: the fixture's is shared
    drill.replay(order)
    assert drill.ledger() == EXPECTED


def test_a_refund_before_its_payment_is_refused_until_the_payment_is_known(drill):
    drill.reset()
    refund = next(h for h in HISTORY if h[0] == "evt_e1_r2")
    # Stripe is still retrying the payment's own events: the refund must not be lost
    assert drill.deliver(*refund) == 503
    with drill.context.db.session() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    assert drill.deliver(*next(h for h in HISTORY if h[0] == "evt_e1_cs")) == 200
    assert drill.deliver(*refund) == 200  # Stripe's retry
    assert drill.ledger()["paid_minor"]["E-1"] == 123456 - 23456
