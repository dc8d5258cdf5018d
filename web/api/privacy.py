"""/api/v1 privacy: everything held about one debtor (export), and erasing it."""

from __future__ import annotations

from flask import g

from kindly import privacy
from kindly.accounts import audit
from web import refpath
from web.api.common import authenticated, bp, campaign_or_404, problem
from web.context import context


@bp.get("/campaigns/<slug>/debtors/<reference>/export")
@authenticated("manage")
def debtor_export(slug: str, reference: str):
    """Everything held about one debtor (GDPR Art. 15)."""
    reference = refpath.reference(reference)  # `/` arrives as ~2F (web.refpath)
    with context().db.session() as db:
        campaign_or_404(db, slug)  # a campaign out of the key's scope is answered as absent
        try:
            campaign, debtor = privacy.find(db, slug, reference)
        except privacy.NotFoundError as exc:
            return problem(404, str(exc))
        data = privacy.export_debtor(db, campaign, debtor)
        audit.record(db, g.api_user, "privacy.export", via="api", campaign_id=campaign.id,
                     reference=reference)  # fmt: skip
    return data


@bp.post("/campaigns/<slug>/debtors/<reference>/erase")
@authenticated("admin")
def debtor_erase(slug: str, reference: str):
    """Anonymise one debtor; amounts, payments and event counts stay (GDPR Art. 17)."""
    reference = refpath.reference(reference)
    ctx = context()
    with ctx.db.session() as db:
        campaign_or_404(db, slug)
        try:
            campaign, debtor = privacy.find(db, slug, reference)
        except privacy.NotFoundError as exc:
            return problem(404, str(exc))
        done = privacy.erase_debtor(db, debtor, ctx.storage)
        audit.record(db, g.api_user, "privacy.erase", via="api", campaign_id=campaign.id,
                     reference=reference, events_scrubbed=done["events_scrubbed"],
                     artifacts_deleted=done["artifacts_deleted"])  # fmt: skip
    return done
