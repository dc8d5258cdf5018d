"""The parts of a claim working together (issue 19): interest per item from its own date, a
disputed item that bears no interest and can be closed alone, and a settlement offer taken
that stops interest for good."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from sqlalchemy import select

from kindly.accounts.models import User
from kindly.campaigns.models import Campaign, Debtor
from kindly.claims import accrual
from kindly.claims.balance import balance_minor
from kindly.claims.items import items_of
from kindly.disputes import service as disputes
from kindly.rules.store import save_rules
from kindly.rules.validate import parse_rules
from tests.support import disputefiles as make
from tests.support.app import load_campaign
from tests.support.offers import apply_rules, offer_rules, take_offer, token_of
from tests.unit.test_web import csrf_from

TODAY = dt.date.today()
A_DAY, B_DAY = TODAY - dt.timedelta(days=100), TODAY - dt.timedelta(days=50)
ITEMS = (
    "reference,first_name,last_name,email,locale,currency,due_date,item_id,item_date,"
    "item_description,amount_due\n"
    f"Z-1,Ida,Zinsmann,ida.zinsmann@example.org,de-DE,EUR,{A_DAY},A,{A_DAY},Strom,1000.00\n"
    f"Z-1,Ida,Zinsmann,ida.zinsmann@example.org,de-DE,EUR,{A_DAY},B,{B_DAY},Gas,500.00\n"
)
# at 7.3 % a year: A 1,000.00 € × 100 days = 20.00 €, B 500.00 € × 50 days = 5.00 €
SEVEN_THREE = {"interest": {"basis": "contractual", "rate": "7.3"}}


@pytest.fixture
def zins(ctx):
    load_campaign(ctx, "zins", ITEMS)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == "zins"))
        save_rules(session, campaign, parse_rules(SEVEN_THREE))
    return ctx


def ida(session) -> Debtor:
    return session.scalar(select(Debtor).where(Debtor.reference == "Z-1"))


def manager(session) -> User:
    user = User(email="lea@example.org", password_hash="-", role="manager")
    session.add(user)
    session.flush()
    return user


def test_each_item_bears_interest_from_its_own_date(zins):
    with zins.db.session() as session:
        debtor = ida(session)
        [breakdown] = accrual.breakdowns(session, [debtor], TODAY).values()
        by_item = {p.piece.key: (p.piece.due_date, p.interest_minor) for p in breakdown.pieces}
        assert by_item == {"A": (A_DAY, 2000), "B": (B_DAY, 500)}
        assert balance_minor(session, debtor) == 150000 + 2500


def test_a_disputed_item_bears_nothing_and_closing_it_leaves_the_rest_owed(zins, app):
    with zins.db.session() as session:
        debtor = ida(session)
        with pytest.raises(disputes.DisputeError, match="no such open item"):
            disputes.open_dispute(session, zins.storage, debtor, reason="amount_wrong",
                                  text="", uploads=[], scanner=disputes.Scanner(),
                                  item_ref="C")  # fmt: skip
        dispute = disputes.open_dispute(
            session, zins.storage, debtor, reason="not_received", text="Nie geliefert",
            uploads=[], scanner=disputes.Scanner(), item_ref="B",
        )  # fmt: skip
        states = {i.item_id: i.state for i in items_of(session, [debtor.id])[debtor.id]}
        assert states == {"A": "open", "B": "disputed"}
        assert accrual.accrued_minor(session, [debtor], TODAY) == {debtor.id: 2000}
        disputes.resolve(session, zins.settings, dispute, user=manager(session), outcome="closed")
        assert debtor.amount_due_minor == 100000  # B is gone, A is still owed
        assert [i.item_id for i in items_of(session, [debtor.id])[debtor.id]] == ["A"]
        assert balance_minor(session, debtor) == 100000 + 2000


def test_a_rejected_item_dispute_opens_the_item_again_with_its_interest(zins):
    with zins.db.session() as session:
        debtor = ida(session)
        dispute = disputes.open_dispute(
            session, zins.storage, debtor, reason="amount_wrong", text="",
            uploads=[], scanner=disputes.Scanner(), item_ref="A",
        )  # fmt: skip
        assert accrual.accrued_minor(session, [debtor], TODAY) == {debtor.id: 500}
        disputes.resolve(session, zins.settings, dispute, user=manager(session),
                         outcome="rejected", answer="Der Zähler wurde abgelesen.")  # fmt: skip
        states = {i.item_id: i.state for i in items_of(session, [debtor.id])[debtor.id]}
        assert states == {"A": "open", "B": "open"}
        assert accrual.accrued_minor(session, [debtor], TODAY) == {debtor.id: 2500}


def test_the_dispute_form_lets_the_debtor_name_one_invoice(zins, client):
    token = token_of(zins, "Z-1")
    form = client.get(f"/s/{token}/dispute").get_data(as_text=True)
    assert "data-dispute-item" in form and ">Die ganze Forderung<" in form
    assert 'value="B"' in form and "Gas" in form
    answer = client.post(
        f"/s/{token}/dispute",
        data={
            "csrf_token": csrf_from(form),
            "reason": "not_received",
            "text": "",
            "item": "B",
            "files": [(io.BytesIO(make.pdf()), "beleg.pdf")],
        },
        content_type="multipart/form-data",
    )
    assert answer.status_code == 303
    with zins.db.session() as session:
        debtor = ida(session)
        assert {i.item_id: i.state for i in items_of(session, [debtor.id])[debtor.id]}["B"] == (
            "disputed"
        )


def test_a_settlement_offer_taken_stops_interest_for_good(ctx, client):
    load_campaign(ctx)  # 1.234,56 € due 2026-12-20 (sample portfolio), de-DE
    with ctx.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        anna.due_date = TODAY - dt.timedelta(days=100)
        anna.principal_minor = anna.interest_minor = anna.fees_minor = None
    rules = offer_rules(TODAY + dt.timedelta(days=10)) | SEVEN_THREE
    apply_rules(ctx, rules, TODAY)
    token = token_of(ctx, "A-1")
    assert take_offer(client, token).headers["Location"].endswith("?payment=succeeded")
    with ctx.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        assert balance_minor(session, anna) == 0
        # the written-off rest settles like money on its day: nothing accrues after it
        assert balance_minor(session, anna, TODAY + dt.timedelta(days=60)) == 0


def test_an_open_dispute_of_the_whole_case_holds_its_interest(zins):
    with zins.db.session() as session:
        debtor = ida(session)
        dispute = disputes.open_dispute(
            session, zins.storage, debtor, reason="amount_wrong", text="", uploads=[],
            scanner=disputes.Scanner(), today=TODAY,
        )  # fmt: skip
        later = TODAY + dt.timedelta(days=73)  # 1,500.00 € × 7.3 % × 73 / 365 = 21.90 €
        assert accrual.accrued_minor(session, [debtor], later) == {debtor.id: 2500}
        disputes.resolve(session, zins.settings, dispute, user=manager(session),
                         outcome="rejected", answer="Die Rechnung stimmt.")  # fmt: skip
        assert accrual.accrued_minor(session, [debtor], later) == {debtor.id: 2500 + 2190}
