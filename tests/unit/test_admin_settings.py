"""Campaign settings in the dashboard as a manager meets them: every problem listed at once,
nothing saved until all are fixed, the save audited; viewers cannot change anything."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from kindly.accounts.models import AuditLog
from kindly.campaigns.models import Campaign
from tests.support.app import load_campaign
from tests.unit.test_admin import csrf_of, make_user, sign_in

URL = "/admin/campaigns/winter/settings"
GOOD = {
    "brand_color": "#0072B2",
    "default_locale": "en-GB",
    "creditor": "Northern Water Ltd",
    "contract": "Supply contract",
    "identity_check": "postal_code",
    "link_days": "30",
    "promise_max_days": "14",
    "payee_name": "Stadtwerke Beispielstadt GmbH",
    "iban": "DE89 3704 0044 0532 0130 00",
    "bic": "COBADEFFXXX",
    "pdf_variant": "pdf/a-3b",
    "logo": "",
    "creditor_address": "Hauptstraße 1; 10115 Berlin",
    "contact": "+49 30 123456",
    "texts": json.dumps({"*": {"en": {"intro": "Hello from {creditor}."}},
                         "firm": {"de": {"intro": "Bitte zahlen Sie."}}}),
}  # fmt: skip


@pytest.fixture
def manager(client, ctx):
    make_user(ctx)
    assert sign_in(client).status_code == 303
    return client


def post(client, **changes):
    data = {**GOOD, **changes, "csrf_token": csrf_of(client, URL)}
    return client.post(URL, data=data)


def stored(ctx) -> Campaign:
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == "winter"))
        session.expunge(campaign)
        return campaign


def test_the_campaign_page_links_the_settings(manager, ctx):
    load_campaign(ctx)
    html = manager.get("/admin/campaigns/winter").get_data(as_text=True)
    assert f'href="{URL}"' in html


def test_manager_saves_every_setting_and_the_save_is_audited(manager, ctx):
    load_campaign(ctx)
    page = manager.get(URL)
    assert page.status_code == 200
    assert 'value="#1f5f8b"' in page.get_data(as_text=True)  # the current brand colour
    response = post(manager)
    assert response.status_code == 303
    campaign = stored(ctx)
    assert campaign.brand_color == "#0072b2"
    assert (campaign.default_locale, campaign.creditor, campaign.contract) == (
        "en-GB", "Northern Water Ltd", "Supply contract")  # fmt: skip
    settings = campaign.settings
    assert settings["identity_check"] == "postal_code"
    assert (settings["link_days"], settings["promise_max_days"]) == (30, 14)
    assert settings["iban"] == "DE89 3704 0044 0532 0130 00"
    assert settings["pdf_variant"] == "pdf/a-3b" and "logo" not in settings
    assert settings["texts"]["firm"]["de"]["intro"] == "Bitte zahlen Sie."
    shown = manager.get(response.headers["Location"]).get_data(as_text=True)
    assert "Settings saved." in shown
    assert 'value="30"' in shown and "Bitte zahlen Sie." in shown
    with ctx.db.session() as session:
        entry = session.scalar(select(AuditLog).where(AuditLog.action == "campaign.settings"))
        assert entry.actor == "manager@example.org" and entry.via == "web"
        assert {"brand_color", "iban", "texts", "link_days"} <= set(entry.detail["changed"])


def test_every_problem_is_listed_and_nothing_is_saved(manager, ctx):
    load_campaign(ctx)
    response = post(
        manager,
        brand_color="blue",
        default_locale="xx-XX",
        identity_check="shoe_size",
        link_days="ninety",
        promise_max_days="400",
        iban="DE00 1234",
        payee_name="",
        pdf_variant="pdf/x",
        texts=json.dumps({"loud": {}, "*": {"en": {"no_such_key": "x", "intro": 5},
                                            "tlh": {"intro": "x"}}}),
    )  # fmt: skip
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    problems = re.findall(r"<li>(.*?)</li>", re.search(r'id="problems">(.*?)</div>', html,
                                                        re.S).group(1))  # fmt: skip
    joined = "\n".join(problems)
    for expected in ("brand colour", "default language", "identity_check", "link_days",
                     "promise_max_days", "IBAN", "payee_name", "pdf_variant", "&#39;loud&#39;",
                     "no_such_key", "texts.*.en.intro: must be text", "&#39;tlh&#39;"):  # fmt: skip
        assert expected in joined, expected
    assert f"{len(problems)} problems to fix" in html
    assert 'value="blue"' in html  # the form keeps what was typed
    campaign = stored(ctx)
    assert campaign.brand_color == "#1f5f8b" and campaign.default_locale == "de-DE"
    assert campaign.settings in ({}, None)
    with ctx.db.session() as session:
        assert (
            session.scalar(select(AuditLog).where(AuditLog.action == "campaign.settings")) is None
        )


def test_texts_must_be_json_and_empty_fields_fall_back_to_defaults(manager, ctx):
    load_campaign(ctx)
    broken = post(manager, texts="{not json")
    assert broken.status_code == 422
    assert "texts: not JSON" in broken.get_data(as_text=True)
    assert post(manager).status_code == 303
    cleared = post(manager, link_days="", texts="", iban="", bic="", payee_name="")
    assert cleared.status_code == 303
    settings = stored(ctx).settings
    assert "link_days" not in settings and "texts" not in settings and "iban" not in settings
    assert settings["promise_max_days"] == 14


def test_viewer_may_not_open_or_change_the_settings(client, ctx):
    load_campaign(ctx)
    make_user(ctx, "viewer@example.org", "viewer")
    assert sign_in(client, "viewer@example.org").status_code == 303
    assert client.get(URL).status_code == 403
    token = csrf_of(client, "/admin/")
    assert client.post(URL, data={**GOOD, "csrf_token": token}).status_code == 403
    assert stored(ctx).brand_color == "#1f5f8b"
    html = client.get("/admin/campaigns/winter").get_data(as_text=True)
    assert f'href="{URL}"' not in html
