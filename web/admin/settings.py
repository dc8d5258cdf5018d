"""A campaign's settings in the dashboard: brand, defaults, identity check, letter options and
text overrides. Every problem is listed at once and nothing is saved until all are fixed."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from flask import g, redirect, render_template, request

from kindly.accounts import audit
from kindly.accounts.scopes import access_of, may_name_creditor
from kindly.campaigns import logo as campaign_logo
from kindly.campaigns.logo import LOGO_KEY
from kindly.campaigns.service import LOCALES
from kindly.payments import allocation
from kindly.payments.iban import LETTER_KEYS, validate_letter_settings
from kindly.rules.document import TONES
from kindly.site import artifacts
from kindly.site.identity import METHODS, validate_site_settings
from renderer.texts import load_texts
from web.admin.campaigns import find_campaign
from web.admin.common import bp, requires
from web.context import context
from workers.render import queue_rebuild

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
NUMBERS = ("link_days", "promise_max_days", "retention_days")
FORM_LETTER_KEYS = tuple(key for key in LETTER_KEYS if key != "logo")  # the logo is uploaded


@cache
def site_texts() -> tuple[frozenset[str], frozenset[str]]:
    """(languages, keys) of the site's message catalogues: what an override may name."""
    site = load_texts("site")
    langs = frozenset(site.languages())
    keys = frozenset(key for lang in langs for key in site.for_lang(lang, "firm"))
    return langs, keys


def check_texts(text: str) -> tuple[dict[str, Any] | None, list[str]]:
    """Parse the overrides {tone or "*": {lang: {key: text}}}; (document, problems)."""
    if not text.strip():
        return None, []
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [f"texts: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"]
    if not isinstance(document, dict):
        return None, ['texts: must be an object {tone or "*": {language: {key: text}}}']
    langs, keys = site_texts()
    problems = []
    for tone, by_lang in document.items():
        if tone != "*" and tone not in TONES:
            problems.append(f'texts: {tone!r} is not "*" or a tone ({", ".join(TONES)})')
            continue
        if not isinstance(by_lang, dict):
            problems.append(f"texts.{tone}: must be an object of languages")
            continue
        for lang, texts in by_lang.items():
            if lang not in langs:
                problems.append(f"texts.{tone}: {lang!r} is not one of {', '.join(sorted(langs))}")
                continue
            if not isinstance(texts, dict):
                problems.append(f"texts.{tone}.{lang}: must be an object of texts")
                continue
            for key, value in texts.items():
                if key not in keys:
                    problems.append(f"texts.{tone}.{lang}: {key!r} is not a text of the microsite")
                elif error := load_texts("site").override_error(key, value):
                    problems.append(f"texts.{tone}.{lang}.{key}: {error}")
    return document, problems


def _form_from(campaign) -> dict[str, str]:
    settings = campaign.settings or {}
    form = {
        "brand_color": campaign.brand_color or "", "default_locale": campaign.default_locale,
        "creditor": campaign.creditor or "", "contract": campaign.contract or "",
        "identity_check": settings.get("identity_check", "none"),
        "texts": json.dumps(settings["texts"], ensure_ascii=False, indent=2)
        if settings.get("texts") else "",
    }  # fmt: skip
    for key in NUMBERS:
        form[key] = str(settings[key]) if key in settings else ""
    order = (settings.get("payments") or {}).get(allocation.KEY)
    form["allocation_order"] = ", ".join(map(str, order)) if isinstance(order, list) else ""
    for key in FORM_LETTER_KEYS:
        form[key] = str(settings.get(key) or "")
    return form


def _logo_state(settings: dict[str, Any]) -> str | None:
    """Whether a logo is "stored", an "old path" (saved by older versions, unused) or None."""
    value = settings.get("logo")
    if not value:
        return None
    return "stored" if LOGO_KEY.fullmatch(str(value)) else "old path"


def _logo_upload(settings: dict[str, Any]) -> tuple[bytes | None, list[str]]:
    """The uploaded logo, checked but not stored yet; applies "remove" and drops an old path."""
    if request.form.get("logo_remove") or _logo_state(settings) == "old path":
        settings.pop("logo", None)
    upload = request.files.get("logo_file")
    if upload is None or not upload.filename:
        return None, []
    try:
        return campaign_logo.prepare(upload.stream.read(campaign_logo.MAX_BYTES + 1)), []
    except campaign_logo.LogoError as exc:
        return None, [str(exc)]


@bp.route("/campaigns/<slug>/settings", methods=["GET", "POST"])
@requires("manage")
def campaign_settings(slug: str):
    """GET shows the settings; POST validates everything and saves only when all is well."""
    problems: list[str] = []
    with context().db.session() as db:
        campaign = find_campaign(db, slug)
        if request.method == "GET":
            return render_template("admin/settings.html", slug=slug, name=campaign.name,
                                   form=_form_from(campaign), problems=[],
                                   logo=_logo_state(campaign.settings or {}),
                                   saved=request.args.get("saved"), **_choices())  # fmt: skip
        form = {key: request.form.get(key, "").strip() for key in _form_from(campaign)}
        form["texts"] = request.form.get("texts", "")
        if not COLOUR.match(form["brand_color"]):
            problems.append("brand colour: write it as #rrggbb, e.g. #1f5f8b")
        if form["default_locale"] not in LOCALES:
            problems.append(f"default language: one of {', '.join(LOCALES)}")
        if len(form["creditor"]) > 200:
            problems.append("creditor: at most 200 characters")
        if (form["creditor"] or None) != campaign.creditor and not may_name_creditor(
            access_of(g.user), form["creditor"] or None
        ):  # moving the campaign would hand its debtors to another creditor's staff
            problems.append("creditor: you may only name a creditor in your scope")
        if len(form["contract"]) > 500:
            problems.append("contract: at most 500 characters")
        settings = dict(campaign.settings or {})
        settings["identity_check"] = form["identity_check"]
        for key in NUMBERS:
            raw = form[key]
            if not raw:
                settings.pop(key, None)
            elif re.fullmatch(r"-?[0-9]{1,6}", raw):
                settings[key] = int(raw)
            else:
                settings[key] = raw  # the validator names the problem
        problems += validate_site_settings(settings)
        problems += _allocation_order(settings, form["allocation_order"])
        for key in FORM_LETTER_KEYS:
            if form[key]:
                settings[key] = form[key]
            else:
                settings.pop(key, None)
        upload, logo_problems = _logo_upload(settings)
        problems += logo_problems + validate_letter_settings(settings)
        texts, text_problems = check_texts(form["texts"])
        problems += text_problems
        if texts:
            settings["texts"] = texts
        else:
            settings.pop("texts", None)
        if problems:
            return render_template("admin/settings.html", slug=slug, name=campaign.name,
                                   form=form, problems=problems, saved=None,
                                   logo=_logo_state(campaign.settings or {}),
                                   **_choices()), 422  # fmt: skip
        if upload is not None:  # stored only now: a refused save leaves nothing behind
            settings["logo"] = campaign_logo.save(context().storage, slug, upload)
        before = _snapshot(campaign)
        campaign.brand_color = form["brand_color"].lower()
        campaign.default_locale = form["default_locale"]
        campaign.creditor = form["creditor"] or None
        campaign.contract = form["contract"] or None
        campaign.settings = settings
        after = _snapshot(campaign)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        artifacts.mark_stale(db, campaign.id, "settings", kinds=artifacts.affected_kinds(changed))
        audit.record(db, g.user, "campaign.settings", via="web", campaign_id=campaign.id,
                     changed=changed)  # fmt: skip
        campaign_id = campaign.id
    queue_rebuild(context(), campaign_id)  # after the commit: the jobs read the new settings
    return redirect(f"/admin/campaigns/{slug}/settings?saved=1", code=303)


def _allocation_order(settings: dict[str, Any], raw: str) -> list[str]:
    """Put the typed allocation order into the payment settings; its problems, if any."""
    payments = dict(settings.get("payments") or {})
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if parts:
        payments[allocation.KEY] = parts
    else:
        payments.pop(allocation.KEY, None)
    if payments:
        settings["payments"] = payments
    else:
        settings.pop("payments", None)
    return (
        [f"allocation order: {p.split(': ', 1)[1]}" for p in allocation.check_order(parts)]
        if parts
        else []
    )


def _snapshot(campaign) -> dict[str, Any]:
    """Everything this page edits, to name what a save changed in the audit log."""
    return {
        "brand_color": campaign.brand_color, "default_locale": campaign.default_locale,
        "creditor": campaign.creditor, "contract": campaign.contract,
        **(campaign.settings or {}),
    }  # fmt: skip


def _choices() -> dict[str, Any]:
    return {"locales": LOCALES, "methods": METHODS}
