"""/api/v1 webhooks: the subscriptions of outgoing webhooks (list, create, delete)."""

from __future__ import annotations

from flask import Response, g, request
from sqlalchemy import select

from kindly.accounts import audit
from kindly.campaigns.models import Campaign
from kindly.outbound import deliveries as outbound
from kindly.outbound.models import WebhookSubscription
from web.api.common import authenticated, bp, campaign_or_404, problem
from web.context import context


def _limited_key():
    """A 403 for a key limited to some campaigns: webhooks span campaigns, or every one."""
    if g.api_access:
        return problem(403, "a key limited to some creditors or campaigns may not manage webhooks")
    return None


@bp.get("/webhooks")
@authenticated("admin")
def webhooks():
    """Every outgoing webhook subscription (secrets are shown only when created)."""
    if (refused := _limited_key()) is not None:
        return refused
    with context().db.session() as db:
        rows = db.execute(
            select(WebhookSubscription, Campaign.slug)
            .outerjoin(Campaign, Campaign.id == WebhookSubscription.campaign_id)
            .order_by(WebhookSubscription.id)
        ).all()
        return {"webhooks": [outbound.as_json(sub, slug) for sub, slug in rows]}


@bp.post("/webhooks")
@authenticated("admin")
def webhook_create():
    """Subscribe a URL to events of one campaign (or all); the secret is in this answer only."""
    if (refused := _limited_key()) is not None:
        return refused
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return problem(400, "send a JSON object")
    events, slug = body.get("events"), body.get("campaign")
    if events is not None and (
        not isinstance(events, list) or not all(isinstance(e, str) for e in events)
    ):
        return problem(400, f"events: a list of {', '.join(outbound.EVENTS)}")
    if slug is not None and not isinstance(slug, str):
        return problem(400, "campaign: a campaign's slug")
    ctx = context()
    with ctx.db.session() as db:
        campaign = campaign_or_404(db, slug) if slug is not None else None
        try:
            sub, secret = outbound.subscribe(
                db, body.get("url"), events, campaign,
                allow_private=ctx.settings.outbound_allow_private,
            )  # fmt: skip
        except outbound.SubscriptionError as exc:
            return problem(400, str(exc))
        audit.record(db, g.api_user, "webhook.create", via="api",
                     campaign_id=campaign.id if campaign else None, url=sub.url,
                     events=list(sub.events))  # fmt: skip
        return {**outbound.as_json(sub, slug), "secret": secret}, 201


@bp.delete("/webhooks/<int:subscription_id>")
@authenticated("admin")
def webhook_delete(subscription_id: int):
    """Remove a subscription and its delivery history."""
    if (refused := _limited_key()) is not None:
        return refused
    if subscription_id > 2**63 - 1:  # no such row can exist; databases refuse the number
        return problem(404, f"no webhook {subscription_id}")
    with context().db.session() as db:
        sub = db.get(WebhookSubscription, subscription_id)
        if sub is None:
            return problem(404, f"no webhook {subscription_id}")
        audit.record(db, g.api_user, "webhook.delete", via="api", campaign_id=sub.campaign_id,
                     url=sub.url)  # fmt: skip
        db.delete(sub)
    return Response(status=204)
