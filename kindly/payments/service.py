"""Payments: a provider interface, the sandbox and Stripe, and exactly-once settlement."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.errors import KindlyError
from kindly.infra import metrics
from kindly.money import from_minor
from kindly.payments import policy
from kindly.payments.models import Payment
from kindly.tracking import events

log = logging.getLogger(__name__)

OUTCOMES = ("succeeded", "failed", "canceled")
# How far a reversal (refund, dispute) has got; it only ever moves to a higher rank.
REVERSAL_RANK = {"pending": 0, "succeeded": 1, "failed": 2, "canceled": 2}


class PaymentError(KindlyError):
    """A payment cannot be started or settled as asked."""


class AmountError(PaymentError):
    """The amount is outside what may be paid now; `reason` says which limit."""

    def __init__(self, reason: str, limit_minor: int):
        super().__init__(f"{reason}: {limit_minor}")
        self.reason = reason  # below_minimum | above_balance | nothing_owed
        self.limit_minor = limit_minor


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
    payment_id: int = 0
    methods: tuple[str, ...] | None = None
    save_method: bool = False  # first instalment: keep the method for off-session charges
    locale: str | None = None


@dataclass(frozen=True)
class Checkout:
    """The provider's answer: its id for the attempt and where to send the debtor."""

    provider_ref: str
    redirect_url: str


@dataclass(frozen=True)
class ChargeRequest:
    """An off-session charge of a saved payment method (a later instalment)."""

    payment_id: int
    debtor_id: int
    campaign_id: int
    amount_minor: int
    currency: str
    customer_ref: str
    method_ref: str
    description: str
    idempotency_key: str


@dataclass(frozen=True)
class Charge:
    """What a provider answered to a charge: succeeded, processing (SEPA) or failed."""

    provider_ref: str
    status: str
    failure: str | None = None


class PaymentProvider(Protocol):
    """A place where a debtor can pay."""

    name: str

    def create_checkout(self, request: CheckoutRequest) -> Checkout: ...

    def charge_saved(self, request: ChargeRequest) -> Charge: ...

    def saved_method(self, intent_ref: str) -> tuple[str, str]: ...


@dataclass
class SandboxProvider:
    """A clearly marked test checkout served by Kindly itself; no money moves.

    `declines` scripts off-session charges for demos and tests: each charge takes the next
    value (True declines); when they run out every charge succeeds.
    """

    base_url: str
    declines: Iterable[bool] = ()
    name: str = "sandbox"
    _script: list[bool] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._script = list(self.declines)

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        """A new sandbox attempt with its own unguessable id."""
        ref = "sbx_" + secrets.token_urlsafe(18)
        return Checkout(ref, f"{self.base_url}/sandbox/checkout/{ref}")

    def charge_saved(self, request: ChargeRequest) -> Charge:
        """Charge the saved sandbox method: succeeds unless scripted to decline."""
        ref = "sbx_pi_" + secrets.token_urlsafe(12)
        if self._script and self._script.pop(0):
            return Charge(ref, "failed", "card_declined")
        return Charge(ref, "succeeded")

    def saved_method(self, intent_ref: str) -> tuple[str, str]:
        """The sandbox saves a pretend card with every first instalment."""
        return f"sbx_pm_{intent_ref[-12:]}", "card"


class StripeProvider:
    """Stripe Checkout, one session per attempt; PaymentIntents for later instalments."""

    name = "stripe"

    def __init__(self, secret_key: str, api_base: str | None = None):
        import stripe

        options = {"base_addresses": {"api": api_base}} if api_base else {}
        self.client = stripe.StripeClient(secret_key, max_network_retries=2, **options)

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        """Create a Checkout Session in payment mode for the exact amount."""
        import stripe

        metadata = {
            "debtor_id": str(request.debtor_id),
            "campaign_id": str(request.campaign_id),
            "kindly_payment": str(request.payment_id),
        }
        intent: dict = {"metadata": metadata}
        params: dict = {
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
            "metadata": metadata,
            "payment_intent_data": intent,
        }
        if request.methods:
            params["payment_method_types"] = list(request.methods)
        if request.save_method:
            intent["setup_future_usage"] = "off_session"
            params["customer_creation"] = "always"
        if request.locale:
            params["locale"] = request.locale
        try:
            session = self.client.v1.checkout.sessions.create(
                params=params, options={"idempotency_key": request.idempotency_key}
            )
        except stripe.StripeError as exc:
            raise PaymentError(f"Stripe refused the checkout: {exc.user_message or exc}") from None
        return Checkout(session.id, session.url or "")

    def charge_saved(self, request: ChargeRequest) -> Charge:
        """Charge a saved method off-session and confirm at once (PaymentIntent)."""
        import stripe

        try:
            intent = self.client.v1.payment_intents.create(
                params={
                    "amount": request.amount_minor,
                    "currency": request.currency.lower(),
                    "customer": request.customer_ref,
                    "payment_method": request.method_ref,
                    "off_session": True,
                    "confirm": True,
                    "description": request.description,
                    "metadata": {
                        "debtor_id": str(request.debtor_id),
                        "campaign_id": str(request.campaign_id),
                        "kindly_payment": str(request.payment_id),
                    },
                },
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.CardError as exc:
            failed = getattr(exc.error, "payment_intent", None)
            ref = failed.id if failed is not None else "pi_failed_" + request.idempotency_key
            return Charge(ref, "failed", exc.code or "card_error")
        except stripe.StripeError as exc:
            raise PaymentError(f"Stripe refused the charge: {exc.user_message or exc}") from None
        status = {"succeeded": "succeeded", "processing": "processing"}.get(intent.status, "failed")
        return Charge(intent.id, status, None if status != "failed" else intent.status)

    def saved_method(self, intent_ref: str) -> tuple[str, str]:
        """The payment method the first instalment's PaymentIntent saved, and its type."""
        intent = self.client.v1.payment_intents.retrieve(
            intent_ref, params={"expand": ["payment_method"]}
        )
        method = intent.payment_method
        if isinstance(method, str):
            return method, "card"
        return method.id, method.type


def check_amount(
    debtor: Debtor, amount_minor: int | None, balance: int, *, minimum: bool = True
) -> int:
    """The amount to pay now: the balance (what is open today, kindly.claims.balance), or a
    part above the campaign's minimum (`minimum` False: any part, as for the items a debtor
    chose to pay)."""
    if balance <= 0:
        raise AmountError("nothing_owed", 0)
    if amount_minor is None or amount_minor == balance:
        return balance
    if amount_minor > balance:
        raise AmountError("above_balance", balance)
    if not minimum:
        if amount_minor <= 0:
            raise AmountError("below_minimum", 1)
        return amount_minor
    floor = min(policy.min_part_minor(debtor.campaign, debtor.currency), balance)
    if amount_minor < floor:
        raise AmountError("below_minimum", floor)
    return amount_minor


def start_payment(
    session: Session,
    debtor: Debtor,
    provider: PaymentProvider,
    *,
    base_url: str,
    amount_minor: int | None = None,
    channel: str | None = None,
    instalment_id: int | None = None,
    save_method: bool = False,
    lang: str | None = None,
    decided_methods: list[str] | None,
    balance_minor: int,
    minimum: bool = True,
) -> tuple[Payment, str]:
    """Open a checkout for the balance (or part of it) and record `payment_started`.

    `decided_methods` are the payment methods the rules' decision chose for the debtor, if any;
    `balance_minor` is what is open today (kindly.claims.balance, with interest and costs).
    """
    amount = check_amount(debtor, amount_minor, balance_minor, minimum=minimum)
    site = f"{base_url}/s/{debtor.token}"
    creditor = debtor.creditor or debtor.campaign.creditor or ""
    attempt = secrets.token_hex(8)
    with session.begin_nested():  # a refused checkout leaves no row behind
        payment = Payment(
            campaign_id=debtor.campaign_id,
            debtor_id=debtor.id,
            provider=provider.name,
            provider_ref=f"opening_{attempt}",
            amount_minor=amount,
            currency=debtor.currency,
            status="started",
            kind="payment",
            instalment_id=instalment_id,
        )
        session.add(payment)
        session.flush()
        methods = policy.payment_methods(debtor, decided=decided_methods)
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
                payment_id=payment.id,
                methods=tuple(methods) if methods else None,
                save_method=save_method,
                locale=lang,
            )
        )
        payment.provider_ref = checkout.provider_ref
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


def settle_payment(
    session: Session,
    payment: Payment,
    outcome: str,
    *,
    then: Callable[[Session, Payment], None] | None = None,
) -> Payment:
    """Move one attempt to its outcome; a success is final, a late failure never undoes it.

    `then` runs once the outcome is new and the payment is an instalment's: the caller passes
    `plans.instalment_settled`, so that plans build on payments and not the other way round.
    """
    if outcome not in OUTCOMES:
        raise PaymentError(f"unknown outcome {outcome!r}")
    # Lock the row: two deliveries of the same outcome must not both count it.
    payment = session.scalar(
        select(Payment)
        .where(Payment.id == payment.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert payment is not None
    if payment.status == "succeeded" or payment.status == outcome:
        return payment
    debtor = session.get(Debtor, payment.debtor_id)
    assert debtor is not None
    payment.status = outcome
    amount = str(from_minor(payment.amount_minor, payment.currency))
    data = {"amount": amount, "currency": payment.currency, "provider": payment.provider}
    key = f"{payment.provider}:{payment.provider_ref}"
    if outcome == "succeeded":
        events.record(session, debtor, "paid", data=data, key=f"paid:{key}")
        # manual and bank bookings name their method; online ones the provider that took it
        metrics.count_payment(payment.method or payment.provider, session)
    elif outcome == "failed":
        events.record(session, debtor, "payment_failed", data=data, key=f"payment_failed:{key}")
    session.flush()
    if payment.instalment_id is not None and then is not None:
        then(session, payment)
    return payment


def record_reversal(
    session: Session,
    payment: Payment,
    *,
    kind: str,
    ref: str,
    amount_minor: int,
    currency: str,
    status: str,
) -> Payment:
    """Record a refund or dispute of `payment` once per provider id; it only moves forward.

    A reversal is a row of its own with a negative amount: while `succeeded` it takes the
    money back out of every sum (ledger, stats, exports) and the claim is open again.
    """
    if currency.upper() != payment.currency:
        raise PaymentError(f"{kind} {ref} is in {currency}, the payment in {payment.currency}")
    if status not in REVERSAL_RANK:
        raise PaymentError(f"unknown {kind} status {status!r}")
    row = session.scalar(
        select(Payment)
        .where(Payment.provider == payment.provider, Payment.provider_ref == ref)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if row is None:
        row = Payment(
            campaign_id=payment.campaign_id,
            debtor_id=payment.debtor_id,
            provider=payment.provider,
            provider_ref=ref,
            amount_minor=-abs(amount_minor),
            currency=payment.currency,
            status=status,
            kind=kind,
            intent_ref=payment.intent_ref,
            notes=f"{kind} of {payment.provider_ref}",
        )
        session.add(row)
    elif REVERSAL_RANK[status] > REVERSAL_RANK.get(row.status, 0):
        row.status = status
        row.amount_minor = -abs(amount_minor)
    session.flush()
    return row


def provider_for(settings) -> PaymentProvider:
    """The provider KINDLY_PAYMENTS names; none (bank transfer only) has no provider."""
    if settings.payments == "stripe":
        return StripeProvider(settings.stripe_secret_key, settings.stripe_api_base)
    if settings.payments == "sandbox":
        return SandboxProvider(settings.base_url)
    raise PaymentError("online payment is off (KINDLY_PAYMENTS=none): debtors pay by transfer")
