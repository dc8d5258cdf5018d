"""Opt-outs and the suppression list, honoured on every channel."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.messaging.models import OptOut
from kindly.tracking import events
from kindly.tracking.models import Event

ALL = "*"
"""The channel of an entry that blocks every channel."""


def normalise(address: str) -> str:
    """Email lower-cased, phone without spaces: one spelling per address."""
    address = address.strip()
    return address.lower() if "@" in address else address.replace(" ", "")


def address_of(debtor: Debtor, channel: str) -> str | None:
    """Where a channel reaches the debtor (None when it cannot)."""
    if channel == "email":
        return normalise(debtor.email) if debtor.email else None
    if channel == "sms":
        return normalise(debtor.phone) if debtor.phone else None
    if channel == "letter":
        if debtor.street and debtor.city:
            return f"{debtor.street}, {debtor.postal_code or ''} {debtor.city}".strip()[:320]
        return None
    raise ValueError(f"unknown channel {channel!r}")


def blocked(session: Session, address: str, channel: str) -> str | None:
    """The reason an address may not be used on a channel ("opted_out", "suppressed",
    "bounced_hard"), or None."""
    reason = session.scalar(
        select(OptOut.reason).where(
            OptOut.address == normalise(address), OptOut.channel.in_((channel, ALL))
        )
    )
    if reason is None:
        return None
    return {"debtor": "opted_out", "suppression": "suppressed"}.get(reason, reason)


def add(
    session: Session,
    address: str,
    channel: str,
    reason: str,
    *,
    campaign_id: int | None = None,
) -> bool:
    """Block an address on a channel (or '*'); False when it already was."""
    address = normalise(address)
    if session.scalar(
        select(OptOut.id).where(OptOut.address == address, OptOut.channel == channel)
    ):
        return False
    try:
        with session.begin_nested():
            session.add(OptOut(address=address, channel=channel, reason=reason,
                               campaign_id=campaign_id))  # fmt: skip
    except IntegrityError:
        return False  # recorded by a concurrent request
    return True


def opt_out(session: Session, debtor: Debtor, channel: str, *, source: str = "link") -> bool:
    """The debtor asked for no more messages on a channel ('*' for all): block and record it.

    The web front calls this for the List-Unsubscribe one-click POST (RFC 8058); a GET must
    only show a confirmation page, because mail scanners follow links.
    """
    channels = ("email", "sms", "letter") if channel == ALL else (channel,)
    added = False
    for name in channels:
        address = address_of(debtor, name)
        if address:
            added |= add(session, address, name, "debtor", campaign_id=debtor.campaign_id)
    if added:
        events.record(session, debtor, "opted_out", channel=None if channel == ALL else channel,
                      data={"source": source, "channel": channel})  # fmt: skip
    return added


def own_opt_outs(session: Session, debtor: Debtor) -> frozenset[str]:
    """The channels the debtor themself stopped (reason "debtor"; not suppressions or bounces)."""
    stopped = set()
    for name in ("email", "sms", "letter"):
        address = address_of(debtor, name)
        if address and session.scalar(
            select(OptOut.id).where(
                OptOut.address == address,
                OptOut.channel.in_((name, ALL)),
                OptOut.reason == "debtor",
            )
        ):
            stopped.add(name)
    return frozenset(stopped)


def chosen_channel(session: Session, debtor: Debtor) -> str:
    """The channel the debtor last chose on their page, else the one the rules chose."""
    data = session.scalar(
        select(Event.data)
        .where(Event.debtor_id == debtor.id, Event.type == "preference")
        .order_by(Event.id.desc())
        .limit(1)
    )
    chosen = (data or {}).get("preferred_channel")
    return chosen if chosen in ("email", "sms", "letter") else debtor.channel


def opt_in(session: Session, debtor: Debtor, channel: str, *, source: str = "microsite") -> bool:
    """The debtor wants messages on a channel again: lift their own opt-out there (this
    campaign's, or one of unknown origin) and record `opted_in`; a suppression or a hard
    bounce stays. False when there was nothing of theirs to lift."""
    address = address_of(debtor, channel)
    if address is None:
        return False
    own = session.scalars(
        select(OptOut).where(
            OptOut.address == address,
            OptOut.channel.in_((channel, ALL)),
            OptOut.reason == "debtor",
            or_(OptOut.campaign_id == debtor.campaign_id, OptOut.campaign_id.is_(None)),
        )
    ).all()
    for row in own:
        session.delete(row)
    if not own:
        return False
    session.flush()
    events.record(session, debtor, "opted_in", channel=channel,
                  data={"source": source, "channel": channel})  # fmt: skip
    return True


def unsubscribe(session: Session, token: str, channel: str = "email") -> bool:
    """One-click unsubscribe by the link's token; False for an unknown token."""
    debtor = session.scalar(select(Debtor).where(Debtor.token == token))
    if debtor is None:
        return False
    opt_out(session, debtor, channel if channel in ("email", "sms", "letter") else ALL,
            source="list-unsubscribe")  # fmt: skip
    return True
