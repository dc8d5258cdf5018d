"""Rules can tell a debtor who paid last time from one who disputed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.rules.evaluate import facts, segment_of
from kindly.rules.history import past_behaviour, past_of
from kindly.rules.validate import parse_rules
from kindly.tracking import events
from tests.support.app import load_campaign

RULES = parse_rules({
    "segments": [
        {"name": "disputed-before", "when": {"past_disputed": True}, "tone": "neutral"},
        {"name": "paid-before", "when": {"past_paid": True}, "tone": "friendly"},
        {"name": "returning", "when": {"past_campaigns": {"gte": 1}}, "tone": "firm"},
    ]
})  # fmt: skip


def test_earlier_campaigns_of_the_same_case_become_facts(ctx):
    load_campaign(ctx, slug="autumn")
    with ctx.db.session() as session:
        autumn = {d.reference: d for d in session.scalars(select(Debtor))}
        events.record(session, autumn["A-1"], "paid")
        events.record(
            session, autumn["A-2"], "contact", data={"topic": "dispute", "message": "not mine"}
        )
        session.scalar(
            select(Campaign).where(Campaign.slug == "autumn")
        ).created_at -= dt.timedelta(days=60)
    load_campaign(ctx, slug="winter")
    today = dt.date(2026, 12, 1)
    with ctx.db.session() as session:
        winter = session.scalar(select(Campaign).where(Campaign.slug == "winter"))
        debtors = {
            d.reference: d
            for d in session.scalars(select(Debtor).where(Debtor.campaign_id == winter.id))
        }
        history = past_behaviour(session, winter.id)  # one query for the whole campaign
        seen = {ref: facts(d, RULES, today, past_of(history, d)) for ref, d in debtors.items()}
        segments = {ref: segment_of(values, RULES)["name"] for ref, values in seen.items()}
    assert seen["A-1"]["past_campaigns"] == 1 and seen["A-1"]["past_paid"] is True
    assert segments == {"A-1": "paid-before", "A-2": "disputed-before", "A-3": "returning"}
    with ctx.db.session() as session:
        first = session.scalar(
            select(Debtor)
            .join(Campaign)
            .where(Campaign.slug == "autumn", Debtor.reference == "A-1")
        )
        past = past_of(past_behaviour(session, first.campaign_id), first)
        assert facts(first, RULES, today, past)["past_campaigns"] == 0  # nothing came before it


def test_a_segments_identity_check_and_payment_methods_reach_the_debtor(ctx, client):
    from kindly.payments import policy
    from kindly.rules.store import decide, decided_payment_methods, save_rules
    from kindly.site import identity

    load_campaign(ctx)
    rules = parse_rules({
        "segments": [{"name": "uk", "when": {"country": "GB"}, "identity_check": "postal_code",
                      "payment_methods": ["card", "sepa_debit", "bank_transfer"]}],
    })  # fmt: skip
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        decide(session, campaign, save_rules(session, campaign, rules), dt.date(2026, 12, 1))
    with ctx.db.session() as session:
        debtors = {d.reference: d for d in session.scalars(select(Debtor))}
        assert identity.method(campaign, debtors["A-2"]) == "postal_code"  # the GB debtor
        assert identity.method(campaign, debtors["A-1"]) == "none"
        # GBP: no SEPA; bank transfer is Kindly's own, not Stripe's
        decided = decided_payment_methods(session, debtors["A-2"])
        assert policy.payment_methods(debtors["A-2"], decided=decided) == ["card"]
        token = debtors["A-2"].token
    assert "Please confirm it is you" in client.get(f"/s/{token}").get_data(as_text=True)


def test_the_checkout_offers_the_methods_the_rules_decided(ctx, client, monkeypatch):
    import re

    from kindly.payments.service import SandboxProvider
    from kindly.rules.store import decide, save_rules

    asked = []
    create_checkout = SandboxProvider.create_checkout

    def spy(self, request):
        asked.append(request.methods)
        return create_checkout(self, request)

    monkeypatch.setattr(SandboxProvider, "create_checkout", spy)
    load_campaign(ctx)
    rules = parse_rules({"defaults": {"payment_methods": ["paypal", "card", "bank_transfer"]}})
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        decide(session, campaign, save_rules(session, campaign, rules), dt.date(2026, 12, 1))
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
    form = client.get(f"/s/{token}/pay").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    answer = client.post(f"/s/{token}/pay", data={"csrf_token": csrf})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
    assert asked == [("paypal", "card")]  # bank transfer is Kindly's own, not Stripe's
