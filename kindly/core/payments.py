"""Payments: a provider interface, the sandbox and Stripe, and exactly-once settlement."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.core import events, ledger
from kindly.core.errors import KindlyError
from kindly.core.models import Debtor, Payment
from kindly.core.money import from_minor

OUTCOMES = ("succeeded", "failed", "canceled")


class PaymentError(KindlyError):
    """A payment cannot be started or settled as asked."""


@dataclass(frozen=True)
class CheckoutRequest:
    """What a provider needs to open a checkout for one attempt."""

    debtor_id: int
    campaign_id: int
    reference: str
    amount_minor: int
    currency: str
    description: str
    success_url: str
    cancel_url: str
    idempotency_key: str


@dataclass(frozen=True)
class Checkout:
    """The provider's answer: its id for the attempt and where to send the debtor."""

    provider_ref: str
    redirect_url: str


class PaymentProvider(Protocol):
    """A place where a debtor can pay."""

    name: str

    def create_checkout(self, request: CheckoutRequest) -> Checkout: ...


class SandboxProvider:
    """A clearly marked test checkout served by Kindly itself; no money moves."""

    name = "sandbox"

    def __init__(self, base_url: str):
        self.base_url = base_url

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        """A new sandbox attempt with its own unguessable id."""
        ref = "sbx_" + secrets.token_urlsafe(18)
        return Checkout(ref, f"{self.base_url}/sandbox/checkout/{ref}")


class StripeProvider:
    """Stripe Checkout, one session per attempt."""

    name = "stripe"

    def __init__(self, secret_key: str, api_base: str | None = None):
        import stripe

        options = {"base_addresses": {"api": api_base}} if api_base else {}
        self.client = stripe.StripeClient(secret_key, max_network_retries=2, **options)

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        """Create a Checkout Session in payment mode for the exact amount."""
        import stripe

        try:
            session = self.client.v1.checkout.sessions.create(
                params={
                    "mode": "payment",
                    "line_items": [
                        {
                            "quantity": 1,
                            "price_data": {
                                "currency": request.currency.lower(),
                                "unit_amount": request.amount_minor,
                                "product_data": {"name": request.description},
                            },
                        }
                    ],
                    "success_url": request.success_url,
                    "cancel_url": request.cancel_url,
                    "client_reference_id": str(request.debtor_id),
                    "metadata": {
                        "debtor_id": str(request.debtor_id),
                        "campaign_id": str(request.campaign_id),
                    },
                },
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as exc:
            raise PaymentError(f"Stripe refused the checkout: {exc.user_message or exc}") from None
        return Checkout(session.id, session.url or "")


def start_payment(
    session: Session,
    debtor: Debtor,
    provider: PaymentProvider,
    *,
    base_url: str,
    amount_minor: int | None = None,
    channel: str | None = None,
) -> tuple[Payment, str]:
    """Open a checkout for the balance (or part of it) and record `payment_started`."""
    balance = ledger.balance_minor(session, debtor)
    if balance <= 0:
        raise PaymentError("nothing is owed any more")
    amount = balance if amount_minor is None else amount_minor
    if amount <= 0 or amount > balance:
        raise PaymentError("the amount must be more than zero and at most the open balance")
    site = f"{base_url}/s/{debtor.token}"
    creditor = debtor.creditor or debtor.campaign.creditor or ""
    attempt = secrets.token_hex(8)
    checkout = provider.create_checkout(
        CheckoutRequest(
            debtor_id=debtor.id,
            campaign_id=debtor.campaign_id,
            reference=debtor.reference,
            amount_minor=amount,
            currency=debtor.currency,
            description=f"{creditor} {debtor.reference}".strip(),
            success_url=f"{site}?payment=succeeded",
            cancel_url=f"{site}?payment=canceled",
            idempotency_key=f"kindly-{debtor.id}-{attempt}",
        )
    )
    payment = Payment(
        campaign_id=debtor.campaign_id,
        debtor_id=debtor.id,
        provider=provider.name,
        provider_ref=checkout.provider_ref,
        amount_minor=amount,
        currency=debtor.currency,
        status="started",
    )
    session.add(payment)
    session.flush()
    events.record(
        session,
        debtor,
        "payment_started",
        channel=channel,
        data={"amount": str(from_minor(amount, debtor.currency)), "currency": debtor.currency},
        key=f"payment_started:{provider.name}:{checkout.provider_ref}",
    )
    return payment, checkout.redirect_url


def find_payment(session: Session, provider: str, provider_ref: str) -> Payment | None:
    """The attempt a provider's id names, if any."""
    return session.scalar(
        select(Payment).where(Payment.provider == provider, Payment.provider_ref == provider_ref)
    )


def settle(session: Session, provider: str, provider_ref: str, outcome: str) -> Payment:
    """Apply a provider's outcome once; repeats and late arrivals change nothing more."""
    if outcome not in OUTCOMES:
        raise PaymentError(f"unknown outcome {outcome!r}")
    payment = session.scalar(
        select(Payment)
        .where(Payment.provider == provider, Payment.provider_ref == provider_ref)
        .with_for_update()
    )
    if payment is None:
        raise PaymentError(f"no payment attempt {provider}:{provider_ref}")
    if payment.status == "succeeded" or payment.status == outcome:
        return payment  # money counted once; a late failure never undoes a success
    debtor = session.get(Debtor, payment.debtor_id)
    assert debtor is not None
    payment.status = outcome
    amount = str(from_minor(payment.amount_minor, payment.currency))
    if outcome == "succeeded":
        events.record(
            session,
            debtor,
            "paid",
            data={"amount": amount, "currency": payment.currency, "provider": provider},
            key=f"paid:{provider}:{provider_ref}",
        )
    elif outcome == "failed":
        events.record(
            session,
            debtor,
            "payment_failed",
            data={"amount": amount, "currency": payment.currency, "provider": provider},
            key=f"payment_failed:{provider}:{provider_ref}",
        )
    session.flush()
    return payment


def provider_for(settings) -> PaymentProvider:
    """Stripe when a key is configured, the sandbox otherwise."""
    if settings.stripe_secret_key:
        return StripeProvider(settings.stripe_secret_key, settings.stripe_api_base)
    return SandboxProvider(settings.base_url)
