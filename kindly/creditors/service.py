"""Set, read and list creditor profiles; every value is checked before anything is written.

A profile is global: an agency collects for the same creditor in several campaigns. Who may
see or change one follows the campaigns a user or API key reaches (kindly.accounts.scopes):
a creditor is in reach when a campaign in reach names it (as its default or in a debtor's
row) or every scope lists it by name; it may be changed only when, besides, no campaign out
of reach names it, so an edit never changes letters someone else is responsible for.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kindly.accounts.scopes import Access, visible
from kindly.campaigns.logo import LogoError, prepare
from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio.validate import CONTROL, EMAIL
from kindly.creditors.models import Creditor
from kindly.errors import KindlyError
from kindly.infra.db import as_utc
from kindly.payments.iban import PAYEE_NAME_MAX, bic_error, compact, iban_error

FIELDS = {
    "legal_form": 60,
    "address": 300,  # per line
    "email_sender_name": 200,
    "email_address": 254,
    "phone": 32,
    "payee_name": PAYEE_NAME_MAX,
    "iban": 34,
    "bic": 11,
    "supervisory_authority": 300,
    "logo": 200,
    "brand_color": 7,
}
"""Every field a profile has besides its name, with its longest allowed value."""
NAME_MAX = 200  # as long as a debtor's `creditor` column
ADDRESS_LINES = 6
LOGO_KEY = re.compile(r"creditors/logo/[0-9a-f]{64}\.png")
"""A logo stored by `store_logo`; the profile keeps this key, never a path."""
_PHONE = re.compile(r"\+[0-9][0-9 ()/.-]{5,30}")
_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
CACHE = "kindly.creditors"
"""The session.info key under which resolved profiles are kept (kindly.creditors.profile)."""


class CreditorError(KindlyError):
    """A profile cannot be saved as asked; every reason is listed, nothing was changed."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


def split_address(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """Address lines from a list, or from text separated by new lines or semicolons."""
    parts = value if isinstance(value, list | tuple) else re.split(r"[\n;]", value)
    return [" ".join(str(line).split()) for line in parts if str(line).strip()]


def _colour(value: str) -> str:
    """#abc as #aabbcc, lower case."""
    value = value.lower()
    return "#" + "".join(c * 2 for c in value[1:]) if len(value) == 4 else value


def normalise(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The values as they are stored, and every problem with them (unknown keys too)."""
    errors = [f"unknown field {key!r} (known: name, {', '.join(FIELDS)})"
              for key in values if key not in FIELDS]  # fmt: skip
    out: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in FIELDS or raw is None:
            continue
        if key == "address":
            if not isinstance(raw, str | list | tuple) or not all(
                isinstance(line, str) for line in (raw if not isinstance(raw, str) else [raw])
            ):
                errors.append("address must be text or a list of lines")
                continue
            lines = split_address(raw)
            if len(lines) > ADDRESS_LINES:
                errors.append(f"address has {len(lines)} lines; a letter has room for "
                              f"{ADDRESS_LINES}")  # fmt: skip
            errors += [f"address line {line[:40]!r}… is longer than {FIELDS[key]} characters"
                       for line in lines if len(line) > FIELDS[key]]  # fmt: skip
            errors += ["address has a control character" for line in lines if CONTROL.search(line)]
            out[key] = lines
            continue
        if not isinstance(raw, str):
            errors.append(f"{key} must be text")
            continue
        value = " ".join(raw.split())
        if CONTROL.search(raw.replace("\n", " ")):
            errors.append(f"{key} has a control character")
        if key in ("iban", "bic"):
            value = compact(value)
        error = (
            (iban_error(value) if key == "iban" else bic_error(value))
            if value and key in ("iban", "bic")
            else None
        )
        if error:
            errors.append(error)
        elif value and key == "email_address" and not EMAIL.match(value):
            errors.append(f"email {value!r} is not an email address (name@example.org)")
        elif (
            value
            and key == "phone"
            and (not _PHONE.fullmatch(value) or not 7 <= len(re.sub(r"\D", "", value)) <= 15)
        ):
            errors.append(f"phone {value!r}: write it internationally, e.g. +49 30 1234567")
        elif value and key == "brand_color":
            if not _COLOUR.fullmatch(value):
                errors.append(f"colour {value!r} is not a hex colour such as #1f5f8b")
            else:
                value = _colour(value)
        elif value and key == "logo" and not LOGO_KEY.fullmatch(value):
            errors.append("logo: upload the picture (PNG or JPEG); a path is not used")
        elif len(value) > FIELDS[key]:
            errors.append(f"{key} has {len(value)} characters; at most {FIELDS[key]}")
        out[key] = value
    return out, errors


def check_name(name: str) -> list[str]:
    """Why `name` cannot name a creditor (empty when it can)."""
    if not name.strip():
        return ["a creditor needs a name (as the portfolio's creditor column writes it)"]
    if len(name) > NAME_MAX:
        return [f"the name has {len(name)} characters; at most {NAME_MAX}"]
    if any(unicodedata.category(char) == "Cc" for char in name):
        return ["the name has a control character"]
    return []


def prepare_logo(data: bytes) -> tuple[str, bytes]:
    """An uploaded logo (PNG or JPEG) checked and re-encoded: its key for the profile and the
    PNG to keep there once the profile is saved (`Storage.put(key, png, "image/png")`)."""
    try:
        png = prepare(data)
    except LogoError as exc:
        raise CreditorError([str(exc)]) from None
    return f"creditors/logo/{hashlib.sha256(png).hexdigest()}.png", png


def set_creditor(session: Session, name: str, values: Mapping[str, Any]) -> Creditor:
    """Create or change the profile `name` with `values` (fields not given keep theirs).

    Raises CreditorError with every problem and changes nothing when any value is wrong.
    """
    name = " ".join(name.split())
    changes, errors = normalise(values)
    errors = check_name(name) + errors
    row = get_creditor(session, name)
    if not errors:
        merged = {key: getattr(row, key) if row else "" for key in FIELDS} | changes
        payee = merged["payee_name"] or name
        if merged["iban"] and len(payee) > PAYEE_NAME_MAX:
            errors.append(f"the account holder's name has {len(payee)} characters; a transfer "
                          f"allows {PAYEE_NAME_MAX}: give --payee-name")  # fmt: skip
        if merged["bic"] and not merged["iban"]:
            errors.append("a BIC is given without an IBAN")
    if errors:
        raise CreditorError(errors)
    if row is None:
        row = Creditor(name=name, address=[])
        for key in FIELDS:
            if key != "address":
                setattr(row, key, "")
        session.add(row)
    for key, value in changes.items():
        setattr(row, key, value)
    session.flush()
    session.info.pop(CACHE, None)  # profiles resolved earlier in this session are stale now
    return row


def get_creditor(session: Session, name: str) -> Creditor | None:
    """The profile of this exact name, or None."""
    return session.scalar(select(Creditor).where(Creditor.name == name))


def list_creditors(session: Session, access: Access = ()) -> list[Creditor]:
    """Every profile in reach, by name."""
    rows = session.scalars(select(Creditor).order_by(Creditor.name)).all()
    if not access:
        return list(rows)
    reach = names_in_reach(session, access)
    return [row for row in rows if row.name in reach]


def names_used(session: Session, access: Access = ()) -> set[str]:
    """The creditor names campaigns in reach use: as their default or in a debtor's row."""
    campaigns = visible(select(Campaign.id), access).scalar_subquery()
    defaults = session.scalars(
        visible(select(Campaign.creditor), access).where(Campaign.creditor.is_not(None))
    )
    rows = session.scalars(
        select(Debtor.creditor)
        .where(Debtor.campaign_id.in_(campaigns), Debtor.creditor.is_not(None))
        .distinct()
    )
    return {name for name in [*defaults, *rows] if name}


def names_in_reach(session: Session, access: Access) -> set[str]:
    """Names a scoped user may see: used in a campaign they reach, or listed by every scope."""
    listed = set.intersection(*(set(scope.creditors) for scope in access)) if access else set()
    return names_used(session, access) | listed


def may_see(session: Session, access: Access, name: str) -> bool:
    """Whether a profile of this name is in reach (everything is without a scope)."""
    return not access or name in names_in_reach(session, access)


def may_change(session: Session, access: Access, name: str) -> bool:
    """In reach, and named by no campaign out of reach (whose letters the edit would change)."""
    if not access:
        return True
    if not may_see(session, access, name):
        return False
    hidden = select(Campaign.id).where(
        Campaign.id.not_in(visible(select(Campaign.id), access).scalar_subquery())
    )
    elsewhere = session.scalar(
        select(Campaign.id)
        .where(
            Campaign.id.in_(hidden.scalar_subquery()),
            or_(
                Campaign.creditor == name,
                Campaign.id.in_(select(Debtor.campaign_id).where(Debtor.creditor == name)),
            ),
        )
        .limit(1)
    )
    return elsewhere is None


def as_dict(row: Creditor) -> dict[str, Any]:
    """A profile as the API and `kindly creditor show --json` give it."""
    return {
        "name": row.name,
        **{key: list(row.address or []) if key == "address" else getattr(row, key) or ""
           for key in FIELDS},
        "updated_at": as_utc(row.updated_at).isoformat() if row.updated_at else None,
    }  # fmt: skip
