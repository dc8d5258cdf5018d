"""Data protection: export what is held about one debtor (GDPR Art. 15), erase it (Art. 17),
and purge whole campaigns after their retention period.

Erasing anonymises instead of deleting: the debtor row stays with its amounts, currency, dates,
segment, variant and channel, and every event and payment stays, so the funnel, the money and
the KPIs of the campaign keep their numbers. What identifies the person goes: names, email,
phone, address, birth date, contract, free attributes (except `tone`), free text in event data
(contact messages, phone numbers, addresses), send addresses and payment notes, the inbox's
messages, answers and case notes (kindly.inbox), the stored
artifacts (site, letter, video show the name), and the link (its token is replaced, so the old
link answers 404 like any unknown one).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from decimal import Decimal
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from kindly.campaigns.items import Item
from kindly.campaigns.models import Campaign, CampaignStatus, Debtor
from kindly.campaigns.service import by_slug
from kindly.claims.balance import balances_on
from kindly.claims.cost_booking import CostBooking
from kindly.claims.writeoffs import WriteOff
from kindly.disputes import service as disputes
from kindly.feedback.models import SurveyAnswer
from kindly.inbox import service as inbox
from kindly.infra.db import as_utc, utcnow
from kindly.infra.storage import Storage
from kindly.messaging.models import OptOut, Send
from kindly.payments.changes import PlanChange
from kindly.payments.models import Instalment, Payment, Plan, Promise
from kindly.payments.plans import OPEN as OPEN_PLAN
from kindly.reconciliation.models import BankAllocation, BankEntry
from kindly.refunds.models import Refund
from kindly.rules.models import Decision
from kindly.site.models import Artifact, IdentityCheck
from kindly.tracking.models import Event

ERASED_NAME = "erased"
"""What an erased debtor's last name (a required column) becomes."""
PERSONAL_FIELDS = (
    "salutation", "first_name", "email", "phone", "street", "postal_code", "city", "country",
    "birth_date", "contract",
)  # fmt: skip
"""Debtor columns set to NULL by an erasure (last_name becomes `erased`)."""
KEPT_ATTRIBUTES = ("tone",)
"""Attributes an erasure keeps: the campaign page splits outcomes by them."""
PERSONAL_DATA_KEYS = frozenset(
    {
        "message", "phone", "email", "name", "first_name", "last_name", "address", "street",
        "city", "postal_code", "birth_date", "answer", "text", "note", "notes", "comment", "ip",
        "user_agent", "to", "from", "recipient", "iban", "account_holder",
    }
)  # fmt: skip
"""Keys removed from event data by an erasure (values of other keys are checked too)."""
_LOOKS_PERSONAL = re.compile(r"@|\+?\d[\d /-]{6,}\d")
"""An email address or a phone-like run of digits inside some other text value."""


class NotFoundError(LookupError):
    """No such campaign or debtor."""


def find(session: Session, slug: str, reference: str) -> tuple[Campaign, Debtor]:
    """The campaign and its debtor, or NotFoundError."""
    campaign = by_slug(session, slug)
    if campaign is None:
        raise NotFoundError(f"no campaign {slug!r}")
    debtor = session.scalar(
        select(Debtor).where(Debtor.campaign_id == campaign.id, Debtor.reference == reference)
    )
    if debtor is None:
        raise NotFoundError(f"no debtor {reference!r} in campaign {slug!r}")
    return campaign, debtor


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _row(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        c.key: _plain(getattr(obj, c.key))
        for c in inspect(obj).mapper.column_attrs
        if c.key not in skip
    }


def export_debtor(session: Session, campaign: Campaign, debtor: Debtor) -> dict[str, Any]:
    """Everything stored about one debtor, as JSON-ready data."""

    def rows(model: Any, order: Any) -> list[dict[str, Any]]:
        query = select(model).where(model.debtor_id == debtor.id).order_by(order)
        return [_row(r) for r in session.scalars(query)]

    plans = []
    for plan in session.scalars(select(Plan).where(Plan.debtor_id == debtor.id).order_by(Plan.id)):
        entry = _row(plan)
        entry["instalments"] = [
            _row(i)
            for i in session.scalars(
                select(Instalment).where(Instalment.plan_id == plan.id).order_by(Instalment.seq)
            )
        ]
        plans.append(entry)
    addresses = [a.lower() for a in (debtor.email, debtor.phone) if a]
    opt_outs = (
        [_row(o) for o in session.scalars(select(OptOut).where(OptOut.address.in_(addresses)))]
        if addresses
        else []
    )
    check = session.get(IdentityCheck, debtor.id)
    return {
        "format": "kindly-debtor-export/1",
        "exported_at": _plain(utcnow()),
        "campaign": {"slug": campaign.slug, "name": campaign.name, "creditor": campaign.creditor},
        "debtor": _row(debtor),
        "events": rows(Event, Event.id),
        "payments": rows(Payment, Payment.id),
        "plans": plans,
        "plan_changes": rows(PlanChange, PlanChange.id),
        "promises": rows(Promise, Promise.id),
        "sends": rows(Send, Send.id),
        "decisions": rows(Decision, Decision.id),
        "artifacts": rows(Artifact, Artifact.id),
        "identity_check": _row(check) if check else None,
        "opt_outs": opt_outs,
        **{name: [_row(r) for r in found]
           for name, found in inbox.personal_rows(session, debtor).items()},
        "bank_transfers": [_row(e) for e in _bank_entries(session, debtor)],
        "refunds": rows(Refund, Refund.id),
        "write_offs": rows(WriteOff, WriteOff.id),
        "survey_answers": rows(SurveyAnswer, SurveyAnswer.id),
        "items": rows(Item, Item.id),
        "costs": rows(CostBooking, CostBooking.id),
    }  # fmt: skip


def _bank_entries(session: Session, debtor: Debtor) -> list[BankEntry]:
    """The statement entries booked (in whole or in part) to the debtor."""
    booked = select(BankAllocation.entry_id).where(BankAllocation.debtor_id == debtor.id)
    return list(
        session.scalars(select(BankEntry).where(BankEntry.id.in_(booked)).order_by(BankEntry.id))
    )


def _scrub(data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Event data without personal keys or personal-looking text; and whether it changed."""
    out: dict[str, Any] = {}
    changed = False
    for key, value in (data or {}).items():
        if key.lower() in PERSONAL_DATA_KEYS:
            changed = True
            continue
        if isinstance(value, str) and _LOOKS_PERSONAL.search(value) and not _is_date(value):
            changed = True
            continue
        if isinstance(value, dict):
            value, inner = _scrub(value)
            changed = changed or inner
        out[key] = value
    return out, changed


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value[:10])
    except ValueError:
        return False
    return len(value) <= 32


def _forget_artifacts(session: Session, storage: Storage | None, debtor: Debtor) -> int:
    """Delete the debtor's stored files (only theirs) and rows; returns the rows deleted."""
    if storage is not None:
        from kindly.site import artifacts

        return artifacts.forget_all(session, storage, debtor)
    rows = list(session.scalars(select(Artifact).where(Artifact.debtor_id == debtor.id)))
    for artifact in rows:
        session.delete(artifact)
    session.flush()
    return len(rows)


def is_erased(debtor: Debtor) -> bool:
    """Whether the debtor was erased already."""
    return bool((debtor.attributes or {}).get("erased_at"))


def erase_debtor(session: Session, debtor: Debtor, storage: Storage | None) -> dict[str, Any]:
    """Anonymise one debtor in place; amounts, payments and events (counted) stay.

    Returns what was done. Erasing twice is harmless (nothing personal is left to erase).
    """
    for field in PERSONAL_FIELDS:
        setattr(debtor, field, None)
    debtor.last_name = ERASED_NAME
    kept = {k: v for k, v in (debtor.attributes or {}).items() if k in KEPT_ATTRIBUTES}
    debtor.attributes = {**kept, "erased_at": _plain(utcnow())}
    if storage is not None:
        from kindly.site import links

        links.forget(storage, debtor.token)  # nor may an outage serve the old link
    debtor.token = secrets.token_urlsafe(24)  # the old link now answers 404
    scrubbed = 0
    for event in session.scalars(select(Event).where(Event.debtor_id == debtor.id)):
        data, changed = _scrub(event.data or {})
        if changed:
            event.data = data
            scrubbed += 1
    for send in session.scalars(select(Send).where(Send.debtor_id == debtor.id)):
        send.address, send.error = None, None
    for payment in session.scalars(select(Payment).where(Payment.debtor_id == debtor.id)):
        payment.notes, payment.payer_iban = None, None
    for item in session.scalars(select(Item).where(Item.debtor_id == debtor.id)):
        item.description = None  # free text from the creditor's file; the amounts stay
    for entry in _bank_entries(session, debtor):  # the statement file itself is the books'
        entry.counterparty_name = entry.counterparty_iban = entry.counterparty_bic = None
        entry.remittance, entry.matched_text, entry.note = "", None, None
    for refund in session.scalars(select(Refund).where(Refund.debtor_id == debtor.id)):
        # the amount stays booked; one still waiting is held until someone gives an account
        refund.payer_name = refund.payer_iban = refund.payer_bic = None
    for answer in session.scalars(select(SurveyAnswer).where(SurveyAnswer.debtor_id == debtor.id)):
        answer.comment = None  # the score stays counted; the free text may name a person
    inbox.collect(session, debtor=debtor)  # a message not yet in the inbox is erased too
    inbox.erase(session, debtor)
    disputes.forget(session, storage, debtor)  # the documents and words; the facts stay
    deleted = _forget_artifacts(session, storage, debtor)
    return {
        "reference": debtor.reference,
        "erased": True,
        "events_scrubbed": scrubbed,
        "artifacts_deleted": deleted,
    }


def _closed_since(session: Session, campaign: Campaign) -> dt.datetime | None:
    """When the whole campaign closed: its end, or its creation if never launched; else None.

    A paused campaign is not closed: a pause is temporary, its cases are still open.
    """
    status = session.get(CampaignStatus, campaign.id)
    if status is None or status.status == "draft":
        return as_utc(campaign.created_at)
    return as_utc(status.changed_at) if status.status == "ended" else None


def _with_open_plan(session: Session, campaign: Campaign) -> set[int]:
    """Debtors whose agreed plan still runs (it is charged whatever the campaign's status)."""
    return set(
        session.scalars(
            select(Plan.debtor_id).where(
                Plan.campaign_id == campaign.id, Plan.status.in_(OPEN_PLAN)
            )
        )
    )


def purge_due(
    session: Session, campaign: Campaign, older_than_days: int, now: dt.datetime | None = None
) -> tuple[list[Debtor], str | None]:
    """The debtors a purge would erase, or an empty list and the reason there are none.

    A campaign is due when it has ended (or was never launched) more than `older_than_days`
    ago; a live or paused one never is. Debtors whose agreed plan still runs are kept.
    """
    now = now or utcnow()
    since = _closed_since(session, campaign)
    if since is None:
        status = session.get(CampaignStatus, campaign.id).status
        return [], f"the campaign is {status}: end it first (kindly end {campaign.slug})"
    if now - since <= dt.timedelta(days=older_than_days):
        return [], f"the campaign ended or was created {(now - since).days} days ago"
    running = _with_open_plan(session, campaign)
    debtors = session.scalars(
        select(Debtor).where(Debtor.campaign_id == campaign.id).order_by(Debtor.id)
    )
    return [d for d in debtors if not is_erased(d) and d.id not in running], None


RETENTION_KEY = "retention_days"
"""The campaign setting: days a closed case's personal data is kept (unset: kept until purged
by hand with `kindly privacy purge`)."""


def retention_days(campaign: Campaign) -> int | None:
    """The campaign's retention period in days, or None when it sets none."""
    value = (campaign.settings or {}).get(RETENTION_KEY)
    return int(value) if value is not None else None


def closed_cases_due(
    session: Session, campaign: Campaign, now: dt.datetime | None = None
) -> list[Debtor]:
    """The debtors whose case closed more than the campaign's retention period ago.

    A case is closed when its claim is paid in full (the day of the last payment counts), or
    when the whole campaign ended or was never launched (the day it ended, or was created,
    counts). A paused campaign is not closed: its unpaid cases are open, as in a live one.
    Never due: a debtor whose agreed plan still runs, or one already erased.
    """
    days = retention_days(campaign)
    if days is None:
        return []
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    since = _closed_since(session, campaign)
    if since is not None and since < cutoff:
        candidates = session.scalars(
            select(Debtor).where(Debtor.campaign_id == campaign.id).order_by(Debtor.id)
        ).all()
    else:
        settled = session.execute(
            select(Debtor.id, Debtor.amount_due_minor, func.sum(Payment.amount_minor),
                   func.max(Payment.updated_at))
            .join(Payment, Payment.debtor_id == Debtor.id)
            .where(Debtor.campaign_id == campaign.id, Payment.status == "succeeded",
                   Payment.currency == Debtor.currency)
            .group_by(Debtor.id, Debtor.amount_due_minor)
        ).all()  # fmt: skip
        ids = [
            debtor_id
            for debtor_id, owed, paid, last in settled
            if int(paid or 0) >= owed and last is not None and as_utc(last) < cutoff
        ]
        candidates = (
            session.scalars(select(Debtor).where(Debtor.id.in_(ids)).order_by(Debtor.id)).all()
            if ids
            else []
        )
        # paid the imported claim is not yet paid in full where interest accrued on it
        owed = balances_on(session, candidates)
        candidates = [d for d in candidates if owed[d.id].balance_minor == 0]
    running = _with_open_plan(session, campaign)
    return [d for d in candidates if not is_erased(d) and d.id not in running]


def purge_retention(
    session: Session,
    storage: Storage | None,
    *,
    via: str,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> dict[str, int]:
    """Erase, in every campaign with a retention period, the closed cases past it, and
    audit it per campaign (`via`: "cli" or "schedule").

    Returns slug -> debtors erased (or that would be, with `dry_run`); campaigns with nothing
    due are left out. The aggregate numbers stay: erasure anonymises in place.
    """
    from kindly.accounts import audit

    done: dict[str, int] = {}
    for campaign in session.scalars(select(Campaign).order_by(Campaign.id)).all():
        due = closed_cases_due(session, campaign, now)
        if not due:
            continue
        if not dry_run:
            for debtor in due:
                erase_debtor(session, debtor, storage)
            audit.record(session, None, "privacy.retention", via=via, campaign_id=campaign.id,
                         erased=len(due), retention_days=retention_days(campaign))  # fmt: skip
        done[campaign.slug] = len(due)
    return done
