"""What providers send back: Stripe's payment events, bounces and SMS delivery reports."""

from __future__ import annotations

from flask import Blueprint, abort, request

from kindly.claims import offers
from kindly.infra.constant_time import same
from kindly.messaging import bounces
from kindly.payments import provider_events
from web.context import context
from web.security import csrf_exempt

bp = Blueprint("inbound", __name__)


@bp.post("/webhooks/stripe")
@csrf_exempt
def stripe_webhook():
    """Stripe's events: a bad or old signature gets 400 and changes nothing."""
    ctx = context()
    secret = ctx.settings.stripe_webhook_secret
    if not secret:
        abort(404)
    try:
        event = provider_events.verify(
            request.get_data(), request.headers.get("Stripe-Signature"), secret
        )
    except provider_events.BadSignature:
        abort(400)
    with ctx.db.session() as session:
        outcome = provider_events.apply(session, "stripe", event)
        if outcome == "succeeded":  # a settlement offer this payment took books its write-off
            offers.settle_offers(session, _debtor_ids(event))
    return {"event": event["id"], "outcome": outcome}


def _debtor_ids(event: dict) -> list[int]:
    """The debtor a Stripe object's metadata names (Kindly sets it on every checkout)."""
    obj = (event.get("data") or {}).get("object") or {}
    raw = str((obj.get("metadata") or {}).get("debtor_id", ""))
    return [int(raw)] if raw.isdigit() else []


def _authorised() -> None:
    """Gateways call with `Authorization: Bearer <KINDLY_WEBHOOK_TOKEN>`; without one set,
    these endpoints do not exist."""
    expected = context().settings.webhook_token
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not expected:
        abort(404)
    if not sent or not same(sent, expected):
        abort(401)


@bp.post("/webhooks/bounces")
@csrf_exempt
def bounce_report():
    """A delivery status notification (RFC 3464) as the mail server forwards it."""
    _authorised()
    reports = bounces.parse_dsn(request.get_data(cache=False))
    if not reports:
        abort(400)
    with context().db.session() as session:
        kinds = [bounces.apply(session, report) for report in reports]
    return {"applied": [k for k in kinds if k], "unknown": sum(1 for k in kinds if k is None)}


@bp.post("/webhooks/sms")
@csrf_exempt
def sms_report():
    """An SMS gateway's delivery report: {"reference": ..., "status": ...}."""
    _authorised()
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or "reference" not in payload:
        abort(400)
    with context().db.session() as session:
        kind = bounces.sms_callback(session, payload)
    return {"applied": kind}
