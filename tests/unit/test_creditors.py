"""A three-creditor portfolio: every email, SMS, letter, page and webhook names the debtor's
own creditor with that creditor's address, phone and account, and no other's (issue 17, 1)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import json
from email.utils import parseaddr

import pytest
from pypdf import PdfReader
from sqlalchemy import event, select

from kindly import launch
from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio import import_portfolio, read_portfolio
from kindly.creditors.profile import creditor_for
from kindly.creditors.service import CreditorError, get_creditor, set_creditor
from kindly.messaging import delivery
from kindly.outbound.deliveries import payload
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.site.models import Artifact
from kindly.site.personalise import build_view
from kindly.tracking import events
from kindly.tracking.models import Event
from renderer.texts import one_stop
from workers.jobs import render_debtor
from workers.queues import Dispatcher
from workers.send import enqueue_sends

AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 in Berlin, a Tuesday
PORTFOLIO = """reference,salutation,first_name,last_name,email,phone,locale,currency,amount_due,due_date,creditor,contract,street,postal_code,city,country
S-1,Frau,Anna,Müller,anna@example.org,+4915112345678,de-DE,EUR,120.50,2026-12-15,Stadtwerke Beispielstadt GmbH,Stromvertrag 4711,Hauptstraße 5,10115,Berlin,DE
N-1,Ms,Siobhán,O'Brien,siobhan@example.org,+447700900123,en-GB,GBP,89.90,2026-12-20,Northern Water Ltd,Account 99,12 Baker Street,NW1 6XE,London,GB
A-1,Sig.ra,Giulia,D'Angelo,giulia@example.org,+393331234567,it-IT,EUR,42.00,2027-01-10,Acqua Esempio S.p.A.,Contratto 7,Via Roma 10,00184,Roma,IT
"""
PROFILES = {
    "Stadtwerke Beispielstadt GmbH": {
        "legal_form": "GmbH", "address": "Am Markt 1; 12345 Beispielstadt",
        "email_sender_name": "Stadtwerke Beispielstadt", "email_address": "forderung@stadtwerke.example",
        "phone": "+49 30 1234567", "iban": "DE89 3704 0044 0532 0130 00", "bic": "COBADEFFXXX",
        "supervisory_authority": "Landgericht Beispielstadt", "brand_color": "#0b6e4f",
    },
    "Northern Water Ltd": {
        "legal_form": "Ltd", "address": "1 Quay Street; MANCHESTER; M3 3JE",
        "email_sender_name": "Northern Water", "email_address": "billing@northernwater.example",
        "phone": "+44 161 496 0000", "iban": "GB29 NWBK 6016 1331 9268 19", "bic": "NWBKGB2L",
        "brand_color": "#1d3557",
    },
    "Acqua Esempio S.p.A.": {
        "legal_form": "S.p.A.", "address": "Via del Corso 1; 00186 Roma RM",
        "email_sender_name": "Acqua Esempio", "email_address": "crediti@acquaesempio.example",
        "phone": "+39 06 1234 5678", "iban": "IT60 X054 2811 1010 0000 0123 456",
        "bic": "BPMOIT22XXX", "brand_color": "#005f73",
    },
}  # fmt: skip
OWNER = {"S-1": "Stadtwerke Beispielstadt GmbH", "N-1": "Northern Water Ltd",
         "A-1": "Acqua Esempio S.p.A."}  # fmt: skip
# What the user test saw on a Northern Water page: the campaign's own (Berlin) settings.
OLD_SETTINGS = {"creditor_address": "Ring 1; 10115 Berlin", "contact": "+49 30 999999",
                "payee_name": "Stadtwerke Beispielstadt GmbH", "iban": "DE02120300000000202051"}  # fmt: skip


def facts(name: str) -> list[str]:
    """What names a creditor: its name, first address line, phone, email, IBAN (printed)."""
    p = PROFILES[name]
    iban = p["iban"].replace(" ", "")
    return [name, p["address"].split(";")[0], p["phone"], p["email_address"],
            " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))]  # fmt: skip


def assert_names_only(text: str, name: str, *, kinds=("name", "address", "phone")) -> None:
    """`text` carries this creditor's facts of the given kinds and none of the others'."""
    index = {"name": 0, "address": 1, "phone": 2, "email": 3, "iban": 4}
    flat = " ".join(text.split())
    for kind in kinds:
        assert facts(name)[index[kind]] in flat, (name, kind)
    for other in PROFILES:
        if other != name:
            for fact in facts(other):
                assert fact not in flat, (name, "shows", other, fact)
    assert "Ring 1" not in flat and "999999" not in flat  # the campaign's Berlin settings


@pytest.fixture
def portfolio(ctx):
    """The campaign (Stadtwerke its default creditor, Berlin settings) with complete profiles."""
    with ctx.db.session() as session:
        campaign = Campaign(slug="mixed", name="Mixed", default_locale="de-DE",
                            creditor="Stadtwerke Beispielstadt GmbH", settings=OLD_SETTINGS)  # fmt: skip
        session.add(campaign)
        session.flush()
        import_portfolio(session, campaign, read_portfolio(PORTFOLIO.encode(), "p.csv"))
        for name, values in PROFILES.items():
            set_creditor(session, name, values)
        assert launch.set_status(session, campaign, "live")[1] == []
    return ctx


def send(ctx, channel: str) -> None:
    """Decide and deliver the first step on one channel, in this process."""
    rules = {"defaults": {"tone": "neutral", "channels": [channel]}}
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        decide(session, campaign, save_rules(session, campaign, parse_rules(rules)), AT.date())
    with ctx.db.session() as session:
        planned = delivery.plan(session, session.scalar(select(Campaign)), AT)
    assert {p.status for p in planned} == {"send"}, planned
    enqueue_sends(Dispatcher(ctx.settings), planned, AT)


def debtor_ids(ctx) -> dict[str, int]:
    with ctx.db.session() as session:
        return dict(session.execute(select(Debtor.reference, Debtor.id)).all())


def test_each_email_comes_from_its_own_creditor_and_answers_to_it(portfolio):
    send(portfolio, "email")
    ids = debtor_ids(portfolio)
    for reference, name in OWNER.items():
        path = portfolio.settings.data_dir / "outbox" / f"mixed-{ids[reference]}-0-email.eml"
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert parseaddr(message["From"])[0] == PROFILES[name]["email_sender_name"]
        assert parseaddr(message["From"])[1].startswith("no-reply@")  # our domain: SPF holds
        assert message["Reply-To"] == PROFILES[name]["email_address"]
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert name in message["Subject"] or name in text
        assert_names_only(text, name, kinds=("name", "address", "phone", "email"))
        assert_names_only(html, name, kinds=("name", "address", "phone"))
        assert PROFILES[name]["brand_color"] in html
        assert "S.p.A.." not in text + html + message["Subject"]


def test_each_sms_names_its_own_creditor(portfolio):
    send(portfolio, "sms")
    ids = debtor_ids(portfolio)
    for reference, name in OWNER.items():
        path = portfolio.settings.data_dir / "outbox" / f"mixed-{ids[reference]}-0-sms.sms.json"
        text = json.loads(path.read_text(encoding="utf-8"))["text"]
        assert_names_only(text, name, kinds=("name",))


def test_each_letter_carries_its_own_creditors_address_phone_and_account(portfolio):
    ids = debtor_ids(portfolio)
    for reference, name in OWNER.items():
        render_debtor(ids[reference], ["letter"], force=True)
        with portfolio.db.session() as session:
            key = session.scalar(select(Artifact.key).where(
                Artifact.debtor_id == ids[reference], Artifact.kind == "letter"))  # fmt: skip
        pdf = PdfReader(io.BytesIO(portfolio.storage.get(key)))
        text = "\n".join(page.extract_text() for page in pdf.pages)
        assert_names_only(text, name, kinds=("name", "address", "phone", "iban"))
        flat = " ".join(text.split())
        assert PROFILES[name]["bic"] in flat and reference in flat  # BIC, payment reference


def test_each_page_shows_its_own_creditor(portfolio, client):
    with portfolio.db.session() as session:
        tokens = dict(session.execute(select(Debtor.reference, Debtor.token)).all())
    for reference, name in OWNER.items():
        page = client.get(f"/s/{tokens[reference]}")
        assert page.status_code == 200
        html = page.get_data(as_text=True).replace("&#39;", "'")
        assert_names_only(html, name, kinds=("name", "address", "phone", "email"))


def test_each_webhook_payload_names_its_own_creditor(portfolio):
    with portfolio.db.session() as session:
        for debtor in session.scalars(select(Debtor)):
            events.record(session, debtor, "clicked", channel="email")
            session.flush()
            row = session.scalar(select(Event).where(Event.debtor_id == debtor.id))
            body = payload(row, debtor, debtor.campaign)
            assert body["creditor"] == OWNER[debtor.reference]


def test_the_launch_check_names_the_creditor_whose_profile_lacks_a_fact(portfolio):
    with portfolio.db.session() as session:
        campaign = session.scalar(select(Campaign))
        assert launch.creditor_gaps(session, campaign) == []
        set_creditor(session, "Northern Water Ltd", {"phone": "", "email_address": ""})
        set_creditor(session, "Acqua Esempio S.p.A.", {"iban": "", "bic": ""})
        gaps = [str(gap) for gap in launch.check_campaign(session, campaign)]
        assert gaps == [
            "creditor Acqua Esempio S.p.A. [*, *]: no IBAN for letters and bank transfers "
            "(kindly creditor set 'Acqua Esempio S.p.A.' …)",
            "creditor Northern Water Ltd [*, *]: no whom to contact: phone or email "
            "(kindly creditor set 'Northern Water Ltd' …)",
        ]
        # the campaign's own (Berlin) contact never stands in for another creditor's
        assert campaign.settings["contact"]
        assert launch.set_status(session, campaign, "paused")[1] == []
        _, refused = launch.set_status(session, campaign, "live")  # refused: it stays paused
        assert [str(gap) for gap in refused] == gaps


def test_a_creditor_with_no_profile_at_all_is_named(ctx):
    with ctx.db.session() as session:
        campaign = Campaign(slug="one", name="One", default_locale="en-GB")
        session.add(campaign)
        session.flush()
        import_portfolio(session, campaign, read_portfolio(PORTFOLIO.encode(), "p.csv"))
        for name in ("Stadtwerke Beispielstadt GmbH", "Acqua Esempio S.p.A."):
            set_creditor(session, name, PROFILES[name])
        missing = {(gap.template, gap.missing.split(" (")[0])
                   for gap in launch.check_campaign(session, campaign)}  # fmt: skip
    assert missing == {
        ("creditor Northern Water Ltd", "creditor address"),
        ("creditor Northern Water Ltd", "whom to contact: phone or email"),
        ("creditor Northern Water Ltd", "IBAN for letters and bank transfers"),
    }


def test_campaign_settings_fill_only_their_own_creditors_gaps(ctx):
    """An older campaign keeps working: its settings still describe its own creditor."""
    with ctx.db.session() as session:
        campaign = Campaign(slug="old", name="Old", default_locale="de-DE",
                            creditor="Stadtwerke Beispielstadt GmbH", settings=OLD_SETTINGS)  # fmt: skip
        session.add(campaign)
        session.flush()
        import_portfolio(session, campaign, read_portfolio(PORTFOLIO.encode(), "p.csv"))
        debtors = {d.reference: d for d in session.scalars(select(Debtor))}
        own = creditor_for(session, debtors["S-1"])
        assert own.address == ("Ring 1", "10115 Berlin") and own.contact == "+49 30 999999"
        assert own.iban == "DE02120300000000202051" and not own.recorded
        foreign = creditor_for(session, debtors["N-1"])
        assert (foreign.name, foreign.address, foreign.contact, foreign.iban) == (
            "Northern Water Ltd",
            (),
            "",
            "",
        )
        # a profile's own values win; the settings fill only what it lacks
        set_creditor(session, "Stadtwerke Beispielstadt GmbH", {"phone": "+49 40 555000"})
        own = creditor_for(session, debtors["S-1"])
        assert own.contact == "+49 40 555000" and own.address == ("Ring 1", "10115 Berlin")
        view = build_view(debtors["N-1"], campaign, base_url="https://k.example")
        assert view.creditor == "Northern Water Ltd" and view.iban == "" and not view.contact


def test_a_sending_run_asks_for_each_creditor_once(portfolio):
    """No query per debtor: profiles are kept for the session's run."""
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if "FROM creditor" in statement:
            statements.append(statement)

    engine = portfolio.db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        with portfolio.db.session() as session:
            debtors = list(session.scalars(select(Debtor)))
            for _ in range(50):
                for debtor in debtors:
                    build_view(debtor, debtor.campaign, base_url="https://k.example")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 3


def test_bad_values_are_refused_with_every_reason_and_nothing_is_saved(ctx):
    with ctx.db.session() as session:
        with pytest.raises(CreditorError) as refused:
            set_creditor(session, "Northern Water Ltd", {
                "iban": "GB29 NWBK 6016 1331 9268 18", "bic": "NW", "email_address": "billing@",
                "phone": "0161 496", "brand_color": "blue", "colour": "#fff",
            })  # fmt: skip
        errors = refused.value.errors
        assert any("fails its checksum" in e for e in errors)
        assert any(e.startswith("BIC 'NW'") for e in errors)
        assert any(e.startswith("email 'billing@'") for e in errors)
        assert any(e.startswith("phone '0161 496'") for e in errors)
        assert any(e.startswith("colour 'blue'") for e in errors)
        assert any("unknown field 'colour'" in e for e in errors)
        assert get_creditor(session, "Northern Water Ltd") is None
        with pytest.raises(CreditorError, match="a creditor needs a name"):
            set_creditor(session, "  ", {"phone": "+44 161 496 0000"})
        row = set_creditor(session, "Northern Water Ltd", {"brand_color": "#ABC", "iban": ""})
        assert row.brand_color == "#aabbcc"


def test_a_legal_form_ending_in_a_full_stop_is_not_followed_by_another():
    texts = {"a": "Ihr Betrag bei {creditor}.", "b": {"firm": "con {creditor}. Grazie"},
             "c": "{creditor}: ok"}  # fmt: skip
    mended = one_stop(texts, creditor="Aguas de Ejemplo S.A.")
    assert (
        mended["a"].format(creditor="Aguas de Ejemplo S.A.")
        == "Ihr Betrag bei Aguas de Ejemplo S.A."
    )
    assert mended["b"]["firm"].format(creditor="X S.p.A.") == "con X S.p.A. Grazie"
    assert mended["c"] == "{creditor}: ok"
    assert one_stop(texts, creditor="Northern Water Ltd") is texts


def test_the_demo_has_a_complete_profile_for_each_of_its_creditors(ctx):
    from kindly.campaigns.demo import CREDITOR_PROFILES, CREDITORS, demo_rows

    assert set(CREDITORS.values()) == set(CREDITOR_PROFILES)
    with ctx.db.session() as session:
        campaign = Campaign(slug="demo", name="Demo", default_locale="de-DE",
                            creditor="Stadtwerke Beispielstadt GmbH")  # fmt: skip
        session.add(campaign)
        session.flush()
        import_portfolio(session, campaign, demo_rows(12))
        for name, values in CREDITOR_PROFILES.items():
            set_creditor(session, name, values)
        assert launch.check_campaign(session, campaign) == []
        for debtor in session.scalars(select(Debtor)):
            view = build_view(debtor, campaign, base_url="https://k.example")
            assert view.iban == CREDITOR_PROFILES[debtor.creditor]["iban"]
            assert view.contact.startswith(CREDITOR_PROFILES[debtor.creditor]["phone"])


def test_each_videos_captions_name_its_own_creditor(portfolio):
    from renderer.video.captions import render_captions

    with portfolio.db.session() as session:
        for debtor in session.scalars(select(Debtor)):
            view = build_view(debtor, debtor.campaign, base_url="https://k.example")
            captions = render_captions(view).decode("utf-8")
            assert_names_only(captions, OWNER[debtor.reference], kinds=("name",))
            assert view.brand_color == PROFILES[OWNER[debtor.reference]]["brand_color"]
