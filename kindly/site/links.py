"""What the front needs to serve a link from storage alone, for when the database is down.

When a debtor's page is rendered, a small record is stored beside it under a hash of the
token (never the token itself: storage keys reach access logs): the debtor and campaign ids
that events need, the variant, the identity check, when the link expires and where the page
is. While PostgreSQL is unreachable the front reads this record instead of the database,
serves the stored page and buffers the view; without the database nothing else can be done
(paying, forms), and those answer 503.

The record is as fresh as the last rendering: a campaign that turns an identity check on
should re-render (`kindly render SLUG`), or an outage serves its pages ungated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass

from sqlalchemy.orm import Session

from kindly.campaigns.models import Debtor
from kindly.campaigns.tokens import new_token
from kindly.infra.storage import Storage, is_debtor_key
from kindly.site import identity

CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class LinkRecord:
    """A link's facts as of its last rendering."""

    debtor_id: int
    campaign_id: int
    variant: str
    check: str
    expires_at: str  # ISO 8601, UTC
    site_key: str
    lang: str  # the page's language, for what the front adds to it

    @property
    def expires(self) -> dt.datetime:
        """When the link stops working."""
        return dt.datetime.fromisoformat(self.expires_at)


def record_key(token: str) -> str:
    """Where a token's record lives: a hash of it, so keys carry no usable token."""
    return f"links/{hashlib.sha256(token.encode()).hexdigest()}.json"


def save(storage: Storage, debtor: Debtor, site_key: str, lang: str) -> LinkRecord:
    """Store the record of the debtor's link (after the page is stored)."""
    expires = identity.expires_at(debtor.campaign, debtor)
    record = LinkRecord(
        debtor_id=debtor.id,
        campaign_id=debtor.campaign_id,
        variant=debtor.variant,
        check=identity.method(debtor.campaign, debtor),
        expires_at=expires.isoformat(),
        site_key=site_key,
        lang=lang,
    )
    storage.put(record_key(debtor.token), json.dumps(asdict(record)).encode(), CONTENT_TYPE)
    return record


def find(storage: Storage, token: str) -> LinkRecord | None:
    """The token's record, or None when the link was never rendered (or was erased)."""
    try:
        data = json.loads(storage.get(record_key(token)))
    except KeyError:
        return None
    record = LinkRecord(**data)
    # A record from before migration 0980 names a reference-named page that another debtor's
    # page may have overwritten: only a page in the debtor's own folder is served.
    return record if is_debtor_key(record.site_key, record.debtor_id) else None


def forget(storage: Storage, token: str) -> None:
    """Remove the token's record (an erased debtor's link must die everywhere)."""
    storage.delete(record_key(token))


def reissue(session: Session, debtor: Debtor, storage: Storage | None = None) -> str:
    """Give the debtor a new link: the old token answers 404 at once, and the identity
    check's tries and locks start afresh (a lock for good lasts until this). Returns the
    new token; the debtor's artifacts carry the old one until they are rendered again."""
    if storage is not None:
        forget(storage, debtor.token)  # nor may an outage serve the old link
    identity.forget(session, debtor)
    debtor.token = new_token()
    session.flush()
    return debtor.token
