"""Provider events (Stripe's shape, also what the sandbox sends): verified, applied once.

Every event is applied at most once per (provider, event id), in the same transaction as
its effect, so a crash before commit lets the provider's retry apply it again. Events may
arrive twice, late or out of order: a success is final (`payments.settle_payment`), a
reversal only moves forward (`payments.record_reversal`), and a checkout's outcome is
reached whichever of its events comes first. A refund or dispute that arrives before any
event has tied its payment intent to a Kindly payment is refused with a 503 and not stored,
so the provider delivers it again once the payment is known, instead of it being lost.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kindly.errors import KindlyError, ServiceUnavailable
from kindly.payments import plans
from kindly.payments import service as payments
from kindly.payments.models import Payment, WebhookEvent

log = logging.getLogger(__name__)

CHECKOUT_OUTCOMES = {
    "checkout.session.completed": "succeeded",
    "checkout.session.async_payment_succeeded": "succeeded",
    "checkout.session.async_payment_failed": "failed",
    "checkout.session.expired": "canceled",  # an abandoned attempt
}
INTENT_OUTCOMES = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
}
REFUND_STATUS = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}
TOLERANCE_SECONDS = 300


class BadSignature(KindlyError):
    """A webhook whose signature is missing, wrong or too old."""


class PaymentNotYetKnown(ServiceUnavailable):
    """A refund or dispute of a payment intent no event has tied to a Kindly payment yet."""


def verify(payload: bytes, header: str | None, secret: str) -> dict[str, Any]:
    """The event, if Stripe's library accepts its signature; BadSignature otherwise."""
    import stripe

    try:
        event = json.loads(payload)
    except ValueError:
        raise BadSignature("not JSON") from None
    # before the library sees it: it takes any JSON for an object (a signed `null` was a 500)
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise BadSignature("not an event")
    try:
        stripe.Webhook.construct_event(payload, header or "", secret, TOLERANCE_SECONDS)
    except (ValueError, stripe.SignatureVerificationError):
        raise BadSignature("webhook signature rejected") from None
    return event


def sign(payload: bytes, secret: str, at: int | None = None) -> str:
    """A Stripe-Signature header (`t=…,v1=HMAC-SHA256`), as Stripe computes it."""
    timestamp = at or int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def sandbox_secret(secret_key: str) -> str:
    """The sandbox's webhook secret, derived from the app's secret key."""
    return "whsec_sbx_" + hmac.new(secret_key.encode(), b"sandbox-webhook", "sha256").hexdigest()


def receive(
    session: Session, provider: str, payload: bytes, header: str | None, secret: str
) -> str:
    """Verify and apply one delivery; return what became of it."""
    return apply(session, provider, verify(payload, header, secret))


def apply(session: Session, provider: str, event: dict[str, Any]) -> str:
    """Apply one verified event once; a repeated event id answers 'duplicate'."""
    event_id, type_ = str(event["id"]), str(event["type"])
    seen = select(WebhookEvent.id).where(
        WebhookEvent.provider == provider, WebhookEvent.event_id == event_id
    )
    if session.scalar(seen) is not None:
        return "duplicate"
    row = WebhookEvent(provider=provider, event_id=event_id, type=type_[:64], outcome="applying")
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return "duplicate"  # a concurrent delivery of the same event got there first
    obj = (event.get("data") or {}).get("object") or {}
    row.outcome = _dispatch(session, provider, type_, obj)
    session.flush()
    return row.outcome


def _dispatch(session: Session, provider: str, type_: str, obj: dict[str, Any]) -> str:
    if type_ in CHECKOUT_OUTCOMES:
        return _checkout(session, provider, type_, obj)
    if type_ in INTENT_OUTCOMES:
        return _intent(session, provider, type_, obj)
    if type_ in ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated"):
        return _refund(session, provider, obj)
    if type_ == "charge.refunded":
        outcomes = [
            _refund(session, provider, r) for r in (obj.get("refunds") or {}).get("data", [])
        ]
        return outcomes[-1] if outcomes else "ignored"
    if type_.startswith("charge.dispute."):
        return _dispute(session, provider, type_, obj)
    return "ignored"


def _by_metadata(session: Session, provider: str, obj: dict[str, Any]) -> Payment | None:
    raw = str((obj.get("metadata") or {}).get("kindly_payment") or "")
    if not raw.isdigit():
        return None
    payment = session.get(Payment, int(raw))
    return payment if payment is not None and payment.provider == provider else None


def _by_intent(session: Session, provider: str, intent_ref: str | None) -> Payment | None:
    if not intent_ref:
        return None
    return session.scalar(
        select(Payment).where(
            Payment.provider == provider,
            Payment.kind == "payment",
            (Payment.intent_ref == intent_ref) | (Payment.provider_ref == intent_ref),
        )
    )


def _same_money(payment: Payment, obj: dict[str, Any], amount_key: str) -> bool:
    """False when the provider names another currency or amount than the attempt."""
    currency = obj.get("currency")
    amount = obj.get(amount_key)
    if currency is not None and str(currency).upper() != payment.currency:
        return False
    return amount is None or int(amount) == payment.amount_minor


def _checkout(session: Session, provider: str, type_: str, obj: dict[str, Any]) -> str:
    payment = payments.find_payment(session, provider, str(obj.get("id", "")))
    payment = payment or _by_metadata(session, provider, obj)
    if payment is None:
        log.warning("%s names checkout %s that Kindly did not open", type_, obj.get("id"))
        return "ignored"
    if not _same_money(payment, obj, "amount_total"):
        log.error(
            "checkout %s: amount or currency differ from payment %s", obj.get("id"), payment.id
        )
        return "mismatch"
    if obj.get("payment_intent") and not payment.intent_ref:
        payment.intent_ref = str(obj["payment_intent"])
    if type_ == "checkout.session.completed":
        if obj.get("customer") and payment.instalment_id is not None:
            plans.remember_customer(session, payment, str(obj["customer"]))
        if obj.get("payment_status") not in ("paid", "no_payment_required"):
            return "pending"  # SEPA and other delayed methods: wait for async_payment_*
    outcome = CHECKOUT_OUTCOMES[type_]
    payments.settle_payment(session, payment, outcome, then=plans.instalment_settled)
    return outcome


def _intent(session: Session, provider: str, type_: str, obj: dict[str, Any]) -> str:
    payment = _by_intent(session, provider, obj.get("id")) or _by_metadata(session, provider, obj)
    if payment is None:
        return "ignored"
    if not _same_money(payment, obj, "amount"):
        log.error("intent %s: amount or currency differ from payment %s", obj.get("id"), payment.id)
        return "mismatch"
    payment.intent_ref = payment.intent_ref or str(obj.get("id"))
    outcome = INTENT_OUTCOMES[type_]
    payments.settle_payment(session, payment, outcome, then=plans.instalment_settled)
    return outcome


def _reversed(session: Session, provider: str, kind: str, obj: dict[str, Any]) -> Payment | None:
    """The payment a refund or dispute takes money from (None: it names none).

    Stripe does not keep its events in order: a refund can come before the payment's own
    events (which link the intent to the attempt) when those are being retried. Answering
    it "ignored" would store its id and lose the money for good; raising makes the web
    layer answer 503 and roll back, and Stripe retries it later, when the intent is known.
    """
    intent = obj.get("payment_intent")
    if not intent or not obj.get("id"):
        return None
    payment = _by_intent(session, provider, str(intent))
    if payment is None:
        raise PaymentNotYetKnown(
            f"{kind} {obj['id']} names payment intent {intent}, not linked to a payment yet: "
            "asking the provider to deliver it again"
        )
    return payment


def _refund(session: Session, provider: str, obj: dict[str, Any]) -> str:
    payment = _reversed(session, provider, "refund", obj)
    status = REFUND_STATUS.get(str(obj.get("status")), "pending")
    if payment is None:
        return "ignored"
    payments.record_reversal(session, payment, kind="refund", ref=str(obj["id"]),
                             amount_minor=int(obj["amount"]), currency=str(obj["currency"]),
                             status=status)  # fmt: skip
    return f"refund_{status}"


def _dispute(session: Session, provider: str, type_: str, obj: dict[str, Any]) -> str:
    """A dispute takes the money back only when lost; while open the claim counts as paid."""
    payment = _reversed(session, provider, "dispute", obj)
    if payment is None:
        return "ignored"
    state = str(obj.get("status", ""))
    if state == "lost":
        status = "succeeded"
    elif state == "won" or (type_ == "charge.dispute.closed" and state != "lost"):
        status = "canceled"
    else:
        status = "pending"
    payments.record_reversal(session, payment, kind="dispute", ref=str(obj["id"]),
                             amount_minor=int(obj["amount"]), currency=str(obj["currency"]),
                             status=status)  # fmt: skip
    return f"dispute_{status}"
