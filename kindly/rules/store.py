"""Storing rules and decisions: rule versions per campaign, and one `Decision` per debtor.

`decide` stores one `Decision` per debtor and rule version so outcomes can be explained later;
it reads the whole batch's history in one query and hands each debtor's to the pure `evaluate`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign, Debtor
from kindly.rules.document import Rules
from kindly.rules.evaluate import evaluate
from kindly.rules.experiments import learning_weights
from kindly.rules.history import past_behaviour, past_of
from kindly.rules.models import Decision, RuleSet


def canonical(document: dict[str, Any]) -> str:
    """The document as stable JSON text (sorted keys), for hashing and display."""
    return json.dumps(document, sort_keys=True, ensure_ascii=False, indent=2)


def current_rules(session: Session, campaign: Campaign) -> Rules:
    """The campaign's newest saved rules, or the built-in defaults as version 0."""
    row = session.scalar(
        select(RuleSet).where(RuleSet.campaign_id == campaign.id).order_by(RuleSet.version.desc())
    )
    if row is None:
        return Rules({}, 0)
    return Rules(row.document, row.version)


def save_rules(session: Session, campaign: Campaign, rules: Rules) -> Rules:
    """Store the document as the next version; an unchanged document keeps its version."""
    digest = hashlib.sha256(canonical(rules.document).encode()).hexdigest()
    latest = session.scalar(
        select(RuleSet).where(RuleSet.campaign_id == campaign.id).order_by(RuleSet.version.desc())
    )
    if latest is not None and latest.sha256 == digest:
        return Rules(latest.document, latest.version)
    version = (latest.version if latest else 0) + 1
    session.add(RuleSet(campaign_id=campaign.id, version=version, sha256=digest,
                        document=rules.document))  # fmt: skip
    session.flush()
    return Rules(rules.document, version)


def decide(
    session: Session,
    campaign: Campaign,
    rules: Rules,
    today: dt.date,
    *,
    debtor_ids: list[int] | None = None,
) -> dict[str, int]:
    """Store each debtor's decision under the rules' version (once); return counts by segment.

    A debtor decided before under this version keeps that decision, so variants stay put
    when the portfolio is re-imported; new debtors get the current learning allocation.
    """
    query = select(Debtor).where(Debtor.campaign_id == campaign.id).order_by(Debtor.id)
    if debtor_ids is not None:
        query = query.where(Debtor.id.in_(debtor_ids))
    debtors = list(session.scalars(query))
    existing = {
        d.debtor_id: d
        for d in session.scalars(
            select(Decision).where(
                Decision.campaign_id == campaign.id, Decision.rule_version == rules.version
            )
        )
    }
    weights: dict[str, dict[str, float]] = {}
    history: dict[int, dict] = {}
    if any(d.id not in existing for d in debtors):
        weights = learning_weights(session, campaign, rules)
        history = past_behaviour(session, campaign.id, debtor_ids)  # one query for the batch
    counts: dict[str, int] = {}
    for debtor in debtors:
        decision = existing.get(debtor.id)
        if decision is None:
            treatment = evaluate(
                debtor, rules, today, past=past_of(history, debtor), weights=weights
            )
            decision = Decision(
                campaign_id=campaign.id, debtor_id=debtor.id, rule_version=rules.version,
                segment=treatment.segment, experiment=treatment.experiment,
                variant=treatment.variant, tone=treatment.tone, channels=treatment.channels,
                treatment=treatment.settings,
            )  # fmt: skip
            session.add(decision)
        debtor.segment, debtor.variant = decision.segment, decision.variant
        debtor.channel = decision.channels[0]
        counts[decision.segment] = counts.get(decision.segment, 0) + 1
    session.flush()
    return counts


def decision_for(session: Session, debtor: Debtor) -> Decision | None:
    """The debtor's newest decision (the one the rules in force made), if any."""
    return session.scalar(
        select(Decision)
        .where(Decision.debtor_id == debtor.id)
        .order_by(Decision.rule_version.desc())
        .limit(1)
    )


def decided_payment_methods(session: Session, debtor: Debtor) -> list[str] | None:
    """The payment methods the debtor's newest decision offers, if the rules chose any."""
    decision = decision_for(session, debtor)
    return (decision.treatment or {}).get("payment_methods") if decision else None
