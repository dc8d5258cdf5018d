"""The payment reference where the debtor sees it: the letter, its GiroCode, the microsite's
transfer block in every language and the pay page, in groups of four; the case's own
reference where a case has no RF yet."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from kindly.bank import rf
from kindly.campaigns.models import Campaign, Debtor
from kindly.site.personalise import build_view
from renderer.girocode import epc_payload
from renderer.letter import LetterRenderer, payment_code
from renderer.site import render_site
from renderer.texts import LANGUAGES, load_texts
from tests.support.app import load_campaign
from tests.support.views import make_view
from tests.unit.test_letter_payment import LETTER, qr_codes, text_of

PAYREF = rf.rf_for("winter", "K-2026-000123")
PRINTED = rf.printed(PAYREF)


def test_a_reference_is_printed_in_groups_of_four():
    assert re.fullmatch(r"RF\d\d( [0-9A-Z]{4}){3} [0-9A-Z]", PRINTED)
    assert rf.compact(PRINTED) == PAYREF


def test_a_valid_rf_goes_into_the_structured_field_anything_else_unstructured():
    common = dict(name="Stadtwerke", iban="DE89370400440532013000", amount_cents=5730)
    lines = epc_payload(**common, remittance=PRINTED).split("\n")
    assert lines[9:] == [PAYREF, ""]  # compact, and the unstructured field stays empty
    lines = epc_payload(**common, remittance="K-2026-000123").split("\n")
    assert lines[9:] == ["", "K-2026-000123"]
    broken = PRINTED[:-1] + ("X" if PRINTED[-1] != "X" else "Y")  # a check digit that fails
    assert epc_payload(**common, remittance=broken).split("\n")[9] == ""


@pytest.fixture(scope="module")
def letters(tmp_path_factory) -> dict[str, Path]:
    renderer, out = LetterRenderer(), tmp_path_factory.mktemp("payref")
    paths = {}
    for key, payref in (("rf", PRINTED), ("old", "")):
        paths[key] = out / f"{key}.pdf"
        paths[key].write_bytes(renderer.render(make_view(**LETTER, payment_reference=payref)))
    return paths


def test_the_letter_prints_the_reference_beside_the_account_and_its_girocode_carries_it(
    letters, tmp_path
):
    text = text_of(letters["rf"])
    assert f"Verwendungszweck: {PRINTED} (bitte genau so angeben)" in text
    assert "IBAN: DE89 3704 0044 0532 0130 00" in text
    giro = next(c for c in qr_codes(letters["rf"], tmp_path) if c.startswith("BCD"))
    assert giro.split("\n")[9:] == [PAYREF, ""]
    assert payment_code(make_view(**LETTER, payment_reference=PRINTED)) == giro


def test_a_case_without_an_rf_keeps_its_own_reference_in_letter_and_code(letters, tmp_path):
    assert "Verwendungszweck: K-2026-000123" in text_of(letters["old"])
    giro = next(c for c in qr_codes(letters["old"], tmp_path) if c.startswith("BCD"))
    assert giro.split("\n")[9:] == ["", "K-2026-000123"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_transfer_block_shows_the_reference_and_asks_for_it_in_every_language(lang):
    view = make_view(**LETTER, lang=lang, payment_reference=PRINTED)
    html = render_site(view, online=False).decode()
    block = html[
        html.index("data-transfer") : html.index("</section>", html.index("data-transfer"))
    ]
    hint = load_texts("site").for_lang(lang)["bank_reference_hint"]
    assert f"<dd data-reference><strong>{PRINTED}</strong></dd>" in block
    assert hint.replace("'", "&#39;") in block and "K-2026-000123" not in block
    if lang != "en":  # a real translation, not the English fallback
        assert hint != load_texts("site").for_lang("en")["bank_reference_hint"]
    giro = load_texts("letter").for_lang(lang)["transfer_use_reference"]
    assert giro and (lang == "en" or giro != load_texts("letter").for_lang("en")[
        "transfer_use_reference"])  # fmt: skip


def test_the_view_takes_the_debtors_rf_and_falls_back_to_its_reference(ctx):
    load_campaign(ctx, "winter")
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        first, second = session.scalars(select(Debtor).order_by(Debtor.id).limit(2)).all()
        second.payment_reference = None  # a row from before the backfill
        kwargs = dict(base_url="https://k.example", today=dt.date(2026, 12, 1), tone="neutral")
        view = build_view(first, campaign, **kwargs)
        assert view.payment_reference == rf.printed(first.payment_reference)
        assert view.payment_reference.startswith("RF") and " " in view.payment_reference
        assert build_view(second, campaign, **kwargs).payment_reference == second.reference
