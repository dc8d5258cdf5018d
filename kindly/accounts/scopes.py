"""Which campaigns a user or an API key may reach: all, or those of some creditors and slugs.

A scope is stored as JSON on the user and on the key (None: every campaign). A key's access
is its user's scope and its own together: a campaign must be admitted by both, so a key never
reaches more than its user. Every campaign lookup of the dashboard and the API goes through
`find_campaign`, every campaign list through `visible`; a campaign out of scope is answered
exactly like one that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from kindly.accounts.models import ApiToken, User
from kindly.campaigns.models import Campaign
from kindly.errors import KindlyError

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class ScopeError(KindlyError):
    """A scope cannot be set as asked."""


@dataclass(frozen=True)
class Scope:
    """Campaigns whose creditor is in `creditors` or whose slug is in `campaigns`."""

    creditors: frozenset[str] = frozenset()
    campaigns: frozenset[str] = frozenset()

    def condition(self) -> Any:
        """The same test as `allows`, as a SQL condition on Campaign."""
        return or_(
            Campaign.creditor.in_(sorted(self.creditors)), Campaign.slug.in_(sorted(self.campaigns))
        )

    def to_json(self) -> dict[str, list[str]]:
        """The stored form."""
        return {"creditors": sorted(self.creditors), "campaigns": sorted(self.campaigns)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Scope | None:
        """The stored form read back; None means every campaign."""
        if data is None:
            return None
        return cls(frozenset(data.get("creditors") or ()), frozenset(data.get("campaigns") or ()))

    def describe(self) -> str:
        """For people: 'creditors: A, B; campaigns: x'."""
        parts = [f"creditors: {', '.join(sorted(self.creditors))}"] if self.creditors else []
        parts += [f"campaigns: {', '.join(sorted(self.campaigns))}"] if self.campaigns else []
        return "; ".join(parts) or "nothing"


Access = tuple[Scope, ...]
"""Every scope must admit a campaign; the empty tuple reaches every campaign."""

EVERYTHING: Access = ()


def access_of(user: User, token: ApiToken | None = None) -> Access:
    """What a signed-in user (or one of their keys) may reach."""
    scopes = [Scope.from_json(user.scope)]
    if token is not None:
        scopes.append(Scope.from_json(token.scope))
    return tuple(s for s in scopes if s is not None)


def visible(query: Select, access: Access) -> Select:
    """The query over Campaign limited to the campaigns in scope."""
    if not access:
        return query
    return query.where(and_(*(scope.condition() for scope in access)))


def find_campaign(session: Session, slug: str, access: Access) -> Campaign | None:
    """The campaign by slug if it exists and is in scope, else None (never 'exists but ...')."""
    return session.scalar(visible(select(Campaign).where(Campaign.slug == slug), access))


def may_name_creditor(access: Access, creditor: str | None) -> bool:
    """Whether a campaign may be created for (or moved to) this creditor: every scope lists it.

    A campaign-only scope names no creditor, so its holder creates no campaigns: the new
    campaign would be out of their reach, or would widen another creditor's.
    """
    return all(creditor is not None and creditor in scope.creditors for scope in access)


def make_scope(
    session: Session, creditors: Iterable[str], campaigns: Iterable[str], access: Access = ()
) -> Scope | None:
    """A scope from what was typed, naming only campaigns `access` reaches; None when empty."""
    names = {c.strip() for c in creditors if c.strip()}
    slugs = {c.strip() for c in campaigns if c.strip()}
    if not names and not slugs:
        return None
    long = sorted(n for n in names if len(n) > 200)
    if long:
        raise ScopeError(f"a creditor has at most 200 characters: {long[0][:40]!r}…")
    bad = sorted(s for s in slugs if not SLUG.match(s))
    query = visible(select(Campaign.slug).where(Campaign.slug.in_(sorted(slugs))), access)
    known = set(session.scalars(query))
    unknown = bad or sorted(slugs - known)
    if unknown:
        raise ScopeError(f"no campaign {', '.join(repr(s) for s in unknown)}")
    return Scope(frozenset(names), frozenset(slugs))


def stored(scope: Scope | None) -> dict[str, list[str]] | None:
    """The JSON to store for a scope (None: every campaign)."""
    return None if scope is None else scope.to_json()


def describe(data: dict[str, Any] | None) -> str:
    """A stored scope for people: 'all campaigns' or its creditors and campaigns."""
    scope = Scope.from_json(data)
    return "all campaigns" if scope is None else scope.describe()
