"""The campaign's rules in the dashboard: read them, edit them, see every problem at once."""

from __future__ import annotations

import datetime as dt

from flask import g, redirect, render_template, request

from kindly.accounts import audit
from kindly.accounts.users import can
from kindly.rules.document import RulesError
from kindly.rules.store import canonical, current_rules, decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.site import artifacts
from web.admin.campaigns import find_campaign
from web.admin.common import bp, requires
from web.context import context
from workers.render import queue_rebuild


@bp.route("/campaigns/<slug>/rules", methods=["GET", "POST"])
@requires("read")
def campaign_rules(slug: str):
    """GET shows the rules in force; a manager's POST validates, saves and decides."""
    errors: list[str] = []
    saved = None
    with context().db.session() as db:
        campaign = find_campaign(db, slug)
        rules = current_rules(db, campaign)
        text = canonical(rules.document) if rules.document else "{}"
        if request.method == "POST":
            if not can(g.user, "manage"):
                message = "Viewers can read the rules but not change them."
                return render_template(
                    "admin/message.html", title="Not allowed", message=message
                ), 403
            text = request.form.get("document", "")
            try:
                new = parse_rules(text)
            except RulesError as exc:
                errors = exc.errors
            else:
                saved = save_rules(db, campaign, new)
                counts = decide(db, campaign, saved, dt.date.today())
                if saved.version != rules.version:  # tones, channels: every kind may change
                    artifacts.mark_stale(db, campaign.id, "rules")
                audit.record(db, g.user, "rules.change", via="web", campaign_id=campaign.id,
                             before=f"v{rules.version}", after=f"v{saved.version}")  # fmt: skip
                campaign_id = campaign.id
    if saved is not None:
        queue_rebuild(context(), campaign_id)  # after the commit: the jobs read the new rules
        return redirect(f"/admin/campaigns/{slug}/rules?saved={saved.version}"
                        f"&debtors={sum(counts.values())}", code=303)  # fmt: skip
    return render_template(
        "admin/rules.html", slug=slug, version=rules.version, text=text, errors=errors,
        saved=request.args.get("saved"), debtors=request.args.get("debtors"),
    ), (422 if errors else 200)  # fmt: skip
