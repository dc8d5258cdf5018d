"""Words that fit the day and the person (issue 17): an overdue claim says since when, greetings
agree with the salutation, no doubled full stop after a creditor's name, Spanish 'importe'."""

from __future__ import annotations

import datetime as dt
import json
import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.infra.paths import TEMPLATES
from kindly.messaging import email as email_channel
from kindly.messaging.delivery import _sms_text
from kindly.site.personalise import build_view, gender_of, greeting
from renderer.letter import LetterRenderer
from renderer.site import render_site
from renderer.texts import LANGUAGES, load_texts
from renderer.video.captions import render_captions
from tests.support.app import load_campaign

PORTFOLIO = """reference,salutation,first_name,last_name,email,phone,locale,currency,amount_due,due_date,creditor,contract,street,postal_code,city,country
W-DE,Frau,Anna,Müller,anna@example.org,+4915112345678,de-DE,EUR,120.00,2026-11-01,Acqua Esempio S.p.A.,Vertrag 1,Hauptstraße 5,10115,Berlin,DE
W-EN,Mr,Tom,Hardy,tom@example.org,+447700900123,en-GB,EUR,120.00,2026-11-01,Acqua Esempio S.p.A.,Account 1,1 High St,NW1 6XE,London,GB
W-IT,Sig.ra,Giulia,Rossi,giulia@example.org,+393331234567,it-IT,EUR,120.00,2026-11-01,Acqua Esempio S.p.A.,Contratto 1,Via Roma 1,00184,Roma,IT
W-ES,Sr.,Carlos,García,carlos@example.org,+34600123456,es-ES,EUR,120.00,2026-11-01,Acqua Esempio S.p.A.,Contrato 1,Calle Mayor 1,28013,Madrid,ES
W-FR,Mme,Claire,Dupont,claire@example.org,+33612345678,fr-FR,EUR,120.00,2026-11-01,Acqua Esempio S.p.A.,Contrat 1,1 rue de Rivoli,75001,Paris,FR
"""
LATE = dt.date(2026, 12, 2)  # a month after the due date
EARLY = dt.date(2026, 10, 20)  # before it
TONES = ("friendly", "neutral", "firm")
SINCE = {  # how each language says "due since 1 November"
    "de": "seit dem 1. November 2026",
    "en": "since 1 November 2026",
    "it": "dal 1 novembre 2026",
    "es": "desde el 1 de noviembre de 2026",
    "fr": "depuis le 1 novembre 2026",
}
BY = {  # and how it asks to pay by that day, which must never be said once it has passed
    "de": ("bis zum 1. November", "bis 1. November"),
    "en": ("by 1 November",),
    "it": ("entro il 1 novembre",),
    "es": ("tardar el 1 de noviembre", "antes del 1 de noviembre"),
    "fr": ("avant le 1 novembre", "d’ici le 1 novembre"),
}


def _views(ctx, today: dt.date, tone: str = "friendly"):
    load_campaign(ctx, "words", PORTFOLIO)
    with ctx.db.session() as session:
        debtors = session.scalars(select(Debtor).order_by(Debtor.id)).all()
        return [
            (debtor, build_view(debtor, debtor.campaign, base_url="https://pay.example.com",
                                today=today, tone=tone))
            for debtor in debtors
        ]  # fmt: skip


def _plain(html: str) -> str:
    text = " ".join(re.sub(r"<[^>]+>", " ", html).replace("\xa0", " ").split())
    return re.sub(r" ([.,])", r"\1", text)  # a tag's edge is no space before a full stop


def _texts(debtor, view) -> dict[str, str]:
    """What the debtor reads: the page, the email (both parts), the SMS, the letter, the video."""
    message = email_channel.compose_email(
        view, "x@example.org", sender="a@example.org", reply_to=None, message_id="<m@x>",
        link=email_channel.links("https://pay.example.com", debtor.token, "email",
                                 unsubscribe="u"),
    )  # fmt: skip
    parts = [part.get_content() for part in message.iter_parts()]
    decision = SimpleNamespace(tone=view.tone, treatment={"max_sms_segments": 4})
    return {
        "page": _plain(render_site(view).decode()),
        "email": message["Subject"] + " " + " ".join(_plain(part) for part in parts),
        "sms": _sms_text(debtor, decision, "https://pay.example.com/c/x", view) or "",
        "letter": _plain(LetterRenderer().html(view)),
        "video": _plain(render_captions(view).decode()),
    }


@pytest.mark.parametrize("tone", TONES)
def test_an_overdue_claim_says_since_when_and_to_pay_now_everywhere(ctx, tone):
    for debtor, view in _views(ctx, LATE, tone):
        assert view.overdue
        since, by = SINCE[view.lang], BY[view.lang]
        for channel, text in _texts(debtor, view).items():
            flat = text.replace("\xa0", " ").casefold()
            assert since.casefold() in flat, (view.lang, tone, channel, flat)
            assert not any(phrase.casefold() in flat for phrase in by), (view.lang, channel, flat)


def test_a_claim_not_yet_due_says_by_when_and_never_overdue(ctx):
    for debtor, view in _views(ctx, EARLY, "firm"):
        assert not view.overdue
        texts = _texts(debtor, view)
        for channel in ("page", "letter", "email", "sms"):
            flat = texts[channel].replace("\xa0", " ").casefold()
            assert SINCE[view.lang].casefold() not in flat, (view.lang, channel)
            assert "1" in flat and "2026" in flat


def test_the_page_names_the_day_and_what_to_do_now(ctx):
    pages = {view.lang: _texts(debtor, view)["page"] for debtor, view in _views(ctx, LATE)}
    assert "Overdue since 1 November 2026. Please pay now or choose a payment plan." in pages["en"]
    assert "Fällig seit dem 1. November 2026. Bitte zahlen Sie jetzt" in pages["de"]
    assert "Scaduto dal 1 novembre 2026." in pages["it"]
    assert "Vencido desde el 1 de noviembre de 2026." in pages["es"]
    assert "Échu depuis le 1 novembre 2026." in pages["fr"]


def test_a_paid_claim_is_not_overdue(ctx):
    load_campaign(ctx, "words", PORTFOLIO)
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "W-EN"))
        view = build_view(debtor, debtor.campaign, base_url="https://x", today=LATE,
                          paid_minor=12000, tone="friendly")  # fmt: skip
    assert not view.overdue


@pytest.mark.parametrize("today", [LATE, EARLY])
@pytest.mark.parametrize("tone", TONES)
def test_a_creditor_ending_in_a_full_stop_never_gets_a_second_one(ctx, today, tone):
    for debtor, view in _views(ctx, today, tone):
        for channel, text in _texts(debtor, view).items():
            assert "S.p.A.." not in text, (view.lang, tone, channel, text)
            assert "S.p.A." in text or channel == "sms", (view.lang, channel)


def test_no_catalogue_text_ends_a_sentence_right_after_the_creditor():
    """Every text of every family and language, filled with a name that ends in a dot."""
    found = []
    for family in ("site", "pay", "email", "sms"):
        texts = load_texts(family)
        for scope, by_key in texts._by_lang.items():
            for key, text in by_key.items():
                if re.search(r"\{creditor\}\.", text):
                    found.append((family, scope, key))
    for family in ("letter", "video"):
        data = json.loads((TEMPLATES / family / "texts.json").read_text(encoding="utf-8"))
        for lang, by_key in data.items():
            flat = json.dumps(by_key, ensure_ascii=False)
            if re.search(r"\{creditor\}\.", flat):
                found.append((family, lang, "…"))
    assert found == []


def test_spanish_texts_say_importe_never_the_italian_importo():
    for family in ("site", "pay", "email", "sms"):
        path = TEMPLATES / family / "locale" / "es" / "LC_MESSAGES" / f"{family}.po"
        assert "importo" not in path.read_text(encoding="utf-8").lower(), family
    for family in ("letter", "video"):
        data = json.loads((TEMPLATES / family / "texts.json").read_text(encoding="utf-8"))
        assert "importo" not in json.dumps(data["es"], ensure_ascii=False).lower()


GREETINGS = [
    ("de", "Frau", "Sehr geehrte Frau Rossi,"),
    ("de", "Fr.", "Sehr geehrte Frau Rossi,"),
    ("de", "Herr", "Sehr geehrter Herr Rossi,"),
    ("de", "Ms", "Sehr geehrte Frau Rossi,"),
    ("de", "", "Guten Tag Anna Rossi,"),
    ("de", "Dr.", "Guten Tag Dr. Rossi,"),
    ("en", "Mrs", "Dear Mrs Rossi,"),
    ("en", "Ms.", "Dear Ms Rossi,"),
    ("en", "Frau", "Dear Ms Rossi,"),
    ("en", "Mr", "Dear Mr Rossi,"),
    ("en", "Herr", "Dear Mr Rossi,"),
    ("en", "", "Dear Anna Rossi,"),
    ("en", "Mx", "Dear Mx Rossi,"),
    ("it", "Sig.ra", "Gentile Signora Rossi,"),
    ("it", "Signora", "Gentile Signora Rossi,"),
    ("it", "Frau", "Gentile Signora Rossi,"),
    ("it", "Sig.", "Gentile Signor Rossi,"),
    ("it", "Mr", "Gentile Signor Rossi,"),
    ("it", "", "Gentile Anna Rossi,"),
    ("es", "Sra.", "Estimada Sra. Rossi:"),
    ("es", "Señora", "Estimada Sra. Rossi:"),
    ("es", "Mrs", "Estimada Sra. Rossi:"),
    ("es", "Sr.", "Estimado Sr. Rossi:"),
    ("es", "Herr", "Estimado Sr. Rossi:"),
    ("es", "", "Estimado/a Anna Rossi:"),
    ("fr", "Mme", "Madame Rossi,"),
    ("fr", "Madame", "Madame Rossi,"),
    ("fr", "Frau", "Madame Rossi,"),
    ("fr", "M.", "Monsieur Rossi,"),
    ("fr", "Monsieur", "Monsieur Rossi,"),
    ("fr", "Mr", "Monsieur Rossi,"),
    ("fr", "", "Bonjour Anna Rossi,"),
]


@pytest.mark.parametrize(("lang", "salutation", "expected"), GREETINGS)
def test_the_greeting_agrees_with_the_salutation(lang, salutation, expected):
    assert greeting(lang, salutation, "Anna", "Rossi") == expected


def test_every_language_has_a_gendered_greeting():
    for lang in LANGUAGES:
        assert greeting(lang, "Frau", "A", "B") != greeting(lang, "Herr", "A", "B")
    assert gender_of(" sig.RA ") == "f" and gender_of("M") == "m" and gender_of("Dr.") is None


def test_the_debtors_greeting_reaches_the_page(ctx):
    pages = {view.lang: view.greeting for _, view in _views(ctx, LATE)}
    assert pages == {
        "de": "Sehr geehrte Frau Müller,",
        "en": "Dear Mr Hardy,",
        "it": "Gentile Signora Rossi,",
        "es": "Estimado Sr. García:",
        "fr": "Madame Dupont,",
    }


@pytest.mark.parametrize("tone", TONES)
def test_the_overdue_text_message_fits_two_segments(ctx, tone):
    from kindly.messaging import sms

    for debtor, view in _views(ctx, LATE, tone):
        decision = SimpleNamespace(tone=tone, treatment={"max_sms_segments": 2})
        text = _sms_text(debtor, decision, f"https://pay.example.com/c/{debtor.token}?c=sms", view)
        assert text is not None and sms.count(text).parts <= 2, (view.lang, tone)
        assert SINCE[view.lang].casefold() in text.replace("\xa0", " ").casefold()
