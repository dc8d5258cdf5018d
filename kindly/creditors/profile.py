"""Whose claim a debtor's messages name: the debtor's own creditor, resolved to its profile.

A debtor's `creditor` column names the creditor (the campaign's `creditor` when empty). The
profile of that name gives the address, contact, bank account, authority, logo and colour.
The campaign's older letter settings (`creditor_address`, `contact`, `payee_name`, `iban`,
`bic`, `logo`, and its brand colour) fill only fields the profile lacks, and only for the
creditor they were written for: the campaign's own, or the only one its debtors name. A
Northern Water debtor in a Stadtwerke campaign never gets the Stadtwerke's account.

The profile rows are kept in the session (`session.info`), so a run over thousands of debtors
asks the database once per creditor; `set_creditor` empties that cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from kindly.campaigns.logo import stored_key
from kindly.campaigns.models import Campaign, Debtor
from kindly.creditors.models import Creditor
from kindly.creditors.service import CACHE, split_address

DEFAULT_COLOUR = "#1f5f8b"


@dataclass(frozen=True)
class CreditorProfile:
    """One creditor as the messages name it; plain text, resolved with the campaign's fallbacks."""

    name: str
    legal_form: str = ""
    address: tuple[str, ...] = ()
    sender_name: str = ""  # the From display name of emails
    email: str = ""  # Reply-To
    phone: str = ""
    payee_name: str = ""  # the account holder of `iban`
    iban: str = ""
    bic: str = ""
    authority: str = ""  # the supervisory authority, when one applies
    logo: str = ""  # a storage key, or ""
    brand_color: str = DEFAULT_COLOUR
    contact: str = ""  # phone and email for people: "+49 30 1234567 · service@example.org"
    recorded: bool = False  # a profile row exists for this name

    @property
    def display_sender(self) -> str:
        """The name an email is sent under."""
        return self.sender_name or self.name


def _record(session: Session | None, name: str) -> Creditor | None:
    if session is None or not name:
        return None
    cache = session.info.setdefault(CACHE, {})
    key = ("record", name)
    if key not in cache:
        cache[key] = session.scalar(select(Creditor).where(Creditor.name == name))
    return cache[key]


def _owns_settings(session: Session | None, campaign: Campaign, name: str) -> bool:
    """Whether the campaign's letter settings describe this creditor."""
    if campaign.creditor:
        return name == campaign.creditor
    if session is None or campaign.id is None:
        return True
    cache = session.info.setdefault(CACHE, {})
    key = ("names", campaign.id)
    if key not in cache:
        cache[key] = session.scalar(
            select(func.count(func.distinct(Debtor.creditor))).where(
                Debtor.campaign_id == campaign.id, Debtor.creditor.is_not(None)
            )
        )
    return cache[key] <= 1


def profile_named(session: Session | None, campaign: Campaign, name: str) -> CreditorProfile:
    """The profile of `name` as used in `campaign` (the campaign's settings fill its gaps)."""
    row = _record(session, name)
    owns = _owns_settings(session, campaign, name)
    old = (campaign.settings or {}) if owns else {}
    own = {
        "legal_form": row.legal_form if row else "",
        "address": tuple(row.address or ()) if row else (),
        "sender_name": row.email_sender_name if row else "",
        "email": row.email_address if row else "",
        "phone": row.phone if row else "",
        "payee_name": row.payee_name if row else "",
        "iban": row.iban if row else "",
        "bic": row.bic if row else "",
        "authority": row.supervisory_authority if row else "",
        "logo": row.logo if row else "",
        "brand_color": row.brand_color if row else "",
    }
    if not own["address"]:
        own["address"] = tuple(split_address(_text(old.get("creditor_address"))))
    if not own["iban"]:  # the account and its holder come as a pair, never mixed
        own["iban"], own["bic"] = _text(old.get("iban")), _text(old.get("bic"))
        own["payee_name"] = _text(old.get("payee_name"))
    if not own["payee_name"] and own["iban"]:
        own["payee_name"] = name
    if not own["logo"]:
        own["logo"] = stored_key(old.get("logo"), campaign.slug) or ""
    if not own["brand_color"] and owns:
        own["brand_color"] = campaign.brand_color or ""
    contact = " · ".join(part for part in (own["phone"], own["email"]) if part)
    return CreditorProfile(
        name=name,
        contact=contact or _text(old.get("contact")),
        recorded=row is not None,
        **{**own, "brand_color": own["brand_color"] or DEFAULT_COLOUR},
    )


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def creditor_name(debtor: Debtor, campaign: Campaign | None = None) -> str:
    """The name of the debtor's creditor: their own row's, else the campaign's."""
    campaign = campaign or debtor.campaign
    return (debtor.creditor or campaign.creditor or "").strip()


def creditor_for(
    session: Session | None, debtor: Debtor, campaign: Campaign | None = None
) -> CreditorProfile:
    """The profile of the debtor's own creditor (see the module's docstring)."""
    campaign = campaign or debtor.campaign
    if session is None:
        session = object_session(debtor)
    return profile_named(session, campaign, creditor_name(debtor, campaign))
