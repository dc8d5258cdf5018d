"""Settlement offers and the one question after (SQLite): rules that offer a discount by
segment, its floor and last day, taking it through the sandbox, the write-off it books,
and the survey stored once per case and occasion."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select, update

from kindly.campaigns.models import Debtor
from kindly.cases.read import case_of
from kindly.claims import offers
from kindly.claims.amount import amount_on
from kindly.claims.writeoffs import WriteOff, written_off_minor
from kindly.feedback import survey
from kindly.feedback.models import SurveyAnswer
from kindly.payments.models import Payment
from kindly.rules.document import RulesError
from kindly.rules.models import Decision
from kindly.rules.offers import terms
from kindly.rules.validate import parse_rules
from kindly.site.personalise import build_view
from kindly.tracking.models import Event
from tests.support.app import load_campaign
from tests.support.offers import (
    apply_rules,
    csrf,
    offer_rules,
    pay_part,
    take_offer,
    token_of,
)

DAY = dt.date(2026, 12, 2)
TODAY = dt.date.today()


# ---- the rules document -------------------------------------------------------------------


def test_every_offer_problem_is_listed_with_its_path():
    document = {
        "defaults": {"offer": {"discount_percent": 120, "valid_until": "2026-12-31"}},
        "segments": [{"name": "old", "when": {"days_past_due": {"gte": 90}},
                      "offer": {"discount": 50, "floor": -1, "valid_until": "2026-11-30",
                                "bonus": 1}}],
        "experiments": [{"name": "offer-test", "segments": ["default"], "holdout": 0.5,
                         "variants": [{"name": "B", "set": {"offer": {"valid_until": "soon"}}}]}],
    }  # fmt: skip
    with pytest.raises(RulesError) as caught:
        parse_rules(document, today=DAY)
    assert caught.value.errors == [
        "defaults.offer.discount_percent: 120 % is over 100 %",
        "segments[0] (old).offer.bonus: unknown key (expected one of discount_percent, "
        "discount, floor, floor_percent, valid_until, reason)",
        "segments[0] (old).offer.floor: expected an amount of 0 or more, e.g. 150",
        "segments[0] (old).offer.valid_until: 2026-11-30 has passed (today is 2026-12-02); "
        "an offer must still be valid when it is saved",
        "experiments[0] (offer-test).variants[0].set.offer: give exactly one of "
        "discount_percent or discount",
        "experiments[0] (offer-test).variants[0].set.offer.valid_until: expected a date like "
        '"2026-12-31", got "soon"',
    ]


def test_an_offer_below_its_floor_is_refused():
    document = {"defaults": {"offer": {"discount_percent": 60, "floor_percent": 50,
                                       "valid_until": "2026-12-31"}}}  # fmt: skip
    with pytest.raises(RulesError) as caught:
        parse_rules(document, today=DAY)
    assert caught.value.errors == [
        "defaults.offer: the offer (40 % of the claim) is below its floor (50 % of the claim); "
        "lower the discount or the floor"
    ]
    assert parse_rules({"defaults": {"offer": None}}, today=DAY)  # null: no offer


def test_the_offered_amount_keeps_to_the_floor_and_the_last_day():
    offer = {"discount_percent": 20, "floor": 1000, "valid_until": "2026-12-31"}
    deal = terms(offer, 123456, "EUR", DAY)  # 20 % of 1,234.56 would leave 987.65
    assert (deal.offered_minor, deal.written_off_minor) == (100000, 23456)
    assert terms(offer, 123456, "EUR", dt.date(2026, 12, 31)).offered_minor == 100000
    assert terms(offer, 123456, "EUR", dt.date(2027, 1, 1)) is None  # the day after: gone
    assert terms(offer, 90000, "EUR", DAY) is None  # the floor is above what is owed
    amount_off = terms({"discount": "50.50", "valid_until": "2026-12-31"}, 8990, "GBP", DAY)
    assert amount_off.offered_minor == 3940 and amount_off.reason == "settlement offer"
    assert (
        terms({"discount": 500, "valid_until": "2026-12-31"}, 1200, "JPY", DAY).offered_minor == 700
    )


def test_a_survey_score_outside_one_to_five_is_refused():
    for raw in ("0", "6", "", "4.5", "five", "-1", "10"):
        with pytest.raises(survey.SurveyError, match="invalid_score"):
            survey.parse_score(raw)
    assert survey.parse_score(" 5 ") == 5


# ---- on the page and in the books (SQLite) ------------------------------------------------


@pytest.fixture
def winter(ctx):
    load_campaign(ctx)
    return ctx


def test_the_offer_applies_by_segment(winter, client):
    apply_rules(winter, offer_rules(TODAY + dt.timedelta(days=10), floor=1000), TODAY)
    anna, siobhan = token_of(winter, "A-1"), token_of(winter, "A-2")
    page = client.get(f"/s/{anna}").get_data(as_text=True)
    assert 'data-offer="100000"' in page  # 20 % off 1.234,56 € is below the floor of 1.000 €
    assert "1.000,00\xa0€" in page and "234,56\xa0€" in page
    other = client.get(f"/s/{siobhan}").get_data(as_text=True)
    assert "data-offer=" not in other  # en-GB: the default segment offers nothing
    gone = client.get(f"/s/{siobhan}/offer").get_data(as_text=True)
    assert "data-offer-gone" in gone and "This offer is no longer available" in gone


def test_paying_the_offered_amount_settles_and_books_the_write_off(winter, client):
    apply_rules(winter, offer_rules(TODAY + dt.timedelta(days=10)), TODAY)
    token = token_of(winter, "A-1")
    done = take_offer(client, token)
    assert done.status_code == 303 and done.headers["Location"].endswith("?payment=succeeded")
    with winter.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        paid = session.scalars(select(Payment).where(Payment.debtor_id == anna.id)).all()
        assert [(p.amount_minor, p.status) for p in paid] == [(98765, "succeeded")]
        row = session.scalar(select(WriteOff))
        assert (row.debtor_id, row.amount_minor, row.reason, row.source, row.offered_minor) == (
            anna.id, 24691, "Winter deal", "offer", 98765)  # fmt: skip
        assert row.payment_id == paid[0].id
        assert written_off_minor(session, [anna.id]) == {anna.id: 24691}
        assert amount_on(session, anna, TODAY).total_minor == 98765
        assert case_of(session, anna).state == "paid"
        event = session.scalar(select(Event).where(Event.type == "written_off"))
        assert event.data["amount"] == "246.91" and event.data["reason"] == "Winter deal"
        # booking again (a webhook delivered twice) books nothing more
        assert offers.settle_offers(session, [anna.id]) == []
        assert session.scalar(select(func.count()).select_from(WriteOff)) == 1
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert 'data-amount="0"' in page and "data-offer=" not in page
    assert 'data-survey="paid"' in page  # the one question after
    assert re.search(
        r"<tr data-written-off><th scope=\"row\">Erlassen \(Vergleich\)</th>"
        r"<td>− 246,91\xa0€</td>",
        page,
    )


def test_paying_less_than_the_offer_settles_nothing(winter, client):
    apply_rules(winter, offer_rules(TODAY + dt.timedelta(days=10)), TODAY)
    token = token_of(winter, "A-1")
    refused = take_offer(client, token, amount="98764")  # one cent below what is offered
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "987,64\xa0€ ist weniger als die angebotenen 987,65\xa0€" in text
    pay_part(client, token, "500,00")
    with winter.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        assert [p.amount_minor for p in session.scalars(select(Payment))] == [50000]
        assert session.scalar(select(func.count()).select_from(WriteOff)) == 0
        assert case_of(session, anna).state == "partly_paid"
    # what is open now (734,56 €) gets the offer anew: 20 % off, in one go
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert 'data-offer="58765"' in page


def test_an_expired_offer_is_never_shown(winter, client, settings):
    until = TODAY
    apply_rules(winter, offer_rules(until), TODAY)
    token = token_of(winter, "A-1")
    assert 'data-offer="98765"' in client.get(f"/s/{token}").get_data(as_text=True)
    kept = client.get(f"/s/{token}").get_data(as_text=True)
    # the day after: the stored decision says the offer ended yesterday
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
    with winter.db.session() as session:
        decision = session.scalar(select(Decision).where(Decision.debtor_id == session.scalar(
            select(Debtor.id).where(Debtor.reference == "A-1"))))  # fmt: skip
        treatment = dict(decision.treatment)
        treatment["offer"] = {**treatment["offer"], "valid_until": yesterday}
        session.execute(update(Decision).where(Decision.id == decision.id)
                        .values(treatment=treatment))  # fmt: skip
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        assert build_view(anna, anna.campaign, base_url="http://x", today=TODAY).offer_amount == ""
        letter_day = build_view(anna, anna.campaign, base_url="http://x", today=until)
        assert letter_day.offer_amount == ""  # the rules now say it ended yesterday
    # a new day is a new stamp of the live state: the page this process kept is built again
    client.application.extensions.pop("kindly_pages", None)
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "data-offer=" not in page
    # a page kept or stored from before that day: its offer is cut out wherever it is served
    stale = kept.replace(f"kindly:offer:{until.isoformat()}", f"kindly:offer:{yesterday}")
    assert "data-offer=" in stale and "data-offer=" not in offers.strip_expired(stale, TODAY)
    # an old letter's or email's link to the offer: gone, and nothing is charged
    gone = client.get(f"/s/{token}/offer").get_data(as_text=True)
    assert "Dieses Angebot gilt nicht mehr" in gone
    token_form = csrf(client.get(f"/s/{token}/promise").get_data(as_text=True))
    answer = client.post(f"/s/{token}/offer", data={"csrf_token": token_form, "amount": "98765"})
    assert answer.status_code == 410
    with winter.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Payment)) == 0


def test_the_offer_is_in_the_letter_email_and_video_texts(winter):
    from kindly.messaging.email import compose_email, links
    from renderer.video.scenes import scene_texts, template_for

    apply_rules(winter, offer_rules(dt.date(2026, 12, 31)), DAY)
    with winter.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        view = build_view(anna, anna.campaign, base_url="http://x", today=DAY)
    assert (view.offer_amount, view.offer_until) == ("987,65\xa0€", "31. Dezember 2026")
    message = compose_email(view, "anna@example.org", sender="a@b.c", reply_to=None,
                            link=links("http://x", "t" * 32, "email", unsubscribe="u"),
                            message_id="<1@x>")  # fmt: skip
    text = message.get_body(("plain",)).get_content()
    assert "Zahlen Sie bis zum 31. Dezember 2026 einmalig 987,65\xa0€ statt 1.234,56\xa0€" in text
    assert "to=offer" in text
    template = template_for(view)
    amount_scene = next(s for s in template.scenes if s.name == "amount")
    said = " ".join(scene_texts(view, template, amount_scene))
    assert said.endswith("Zahlen Sie 987,65 € bis zum 31. Dezember 2026 – und alles ist erledigt")
    from io import BytesIO

    from pypdf import PdfReader

    from renderer.letter import render_letter

    text = " ".join(page.extract_text() for page in PdfReader(BytesIO(render_letter(view))).pages)
    assert "Vergleichsangebot" in text and "987,65" in text


def test_the_survey_is_stored_once_and_reported(winter, client):
    apply_rules(winter, offer_rules(TODAY + dt.timedelta(days=10)), TODAY)
    token = token_of(winter, "A-1")
    assert client.get(f"/s/{token}/survey?score=4").status_code == 200  # not paid: no question
    take_offer(client, token)
    form = client.get(f"/s/{token}/survey?score=4").get_data(as_text=True)
    assert 'value="4" checked' in form
    bad = client.post(f"/s/{token}/survey", data={"csrf_token": csrf(form), "score": "6"})
    assert bad.status_code == 422 and "Bitte wählen Sie eine Zahl von 1 bis 5." in bad.get_data(
        as_text=True)  # fmt: skip
    sent = client.post(f"/s/{token}/survey", data={"csrf_token": csrf(form), "score": "4",
                                                    "comment": "Schnell erledigt"})  # fmt: skip
    assert sent.status_code == 303 and sent.headers["Location"].endswith("?done=survey")
    again = client.post(f"/s/{token}/survey", data={"csrf_token": csrf(form), "score": "1"})
    assert "Sie haben bereits geantwortet" in again.get_data(as_text=True)
    page = client.get(f"/s/{token}?done=survey").get_data(as_text=True)
    assert "Danke für Ihre Antwort!" in page and "data-survey=" not in page
    with winter.db.session() as session:
        rows = session.scalars(select(SurveyAnswer)).all()
        assert [(r.occasion, r.score, r.comment, r.segment) for r in rows] == [
            ("paid", 4, "Schnell erledigt", "german")]  # fmt: skip
        report = survey.report(session, rows[0].campaign_id)
    assert report["overall"] == {"count": 1, "mean": "4.00",
                                 "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}}  # fmt: skip
    assert report["groups"] == [{"segment": "german", "variant": "A", "count": 1, "mean": "4.00",
                                 "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}}]  # fmt: skip


def test_survey_report_numbers_by_segment_and_variant(winter):
    with winter.db.session() as session:
        debtors = session.scalars(select(Debtor).order_by(Debtor.id)).all()
        for debtor, (segment, variant) in zip(debtors, [("a", "A"), ("a", "A"), ("b", "B")],
                                              strict=True):  # fmt: skip
            debtor.segment, debtor.variant = segment, variant
        for debtor, occasion, score in [(debtors[0], "paid", 5), (debtors[1], "paid", 2),
                                        (debtors[1], "plan", 4), (debtors[2], "plan", 3)]:  # fmt: skip
            survey.answer(session, debtor, occasion, score, None)
        with pytest.raises(survey.SurveyError, match="already"):
            survey.answer(session, debtors[0], "paid", 1, None)
        report = survey.report(session, debtors[0].campaign_id)
    assert report["overall"]["count"] == 4 and report["overall"]["mean"] == "3.50"
    assert report["by_occasion"]["plan"] == {
        "count": 2, "mean": "3.50", "distribution": {"1": 0, "2": 0, "3": 1, "4": 1, "5": 0}}  # fmt: skip
    assert [(g["segment"], g["variant"], g["count"], g["mean"]) for g in report["groups"]] == [
        ("a", "A", 3, "3.67"), ("b", "B", 1, "3.00")]  # fmt: skip


def test_an_experiment_variant_can_test_an_offer(winter, client):
    from kindly.campaigns.models import Campaign
    from kindly.campaigns.portfolio import import_portfolio, read_portfolio
    from kindly.rules.experiments import report
    from kindly.rules.store import current_rules
    from kindly.tracking import events

    rows = "".join(f"B-{n},Kim,Lee{n},de-DE,EUR,100.00,2026-11-01\n" for n in range(24))
    with winter.db.session() as session:
        campaign = session.scalar(select(Campaign))
        import_portfolio(session, campaign, read_portfolio(
            ("reference,first_name,last_name,locale,currency,amount_due,due_date\n" + rows)
            .encode(), "more.csv"), )  # fmt: skip
    until = (TODAY + dt.timedelta(days=5)).isoformat()
    document = {"experiments": [{"name": "offer-test", "goal": "collected", "holdout": 0.5,
                                 "variants": [{"name": "discount", "set": {"offer": {
                                     "discount_percent": 30, "valid_until": until}}}]}]}  # fmt: skip
    apply_rules(winter, document, TODAY)
    with winter.db.session() as session:
        people = session.scalars(select(Debtor).where(Debtor.reference.like("B-%"))).all()
        groups = {d.reference: d.variant for d in people}
        for debtor in people:
            events.record(session, debtor, "viewed", agent="human")
    offered = [ref for ref, variant in groups.items() if variant == "discount"]
    held = [ref for ref, variant in groups.items() if variant == "control"]
    assert offered and held
    for ref in held:
        assert "data-offer=" not in client.get(f"/s/{token_of(winter, ref)}").get_data(as_text=True)
    for ref in offered:
        page = client.get(f"/s/{token_of(winter, ref)}").get_data(as_text=True)
        assert 'data-offer="7000"' in page
    take_offer(client, token_of(winter, offered[0]))
    with winter.db.session() as session:
        campaign = session.scalar(select(Campaign))
        result = report(session, campaign, current_rules(session, campaign))[0]
    rows_by = {row["variant"]: row for row in result["variants"]}
    assert result["goal"] == "collected"
    assert rows_by["discount"]["collected"] == {"EUR": "70.00"}
    assert rows_by["discount"]["conversions"] == 1 and rows_by["control"]["collected"] == {}
    assert re.fullmatch(r"\d+\.\d\d", rows_by["discount"]["collected_per_exposed"]["EUR"])


def test_the_cockpit_and_the_api_report_the_survey(winter, client):
    from tests.unit.test_admin import make_user, sign_in
    from tests.unit.test_api import auth, conforms, key_for

    with winter.db.session() as session:
        debtors = session.scalars(select(Debtor).order_by(Debtor.id)).all()
        debtors[0].segment, debtors[0].variant = "german", "B"
        survey.answer(session, debtors[0], "paid", 5, "Ganz einfach")
        survey.answer(session, debtors[1], "plan", 2, None)
    secret = key_for(winter, "viewer")
    answer = client.get("/api/v1/campaigns/winter/survey", headers=auth(secret))
    assert answer.status_code == 200
    conforms(answer, "/campaigns/{slug}/survey", "get")
    data = answer.get_json()
    assert data["overall"]["count"] == 2 and data["overall"]["mean"] == "3.50"
    assert [(g["segment"], g["variant"], g["mean"]) for g in data["groups"]] == [
        ("default", "A", "2.00"), ("german", "B", "5.00")]  # fmt: skip
    assert "Ganz einfach" not in answer.get_data(as_text=True)  # comments stay in the cockpit
    make_user(winter)
    sign_in(client)
    page = client.get("/admin/campaigns/winter").get_data(as_text=True)
    section = page[page.index('id="survey-h"') : page.index('id="plans-h"')]
    assert '<tr data-segment="german" data-variant="B">' in section
    assert '<td class="num mean">3.50</td>' in section  # all answers
    assert "german/B · 5/5</span> Ganz einfach" in section


def test_privacy_export_names_them_and_erasing_drops_the_comment(winter, client):
    from kindly import privacy

    apply_rules(winter, offer_rules(TODAY + dt.timedelta(days=10)), TODAY)
    take_offer(client, token_of(winter, "A-1"))
    with winter.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        survey.answer(session, anna, "paid", 3, "Anna Müller, Hauptstraße 5")
        data = privacy.export_debtor(session, anna.campaign, anna)
        assert [r["amount_minor"] for r in data["write_offs"]] == [24691]
        assert [r["comment"] for r in data["survey_answers"]] == ["Anna Müller, Hauptstraße 5"]
        privacy.erase_debtor(session, anna, None)
    with winter.db.session() as session:
        answer = session.scalar(select(SurveyAnswer))
        assert (answer.score, answer.comment) == (3, None)
        assert survey.report(session, answer.campaign_id)["overall"]["count"] == 1


def test_bad_offers_through_the_api_change_nothing(winter, client):
    from tests.unit.test_api import auth, key_for

    secret = key_for(winter, "manager")
    good = offer_rules(TODAY + dt.timedelta(days=3))
    assert (
        client.put("/api/v1/campaigns/winter/rules", json=good, headers=auth(secret)).status_code
        == 200
    )
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
    bad = {"segments": [{"name": "german", "when": {"locale": "de-DE"},
                         "offer": {"discount_percent": 101, "valid_until": yesterday}}]}  # fmt: skip
    answer = client.put("/api/v1/campaigns/winter/rules", json=bad, headers=auth(secret))
    assert answer.status_code == 422
    problems = answer.get_json()["problems"]
    assert "segments[0] (german).offer.discount_percent: 101 % is over 100 %" in problems
    assert any(p.startswith(f"segments[0] (german).offer.valid_until: {yesterday} has passed")
               for p in problems)  # fmt: skip
    kept = client.get("/api/v1/campaigns/winter/rules", headers=auth(secret)).get_json()
    assert kept["version"] == 1 and kept["document"] == good


def test_without_online_payment_the_offer_is_a_transfer_of_exactly_its_amount(tmp_path):
    from tests.support.app import front_client, installed, make_settings

    with installed(make_settings(tmp_path / "var", KINDLY_PAYMENTS="none")) as ctx:
        load_campaign(ctx)
        apply_rules(ctx, offer_rules(TODAY + dt.timedelta(days=3)), TODAY)
        page = front_client(ctx).get(f"/s/{token_of(ctx, 'A-1')}/offer").get_data(as_text=True)
    assert "data-transfer" in page and "offer-checkout" not in page
    assert "Bitte überweisen Sie 987,65\xa0€ mit dem Verwendungszweck RF" in page
    assert "Überweisen Sie bis zum" in page


def test_the_case_record_in_the_cockpit_shows_the_write_off(winter, client):
    from tests.unit.test_admin import make_user, sign_in

    apply_rules(winter, offer_rules(TODAY + dt.timedelta(days=10)), TODAY)
    take_offer(client, token_of(winter, "A-1"))
    make_user(winter)
    sign_in(client)
    answer = client.get("/admin/campaigns/winter/debtors/A-1")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert "written_off" in page and "Winter deal" in page and "246.91" in page
