"""Settlement offers on PostgreSQL: by segment, to the day, with their floor; the offered
amount paid through the sandbox or by a matched transfer settles the case with a write-off,
less settles nothing; an experiment variant that offers; the survey stored once."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kindly.campaigns.models import Debtor
from kindly.cases.read import case_of
from kindly.claims.amount import amount_on
from kindly.claims.writeoffs import WriteOff
from kindly.feedback import survey
from kindly.feedback.models import SurveyAnswer
from kindly.reconciliation.importer import import_statement
from kindly.site.personalise import build_view
from tests.support import bankfiles as bf
from tests.support.app import front_client, installed, load_campaign, make_settings
from tests.support.offers import apply_rules, offer_rules, pay_part, take_offer, token_of

IBAN = "DE02120300000000202051"
TODAY = dt.date.today()
UNTIL = TODAY + dt.timedelta(days=7)
PORTFOLIO = (
    "reference,first_name,last_name,locale,currency,amount_due,due_date\n"
    "O-1,Erika,Mustermann,de-DE,EUR,500.00,2026-10-01\n"
    "O-2,Max,Müller,de-DE,EUR,300.00,2026-10-01\n"
    "O-3,Jane,Doe,en-GB,EUR,400.00,2026-10-01\n"
    "O-4,Lena,Schmidt,de-DE,EUR,250.00,2026-10-01\n"
)


@pytest.fixture
def books(tmp_path, postgres_url):
    settings = make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url)
    with installed(settings) as ctx:
        load_campaign(ctx, "winter", PORTFOLIO)
        apply_rules(ctx, offer_rules(UNTIL, discount_percent=30, floor=200), TODAY)
        yield ctx


def debtor(session, reference: str) -> Debtor:
    return session.scalar(select(Debtor).where(Debtor.reference == reference))


def test_offers_by_segment_to_the_day_and_above_the_floor(books):
    with books.db.session() as session:
        erika, max_, jane = (debtor(session, r) for r in ("O-1", "O-2", "O-3"))
        on = build_view(erika, erika.campaign, base_url="http://x", today=UNTIL)
        assert (on.offer_minor, on.offer_saving) == (35000, "150,00\xa0€")  # 30 % off 500
        after = build_view(
            erika, erika.campaign, base_url="http://x", today=UNTIL + dt.timedelta(days=1)
        )
        assert (after.offer_minor, after.offer_amount) == (0, "")  # the day after: no offer
        assert (
            build_view(max_, max_.campaign, base_url="http://x", today=TODAY).offer_minor == 21000
        )
        assert build_view(jane, jane.campaign, base_url="http://x", today=TODAY).offer_minor == 0
        lena = debtor(session, "O-4")  # 30 % off 250 would be 175: the floor keeps it at 200
        assert (
            build_view(lena, lena.campaign, base_url="http://x", today=TODAY).offer_minor == 20000
        )


def test_the_offered_amount_settles_less_does_not(books):
    client = front_client(books)
    take_offer(client, token_of(books, "O-1"))
    pay_part(client, token_of(books, "O-2"), "209,99")  # a cent below the offer of 210,00
    with books.db.session() as session:
        erika, max_ = debtor(session, "O-1"), debtor(session, "O-2")
        rows = session.scalars(select(WriteOff)).all()
        assert [(r.debtor_id, r.amount_minor, r.reason, r.offered_minor) for r in rows] == [
            (erika.id, 15000, "Winter deal", 35000)]  # fmt: skip
        assert case_of(session, erika).state == "paid"
        assert amount_on(session, erika, TODAY).total_minor == 35000
        assert case_of(session, max_).state == "partly_paid"
    # what is open of Max's claim (90,01 €) is below the floor: no offer, the rest in full
    client.application.extensions.pop("kindly_pages", None)
    page = client.get(f"/s/{token_of(books, 'O-2')}").get_data(as_text=True)
    assert "data-offer=" not in page
    pay_part(client, token_of(books, "O-2"), "90,01")
    with books.db.session() as session:
        max_ = debtor(session, "O-2")
        assert session.scalar(select(func.count()).select_from(WriteOff)) == 1  # Erika's only
        assert case_of(session, max_).state == "paid"


def test_a_transfer_of_exactly_the_offered_amount_settles(books):
    with books.db.session() as session:
        erika, lena = debtor(session, "O-1"), debtor(session, "O-4")
        statement = bf.camt053([
            bf.Payment("Erika Mustermann", IBAN, "350.00", reference=erika.payment_reference,
                       booked=TODAY),
            bf.Payment("Lena Schmidt", IBAN, "199.99", reference=lena.payment_reference,
                       booked=TODAY),
        ])  # fmt: skip
        result = import_statement(session, books.storage, statement, "offers.xml")
        assert result.matched == 2
    with books.db.session() as session:
        erika, lena = debtor(session, "O-1"), debtor(session, "O-4")
        rows = session.scalars(select(WriteOff)).all()
        assert [(r.debtor_id, r.amount_minor) for r in rows] == [(erika.id, 15000)]
        assert case_of(session, erika).state == "paid"
        assert case_of(session, lena).state == "partly_paid"  # 1 cent below the floor's 200
        # the same statement again books nothing twice
        import_statement(session, books.storage, statement, "offers.xml")
        assert session.scalar(select(func.count()).select_from(WriteOff)) == 1


def test_an_experiment_variant_offers_and_the_survey_is_stored_once(books):
    document = {"experiments": [{"name": "offer-test", "goal": "collected", "holdout": 0.5,
                                 "variants": [{"name": "discount", "set": {"offer": {
                                     "discount": 100, "valid_until": UNTIL.isoformat()}}}]}]}  # fmt: skip
    apply_rules(books, document, TODAY)
    with books.db.session() as session:
        people = session.scalars(select(Debtor).order_by(Debtor.id)).all()
        for person in people:
            view = build_view(person, person.campaign, base_url="http://x", today=TODAY)
            expected = person.amount_due_minor - 10000 if person.variant == "discount" else 0
            assert view.offer_minor == expected, person.reference
        erika = people[0]
        erika_id = erika.id
    # two answers at once for the same case and occasion: one is stored
    errors: list[str] = []

    def answer(score: int) -> None:
        with books.db.session() as session:
            try:
                survey.answer(session, session.get(Debtor, erika_id), "paid", score, None)
            except survey.SurveyError as exc:
                errors.append(exc.reason)

    threads = [threading.Thread(target=answer, args=(n,)) for n in (2, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with books.db.session() as session:
        assert session.scalar(select(func.count()).select_from(SurveyAnswer)) == 1
        report = survey.report(session, session.get(Debtor, erika_id).campaign_id)
    assert errors == ["already"] and report["overall"]["count"] == 1
