"""A campaign's text overrides are checked against each text's own placeholders when saved,
and one that slipped in before cannot break the campaign's pages."""

from __future__ import annotations

import html
import json

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from tests.support.app import load_campaign
from tests.unit.test_admin import make_user, sign_in
from tests.unit.test_admin_settings import post, stored
from tests.unit.test_web import token_of
from workers.jobs import render_debtor


@pytest.fixture
def manager(client, ctx):
    make_user(ctx)
    assert sign_in(client).status_code == 303
    return client


def _page(client, ctx, reference: str = "A-1") -> str:
    """The debtor's microsite, rendered and opened as the debtor would."""
    token = token_of(ctx, reference)
    with ctx.db.session() as session:
        render_debtor(session.scalar(select(Debtor.id).where(Debtor.token == token)), ["site"])
    page = client.get(f"/s/{token}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


BAD = [
    ({"*": {"de": {"intro": "Bitte zahlen Sie {"}}}, "texts.*.de.intro: a stray { or }"),
    ({"firm": {"en": {"title": "{unknown} writes"}}},
     "texts.firm.en.title: unknown placeholder {unknown} (this text takes {creditor})"),
    ({"*": {"de": {"pay": "{amount.__class__}"}}}, "texts.*.de.pay: unknown placeholder"),
    ({"*": {"de": {"intro": "Von {creditor!r}"}}}, "texts.*.de.intro: write the placeholder"),
    ({"*": {"de": {"plan": "Raten {}"}}}, "texts.*.de.plan: unknown placeholder {} (this text "
                                           "takes no placeholders)"),
    ({"*": {"de": {"status_paid": "Danke }"}}}, "texts.*.de.status_paid: a stray"),
]  # fmt: skip


@pytest.mark.parametrize(("texts", "message"), BAD)
def test_a_bad_placeholder_is_refused_naming_the_key(manager, ctx, texts, message):
    load_campaign(ctx)
    response = post(manager, texts=json.dumps(texts))
    assert response.status_code == 422
    assert message in html.unescape(response.get_data(as_text=True))
    assert stored(ctx).settings in ({}, None)  # nothing saved
    assert "Sehr geehrte Frau Müller," in _page(manager, ctx)


def test_literal_braces_and_the_texts_own_placeholders_are_saved_and_shown(manager, ctx):
    load_campaign(ctx)
    texts = {"*": {"de": {"intro": "Hallo {{Team}}, hier schreibt {creditor}."}}}
    saved = post(manager, texts=json.dumps(texts), identity_check="none")
    assert saved.status_code == 303
    assert stored(ctx).settings["texts"] == texts
    page = html.unescape(_page(manager, ctx))
    assert "Hallo {Team}, hier schreibt Stadtwerke Beispielstadt GmbH." in page


def test_an_override_saved_before_the_check_does_not_break_the_pages(client, ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        campaign.settings = {"texts": {"*": {"de": {"intro": "Zahlen {", "title": "{x}",
                                                    "plan": "Raten in Ruhe"}}}}  # fmt: skip
    page = html.unescape(_page(client, ctx))
    assert "Zahlen {" not in page and "{x}" not in page  # the broken ones fall back
    assert "Raten in Ruhe" in page  # the valid one next to them still applies


def test_the_pay_and_plan_pages_show_the_campaigns_texts_for_the_debtors_tone(client, ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        campaign.settings = {"texts": {
            "*": {"de": {"pay_title": "Offenen Betrag begleichen", "plan_title": "Ratenplan"}},
            "friendly": {"de": {"pay_button": "Gerne weiter zur Zahlung"}},  # A-1's tone
            "firm": {"de": {"back": "Zurück zur Forderung"}},  # another tone: not for A-1
        }}  # fmt: skip
    token = token_of(ctx, "A-1")
    pay = html.unescape(client.get(f"/s/{token}/pay").get_data(as_text=True))
    assert "<h1>Offenen Betrag begleichen</h1>" in pay
    assert "Gerne weiter zur Zahlung" in pay
    assert "Zurück zur Forderung" not in pay and ">Zurück</a>" in pay
    plan = html.unescape(client.get(f"/s/{token}/plan").get_data(as_text=True))
    assert "Ratenplan" in plan and "In Raten zahlen</h1>" not in plan
