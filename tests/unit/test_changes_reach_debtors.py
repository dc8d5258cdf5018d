"""A change to the rules or the campaign's settings reaches the debtor's link on the next open,
before any rebuild; the rebuild then stores the new page; the preview is the served page; the
cockpit counts what is stale."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.payments.models import Payment
from kindly.site import artifacts, freshness
from kindly.site.models import Artifact
from renderer.texts import load_texts
from tests.support.app import front_client, load_campaign
from tests.unit.test_admin import csrf_of, make_user, sign_in
from tests.unit.test_admin_settings import GOOD
from web.admin.debtors import PREVIEW_BANNER, _defuse
from workers.render import run_render

CASE = "A-2"  # Siobhán O'Brien, en-GB, owes Northern Water Ltd
FIRM = {"defaults": {"tone": "firm"}}


@pytest.fixture
def manager(client, ctx):
    make_user(ctx)
    assert sign_in(client).status_code == 303
    return client


def token_of(ctx, reference: str = CASE) -> str:
    with ctx.db.session() as session:
        return session.scalar(select(Debtor.token).where(Debtor.reference == reference))


def stored_page(ctx, reference: str = CASE) -> str:
    """The page as stored for the debtor's link (what a render job wrote)."""
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == reference))
        key = artifacts.find(session, debtor, "site").key
    return ctx.storage.get(key).decode()


def render_pages(ctx) -> None:
    """`kindly render winter --kinds site`, the jobs running in this process."""
    assert run_render(ctx, "winter", ["site"], quiet=True) == []


def intro(tone: str) -> str:
    text = load_texts("site").for_lang("en", tone)["intro"]
    return text.format(creditor="Northern Water Ltd")


def save_rules(manager, document: dict) -> None:
    url = "/admin/campaigns/winter/rules"
    response = manager.post(url, data={"csrf_token": csrf_of(manager, url),
                                       "document": json.dumps(document)})  # fmt: skip
    assert response.status_code == 303, response.get_data(as_text=True)


def save_settings(manager, **changes: str) -> None:
    url = "/admin/campaigns/winter/settings"
    data = {**GOOD, "identity_check": "none", "texts": "", **changes}
    response = manager.post(url, data={**data, "csrf_token": csrf_of(manager, url)})
    assert response.status_code == 303, response.get_data(as_text=True)


def test_a_tone_rule_change_reaches_the_link_at_once_and_the_store_after_a_rebuild(manager, ctx):
    load_campaign(ctx)
    render_pages(ctx)
    debtor = front_client(ctx)
    link = f"/s/{token_of(ctx)}"
    first = debtor.get(link).get_data(as_text=True)
    assert intro("friendly") in first and intro("firm") not in first

    save_rules(manager, FIRM)  # no `kindly render` by hand

    served = debtor.get(link).get_data(as_text=True)
    assert intro("firm") in served and intro("friendly") not in served
    assert intro("firm") not in stored_page(ctx)  # no worker rebuilt it yet: built live
    render_pages(ctx)
    assert intro("firm") in stored_page(ctx)
    assert intro("firm") in debtor.get(link).get_data(as_text=True)


def test_the_creditor_address_setting_reaches_the_link_at_once(manager, ctx):
    load_campaign(ctx)
    render_pages(ctx)
    debtor = front_client(ctx)
    link = f"/s/{token_of(ctx)}"
    assert "7 Quay Street" not in debtor.get(link).get_data(as_text=True)

    save_settings(manager, creditor_address="7 Quay Street; Hull HU1 1AA")

    assert "7 Quay Street, Hull HU1 1AA" in debtor.get(link).get_data(as_text=True)
    assert "7 Quay Street" not in stored_page(ctx)
    render_pages(ctx)
    assert "7 Quay Street, Hull HU1 1AA" in stored_page(ctx)
    assert "7 Quay Street, Hull HU1 1AA" in debtor.get(link).get_data(as_text=True)


def preview_and_served(manager, ctx, reference: str = CASE) -> tuple[str, str]:
    """The preview without its banner, and the served page defused the way the preview is."""
    token = token_of(ctx, reference)
    preview = manager.get(f"/admin/campaigns/winter/debtors/{reference}/preview")
    assert preview.status_code == 200
    head, banner, tail = preview.get_data(as_text=True).partition(PREVIEW_BANNER)
    assert banner  # in the place of the live notices
    served = front_client(ctx).get(f"/s/{token}").get_data(as_text=True)  # no notices
    preview_of = f"/admin/campaigns/winter/debtors/{reference}/preview"
    return head + tail, _defuse(served, token, ctx.settings.base_url, preview_of)


def test_the_preview_is_the_page_the_link_serves(manager, ctx):
    load_campaign(ctx)
    render_pages(ctx)
    preview, served = preview_and_served(manager, ctx)
    assert preview == served  # the stored page, both ways
    save_rules(manager, FIRM)
    preview, served = preview_and_served(manager, ctx)
    assert intro("firm") in preview
    assert preview == served  # built live, both ways
    for reference in ("A-1", "A-3"):  # other languages and creditors
        preview, served = preview_and_served(manager, ctx, reference)
        assert preview == served


def test_a_part_paid_page_is_previewed_as_served_but_for_the_live_notices(manager, ctx):
    load_campaign(ctx)
    render_pages(ctx)
    with ctx.db.session() as session:
        a1 = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        session.add(Payment(campaign_id=a1.campaign_id, debtor_id=a1.id, provider="sandbox",
                            provider_ref="sbx_preview_1", amount_minor=23456, currency="EUR",
                            status="succeeded"))  # fmt: skip
    token = token_of(ctx, "A-1")
    preview_of = "/admin/campaigns/winter/debtors/A-1/preview"
    preview = manager.get(preview_of).get_data(as_text=True)
    head, banner, tail = preview.partition(PREVIEW_BANNER)
    served = front_client(ctx).get(f"/s/{token}").get_data(as_text=True)
    served = _defuse(served, token, ctx.settings.base_url, preview_of)
    assert banner and "1.000,00" in head + tail  # the balance left, both ways
    assert served.startswith(head) and served.endswith(tail)
    notices = served[len(head) : len(served) - len(tail)]
    assert "234,56" in notices  # what the link adds live: paid so far


def stale_counts(manager) -> dict[str, str]:
    html = manager.get("/admin/campaigns/winter").get_data(as_text=True)
    found = dict(re.findall(r'id="stale-(pages|letters|videos)">(\d+)<', html))
    found["last"] = re.search(r'id="last-rebuild">([^<]*)', html).group(1)
    found["rebuilding"] = 'id="rebuilding"' in html
    return found


def test_the_cockpit_counts_stale_pages_and_says_when_the_last_rebuild_finished(manager, ctx):
    load_campaign(ctx)
    assert stale_counts(manager)["pages"] == "0"
    render_pages(ctx)
    fresh = stale_counts(manager)
    assert (fresh["pages"], fresh["rebuilding"]) == ("0", False)
    assert "never" not in fresh["last"]

    save_rules(manager, FIRM)
    html = manager.get("/admin/campaigns/winter").get_data(as_text=True)
    assert stale_counts(manager)["pages"] == "3"
    assert "Changed: rules" in html and "kindly render winter" in html  # no workers here

    save_settings(manager, texts=json.dumps({"*": {"en": {"intro": "Hello from {creditor}."}}}))
    assert stale_counts(manager)["pages"] == "3"  # marked again: still three pages
    render_pages(ctx)
    assert stale_counts(manager)["pages"] == "0"


def test_a_page_made_by_other_templates_counts_as_stale_and_is_built_live(ctx, monkeypatch):
    load_campaign(ctx)
    render_pages(ctx)
    with ctx.db.session() as session:
        assert freshness.summary(session, 1)["kinds"]["site"] == {"stored": 3, "stale": 0}
    # a deployment with other site templates: the stored pages' renderer hash no longer matches
    monkeypatch.setattr(artifacts, "renderer_version", lambda kind: f"new-{kind}")
    with ctx.db.session() as session:
        assert freshness.summary(session, 1)["kinds"]["site"] == {"stored": 3, "stale": 3}
        assert sorted(freshness.stale_debtors(session, 1)) == [1, 2, 3]
    render_pages(ctx)
    with ctx.db.session() as session:
        assert freshness.summary(session, 1)["kinds"]["site"] == {"stored": 3, "stale": 0}


def test_a_rebuild_that_read_the_state_before_a_change_keeps_the_mark(ctx):
    load_campaign(ctx)
    render_pages(ctx)
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == CASE))
        began = artifacts.utcnow()
        assert artifacts.mark_stale(session, debtor.campaign_id, "creditor", [debtor.id]) == 1
        artifacts.mark_fresh(session, debtor, ["site"], began)  # a job that began earlier
        assert artifacts.find(session, debtor, "site").stale_reason == "creditor"
        artifacts.mark_fresh(session, debtor, ["site"], artifacts.utcnow())
        assert artifacts.find(session, debtor, "site").stale_at is None


def test_a_current_stored_page_is_served_from_storage_without_rendering(ctx, monkeypatch):
    from web.debtor import page

    load_campaign(ctx)
    assert run_render(ctx, "winter", ["site", "letter"], quiet=True) == []
    rendered: list[str] = []
    real = page.render_site
    monkeypatch.setattr(page, "render_site", lambda view, **kw: rendered.append(view.reference)
                        or real(view, **kw))  # fmt: skip
    debtor = front_client(ctx)
    for reference in ("A-1", "A-2", "A-3"):
        served = debtor.get(f"/s/{token_of(ctx, reference)}").get_data(as_text=True)
        assert served.startswith(stored_page(ctx, reference).split("<main", 1)[0])
    assert rendered == []  # the job's fingerprint is the one the link computes
    with ctx.db.session() as session:
        a2 = session.scalar(select(Debtor).where(Debtor.reference == CASE))
        artifacts.mark_stale(session, a2.campaign_id, "creditor", [a2.id])
    debtor.get(f"/s/{token_of(ctx)}")
    assert rendered == [CASE]  # marked stale: built live, and only that one


def test_only_settings_pages_are_made_of_mark_them_stale(manager, ctx):
    load_campaign(ctx)
    assert run_render(ctx, "winter", ["site", "letter"], quiet=True) == []
    save_settings(manager)  # the first save sets the brand, creditor, letter options…
    render_pages(ctx)
    assert run_render(ctx, "winter", ["letter"], quiet=True) == []
    assert (stale_counts(manager)["pages"], stale_counts(manager)["letters"]) == ("0", "0")
    save_settings(manager, link_days="45", identity_check="postal_code")
    assert (stale_counts(manager)["pages"], stale_counts(manager)["letters"]) == ("0", "0")
    save_settings(manager, texts=json.dumps({"*": {"en": {"intro": "Hello from {creditor}."}}}))
    assert (stale_counts(manager)["pages"], stale_counts(manager)["letters"]) == ("3", "0")
    save_settings(manager, contact="+44 20 7946 0000")
    assert (stale_counts(manager)["pages"], stale_counts(manager)["letters"]) == ("3", "3")


def test_a_creditor_change_marks_the_pages_naming_that_creditor(ctx):
    load_campaign(ctx)
    load_campaign(ctx, slug="spring")
    render_pages(ctx)
    assert run_render(ctx, "spring", ["site"], quiet=True) == []
    with ctx.db.session() as session:
        # A-2 of both campaigns names Northern Water Ltd; a debtor naming none falls back to
        # the campaign's creditor
        a3 = session.scalar(select(Debtor).where(Debtor.reference == "A-3").limit(1))
        a3.creditor = None
        a3.campaign.creditor = "Northern Water Ltd"
        assert artifacts.mark_creditor_stale(session, "Northern Water Ltd") == 3
        stale = session.scalars(
            select(Debtor.reference).join(Artifact).where(Artifact.stale_reason == "creditor")
        )
        assert sorted(stale) == ["A-2", "A-2", "A-3"]
