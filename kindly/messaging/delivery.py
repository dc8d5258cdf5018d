"""Who gets which message when: the send plan, and delivering one (debtor, step, channel)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import smtplib
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.service import status_of
from kindly.cases.read import case_of, cases_for
from kindly.cases.state import Case
from kindly.creditors.profile import creditor_for, creditor_name
from kindly.infra import logs, metrics
from kindly.infra.config import Settings
from kindly.infra.db import as_utc
from kindly.messaging import email as email_channel
from kindly.messaging import optout, respect, sms, stepcosts, unsublink
from kindly.messaging.models import Send
from kindly.messaging.respect import held_by_clock, zone_for
from kindly.payments import ledger
from kindly.rules.document import Rules
from kindly.rules.models import Decision
from kindly.rules.store import current_rules, decision_for
from kindly.site.personalise import build_view
from kindly.tracking import events
from renderer.texts import load_texts, one_stop

DONE = ("sent", "print", "sending", "outbox")
"""Send statuses that count as a contact made (or possibly made): never repeated. "outbox":
written to the outbox folder for want of a gateway; nobody received it, but a later run
must not send it again (the cadence goes on, as it did in the demo)."""
IN_DOUBT_AFTER = dt.timedelta(minutes=15)
"""A send still "sending" this long after its row was made has lost its worker mid-message
(a job's attempts, retries included, end within ~7 minutes): the server may or may not have
taken it. It is never sent again on its own; `in_doubt` counts these for the operator."""


@dataclass(frozen=True)
class Planned:
    """One line of the send plan: what would go to a debtor now, or why nothing would."""

    debtor_id: int
    reference: str
    segment: str
    variant: str
    step: int | None
    channel: str | None
    status: str  # "send" or "held"
    reason: str | None = None
    local_time: str | None = None
    opens_at: str | None = None  # held by the clock: when it may go (ISO 8601, UTC)

    def as_dict(self) -> dict:
        """Plain data for --json and the dashboard."""
        return asdict(self)


def _sent_steps(session: Session, debtor: Debtor) -> dict[int, dt.datetime]:
    """Steps already delivered (on any channel) and when each first went out."""
    rows = session.execute(
        select(Send.step, func.min(func.coalesce(Send.sent_at, Send.created_at)))
        .where(Send.debtor_id == debtor.id, Send.status.in_(DONE))
        .group_by(Send.step)
    ).all()
    return {step: as_utc(when) for step, when in rows}


def held_for_debtor(session: Session, debtor: Debtor, case: Case | None = None) -> str | None:
    """A reason no automated message may reach this debtor at all, or None: the case's own
    hold (paid, disputed, breathing space, a plan or a promise running, …; kindly.cases)."""
    return (case or case_of(session, debtor)).hold


def plan_debtor(
    session: Session,
    debtor: Debtor,
    decision: Decision,
    rules: Rules,
    at: dt.datetime,
    channels: tuple[str, ...] | None = None,
    case: Case | None = None,
) -> Planned:
    """The next message for one debtor at `at`, or the first reason it is held back
    (`case`: the debtor's case, when the caller read many at once)."""
    zone = zone_for((debtor.attributes or {}).get("timezone"), debtor.country, rules.timezone)
    local = at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    def held(reason: str, step: int | None = None, channel: str | None = None) -> Planned:
        return Planned(debtor.id, debtor.reference, decision.segment, decision.variant, step,
                       channel, "held", reason, local)  # fmt: skip

    case = case or case_of(session, debtor, now=at)
    reason = held_for_debtor(session, debtor, case)
    if reason:
        return held(reason)
    cadence = decision.treatment.get("cadence_days", [0])
    done = _sent_steps(session, debtor)
    step = max(done) + 1 if done else 0
    if step >= len(cadence):
        return held("cadence_complete")
    if step > 0 and at < done[0] + dt.timedelta(days=cadence[step]):
        return held("not_due", step)

    gaps = []
    chosen = None
    for channel in preferred_first(decision.channels, case.preferred):
        if channels is not None and channel not in channels:
            continue
        address = optout.address_of(debtor, channel)
        block = "no_address" if address is None else optout.blocked(session, address, channel)
        if block is None and channel == "sms" and _sms_text(debtor, decision, "x" * 80) is None:
            block = "sms_too_long"
        if block is None:
            chosen = channel
            break
        gaps.append(f"{channel}: {block}")
    if chosen is None:
        return held("; ".join(gaps) or "no_channel_selected", step)

    cap = rules.frequency_cap
    recent = session.scalar(
        select(func.count(Send.id)).where(
            Send.debtor_id == debtor.id,
            Send.status.in_(DONE),
            func.coalesce(Send.sent_at, Send.created_at) > at - dt.timedelta(days=cap["days"]),
            func.coalesce(Send.sent_at, Send.created_at) <= at,
        )
    )
    if recent >= cap["messages"]:
        return held("frequency_cap", step, chosen)
    clock = held_by_clock(at, zone, debtor.country, rules.quiet_hours,
                          decision.treatment.get("send_window", {}))  # fmt: skip
    if clock:
        window = decision.treatment.get("send_window", {})
        opens = respect.next_allowed(at, zone, debtor.country, rules.quiet_hours, window)
        return dataclasses.replace(
            held(clock, step, chosen),
            opens_at=opens.astimezone(dt.UTC).isoformat() if opens else None,
        )
    return Planned(debtor.id, debtor.reference, decision.segment, decision.variant, step,
                   chosen, "send", None, local)  # fmt: skip


def preferred_first(channels, preferred: str | None) -> list[str]:
    """The rules' channels with the one the debtor chose on their page tried first (only
    among the channels the rules allow for their segment)."""
    ordered = list(channels)
    if preferred in ordered:
        ordered.remove(preferred)
        ordered.insert(0, preferred)
    return ordered


def plan(
    session: Session,
    campaign: Campaign,
    at: dt.datetime,
    channels: tuple[str, ...] | None = None,
) -> list[Planned]:
    """The send plan for every debtor of the campaign as of `at` (decide() must have run).

    Unless the campaign is live, every line is held for it ("campaign_draft", …).
    """
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    status = status_of(session, campaign.id)
    rules = current_rules(session, campaign)
    decisions = {
        d.debtor_id: d
        for d in session.scalars(
            select(Decision).where(
                Decision.campaign_id == campaign.id, Decision.rule_version == rules.version
            )
        )
    }
    debtors = session.scalars(
        select(Debtor).where(Debtor.campaign_id == campaign.id).order_by(Debtor.reference)
    ).all()
    cases = cases_for(session, debtors, now=at)
    out = []
    for debtor in debtors:
        decision = decisions.get(debtor.id)
        if decision is None:
            out.append(Planned(debtor.id, debtor.reference, debtor.segment, debtor.variant,
                               None, None, "held", "no_decision"))  # fmt: skip
            continue
        out.append(plan_debtor(session, debtor, decision, rules, at, channels, cases[debtor.id]))
    if status != "live":
        # only a live campaign sends: each line keeps the step and channel it would have
        # once live, held for the campaign first (and nothing scheduled: no opens_at)
        reason = f"campaign_{status}"
        out = [
            dataclasses.replace(item, status="held", reason=reason, opens_at=None) for item in out
        ]
    return out


# ---- delivering one message ------------------------------------------------------------------


def _sms_text(debtor: Debtor, decision: Decision, link: str, view=None) -> str | None:
    """The longest text of the tone that fits the campaign's segment limit (None: none fits)."""
    from kindly.site.personalise import resolve_locale

    _, lang, _ = resolve_locale(debtor, debtor.campaign)
    creditor = view.creditor if view else creditor_name(debtor)
    texts = one_stop(load_texts("sms").for_lang(lang), creditor=creditor)
    tone = decision.tone
    values = {
        "first_name": (view.first_name if view else debtor.first_name) or "",
        "creditor": creditor,
        "amount": view.amount if view else "0000,00 €",
        "reference": debtor.reference,
        "due_date": view.due_date if view else "00. September 0000",
        "link": link,
    }
    limit = decision.treatment.get("max_sms_segments", 2)
    # an overdue claim says since when and asks to pay now, never "by" a day gone by
    late = "_overdue" if view is not None and view.overdue else ""
    for key in (f"body_{tone}{late}", f"short_{tone}{late}"):
        text = sms.plain(f"{texts[key].format(**values)} {texts['stop']}")
        if sms.count(text).parts <= limit:
            return text
    return None


def is_in_doubt(send: Send, now: dt.datetime) -> bool:
    """Whether nobody heard how this message went: claimed, then its worker was lost."""
    made = send.created_at if send.created_at.tzinfo else send.created_at.replace(tzinfo=dt.UTC)
    return send.status == "sending" and now - made > IN_DOUBT_AFTER


def in_doubt(session: Session, campaign_id: int, now: dt.datetime) -> dict[str, int]:
    """Per channel, the campaign's messages whose outcome is unknown (see IN_DOUBT_AFTER)."""
    rows = session.execute(
        select(Send.channel, func.count(Send.id))
        .where(Send.campaign_id == campaign_id, Send.status == "sending",
               Send.created_at < now - IN_DOUBT_AFTER)
        .group_by(Send.channel)
    ).all()  # fmt: skip
    return {channel: int(count) for channel, count in sorted(rows)}


def _claim(session: Session, debtor: Debtor, step: int, channel: str) -> Send | None:
    """Take the (debtor, step, channel) send for this attempt; None when it must not run."""
    row = session.scalar(
        select(Send).where(Send.debtor_id == debtor.id, Send.step == step, Send.channel == channel)
    )
    if row is None:
        try:
            with session.begin_nested():
                row = Send(campaign_id=debtor.campaign_id, debtor_id=debtor.id, step=step,
                           channel=channel, status="queued", attempts=0)  # fmt: skip
                session.add(row)
        except IntegrityError:
            return None  # a concurrent job created it: that job sends
    # Only one attempt may move queued/failed → sending; a duplicate job finds nothing to do.
    claimed = session.execute(
        update(Send)
        .where(Send.id == row.id, Send.status.in_(("queued", "failed")))
        .values(status="sending", attempts=Send.attempts + 1)
    ).rowcount
    session.commit()  # the claim is visible before anything leaves the building
    if not claimed:
        return None
    session.refresh(row)
    return row


def deliver(
    session: Session,
    settings: Settings,
    debtor_id: int,
    step: int,
    channel: str,
    at: dt.datetime | None = None,
) -> Send | None:
    """Send one message, at most once per (debtor, step, channel); returns the send row.

    The campaign's status, opt-outs, payments and flags are checked again here, because they
    can change between planning and delivery (a job queued before a pause sends nothing).
    `at` is the clock of a `kindly send --at` run (default: now), so a simulated run keeps its
    cadence and caps consistent. A soft failure leaves the row
    "failed" and raises, so the job retries; a hard bounce blocks the address, and the next
    plan uses the next channel.
    """
    debtor = session.get(Debtor, debtor_id)
    if debtor is None:
        return None
    logs.note_campaign(debtor.campaign.slug)  # the job's log line names the campaign
    status = status_of(session, debtor.campaign_id)
    if status != "live":  # asked again when the job runs: a pause after enqueueing stops it
        return _held(channel, f"campaign_{status}")
    decision = decision_for(session, debtor)
    address = optout.address_of(debtor, channel)
    if decision is None or address is None:
        return _held(channel, "no_decision" if decision is None else "no_address")
    hold = held_for_debtor(session, debtor) or optout.blocked(session, address, channel)
    if hold:
        return _held(channel, hold)
    row = _claim(session, debtor, step, channel)
    if row is None:
        row = session.scalar(
            select(Send).where(Send.debtor_id == debtor.id, Send.step == step,
                               Send.channel == channel)
        )  # fmt: skip
        if row is not None and row.status == "sending":  # an earlier attempt's worker was lost
            metrics.count_send(channel, "unknown", "worker_lost")
        return row
    row.address = address
    # the debtor's id, not the reference: the key names an outbox file and goes into the
    # Message-ID and the SMS gateway's Idempotency-Key, where `/`, spaces or 山 don't belong
    key = f"{debtor.campaign.slug}-{debtor.id}-{step}-{channel}"
    outbox = Path(settings.data_dir) / "outbox"
    owed = creditor_for(session, debtor)  # kept per session: one query per creditor a run
    view = build_view(
        debtor, debtor.campaign, base_url=settings.base_url,
        paid_minor=ledger.paid_minor(session, debtor), tone=decision.tone, creditor=owed,
    )  # fmt: skip
    link = email_channel.links(
        settings.base_url, debtor.token, channel,
        unsubscribe=unsublink.credential(settings.secret_key, debtor.id, channel),
    )  # fmt: skip
    try:
        if channel == "email":
            row.message_id = email_channel.new_message_id(key, settings.base_url)
            sender = email_channel.sender(debtor.campaign, settings, owed.display_sender)
            message = email_channel.compose_email(
                view, address, sender=sender,
                reply_to=owed.email or (debtor.campaign.settings or {}).get("reply_to"), link=link,
                message_id=row.message_id,
            )  # fmt: skip
            email_channel.send_email(message, settings.smtp_url, outbox, key)
        elif channel == "sms":
            text = _sms_text(debtor, decision, f"{settings.base_url}/c/{debtor.token}?c=sms", view)
            if text is None:
                raise ValueError("no SMS text of this tone fits the segment limit")
            row.parts = sms.count(text).parts
            row.message_id = sms.send_sms(sms.Sms(address, text, key), settings.sms_webhook_url,
                                          outbox)  # fmt: skip
        else:
            # Letters go out in print batches (kindly.messaging.print_batches): they pick up
            # "print" rows and record `sent` when the batch is produced.
            row.status, row.sent_at = "print", at or dt.datetime.now(dt.UTC)
            metrics.count_send(channel, "print")
            stepcosts.book(session, debtor, decision, step, channel, at)
            return row
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        return _bounced(session, debtor, row, code, reply.decode(errors="replace"))
    except Exception as exc:
        row.status, row.error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        session.commit()
        metrics.count_send(channel, "failed", type(exc).__name__)
        raise
    # Only a gateway's acceptance is `sent`; a file in the outbox folder reached nobody.
    status = "sent" if _gateway(settings, channel) else "outbox"
    metrics.count_send(channel, status)
    row.status, row.sent_at, row.error = status, at or dt.datetime.now(dt.UTC), None
    events.record(
        session, debtor, status, channel=channel, key=f"{status}:{debtor.id}:{step}:{channel}",
        data={"step": step, "message_id": row.message_id},
    )  # fmt: skip
    stepcosts.book(session, debtor, decision, step, channel, at)
    return row


def _held(channel: str, reason: str) -> None:
    """Count a planned message that may not go now after all (kindly_sends_total)."""
    metrics.count_send(channel, "held", reason)
    return None


def _gateway(settings: Settings, channel: str) -> str | None:
    """The gateway that takes this channel's messages; None: they go to the outbox folder."""
    return settings.smtp_url if channel == "email" else settings.sms_webhook_url


def in_outbox(session: Session, campaign_id: int) -> dict[str, int]:
    """Per channel, the campaign's messages only written to the outbox folder."""
    rows = session.execute(
        select(Send.channel, func.count(Send.id))
        .where(Send.campaign_id == campaign_id, Send.status == "outbox")
        .group_by(Send.channel)
    ).all()
    return {channel: int(count) for channel, count in sorted(rows)}


def _bounced(session: Session, debtor: Debtor, row: Send, code: int, reply: str) -> Send:
    """An SMTP refusal at send time: hard blocks the address, soft is retried later."""
    from kindly.messaging.bounces import classify_status, status_code

    kind = classify_status(status_code(reply) or f"{code // 100}.0.0", reply)
    row.error = f"{code} {reply}"[:2000]
    metrics.count_send(row.channel, "bounced", kind)
    if kind == "hard":
        row.status = "bounced"
        optout.add(session, row.address or "", row.channel, "bounced_hard",
                   campaign_id=debtor.campaign_id)  # fmt: skip
        events.record(session, debtor, "bounced_hard", channel=row.channel,
                      key=f"bounced_hard:{row.id}", data={"reply": row.error})  # fmt: skip
    elif kind == "soft":
        row.status = "failed"
        events.record(session, debtor, "bounced_soft", channel=row.channel,
                      data={"reply": row.error, "attempt": row.attempts})  # fmt: skip
        session.commit()
        raise RuntimeError(f"soft bounce, will retry: {row.error}")
    else:
        row.status = "failed"  # a policy block is about the sender, not the debtor
    return row
