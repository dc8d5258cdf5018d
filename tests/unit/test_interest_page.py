"""The amount as of the day where the debtor sees it (issue 19): a campaign charging 7.3 % a
year on a claim 100 days overdue shows, pays and prints 1,000.00 € + 20.00 € interest."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.cases.read import case_of
from kindly.claims.balance import balance_minor
from kindly.payments.models import Payment
from kindly.rules.store import save_rules
from kindly.rules.validate import parse_rules
from kindly.site.personalise import build_view
from renderer.letter import LetterRenderer
from tests.support.app import load_campaign
from tests.unit.test_payments import csrf

DUE = dt.date.today() - dt.timedelta(days=100)
PORTFOLIO = f"""reference,first_name,last_name,email,locale,currency,amount_due,due_date
P-1,Ida,Zinsmann,ida.zinsmann@example.org,de-DE,EUR,1000.00,{DUE.isoformat()}
P-2,Ben,Ohnezins,,en-GB,EUR,1000.00,{DUE.isoformat()}
"""
# 1,000.00 € × 7.3 % × 100 / 365 = 20.00 € exactly, whatever day the test runs


@pytest.fixture
def contractual(ctx):
    load_campaign(ctx, "vertrag", PORTFOLIO)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == "vertrag"))
        save_rules(session, campaign, parse_rules({"interest": {"basis": "contractual",
                                                               "rate": "7.3"}}))  # fmt: skip
    return ctx


def token_of(ctx, reference: str) -> str:
    with ctx.db.session() as session:
        return session.scalar(select(Debtor.token).where(Debtor.reference == reference))


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("\xa0", " ")


def test_the_page_shows_the_amount_of_the_day_and_how_the_interest_is_made_up(client, contractual):
    html = client.get(f"/s/{token_of(contractual, 'P-1')}").get_data(as_text=True)
    assert html.count('class="interest"') == 1  # the partial, once
    shown = text(html)
    assert "1.020,00 €" in shown and "1.234" not in shown
    today = dt.date.today()
    assert f"Zinsen bis {today.day}." in shown
    assert "Vertraglich vereinbarte Zinsen von 7,30 % im Jahr" in shown
    assert "1.000,00 € × 7,30 %" in shown and "100 Tage" in shown
    assert "Zinsen gesamt 20,00 €" in shown


def test_the_pay_page_charges_the_amount_of_the_day(client, contractual):
    tok = token_of(contractual, "P-1")
    form = client.get(f"/s/{tok}/pay").get_data(as_text=True)
    assert "1.020,00" in text(form)
    go = client.post(f"/s/{tok}/pay", data={"csrf_token": csrf(form)})
    assert go.status_code == 303
    checkout = go.headers["Location"].split("127.0.0.1:5000", 1)[-1]
    page = client.get(checkout).get_data(as_text=True)
    client.post(checkout, data={"csrf_token": csrf(page), "outcome": "succeeded"})
    with contractual.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "P-1"))
        [paid] = session.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).all()
        assert (paid.amount_minor, paid.status) == (102_000, "succeeded")
        assert balance_minor(session, debtor) == 0
        assert case_of(session, debtor).state == "paid"
        # paid in full today: nothing accrues any more
        later = dt.date.today() + dt.timedelta(days=30)
        assert balance_minor(session, debtor, later) == 0


def test_the_letter_prints_the_amount_of_the_day_with_the_breakdown(contractual):
    with contractual.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "P-2"))
        view = build_view(debtor, debtor.campaign, base_url="https://k.example")
    assert (view.amount, view.interest_accrued, len(view.interest_lines)) == (
        "€1,020.00",
        "€20.00",
        1,
    )
    letter = text(LetterRenderer().html(view))
    assert letter.count("Interest up to") == 1
    assert "€1,000.00 × 7.30 %" in letter and "100 days" in letter
    assert "Contractual interest of 7.30 % a year" in letter
    assert "€1,020.00" in letter


def test_a_campaign_without_interest_shows_no_breakdown(client, ctx):
    load_campaign(ctx, "ohne", PORTFOLIO)
    html = client.get(f"/s/{token_of(ctx, 'P-1')}").get_data(as_text=True)
    assert 'class="interest"' not in html and "1.000,00 €" in text(html)


def test_after_a_part_payment_the_page_shows_what_each_part_still_owes(client, contractual):
    # 500.00 € arrived after 50 days: it paid 10.00 € interest and 490.00 € principal; the
    # 510.00 € left bore 5.10 € in the 50 days since (510.00 × 7.3 % × 50 / 365)
    with contractual.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "P-1"))
        session.add(Payment(campaign_id=debtor.campaign_id, debtor_id=debtor.id,
                            provider="bank", provider_ref="entry-9", amount_minor=50_000,
                            currency="EUR", status="succeeded",
                            received_on=DUE + dt.timedelta(days=50)))  # fmt: skip
    shown = text(client.get(f"/s/{token_of(contractual, 'P-1')}").get_data(as_text=True))
    assert "Hauptforderung 1.000,00 € 510,00 €" in shown
    assert "Zinsen 15,10 € 5,10 €" in shown
    assert "515,10 €" in shown and "Zinsen gesamt 15,10 €" in shown


def test_the_launch_check_asks_for_the_interest_calculation_when_interest_is_charged(
    contractual, monkeypatch
):
    from kindly import launch
    from renderer import letter as letter_module

    assert launch.check_interest_templates() == []  # today's page and letter show it all
    original = letter_module.LetterRenderer.html

    def without_rate(self, view):  # a letter template that leaves the rate out
        return original(self, view).replace(launch.INTEREST_MARKERS["interest rate"], "")

    monkeypatch.setattr(letter_module.LetterRenderer, "html", without_rate)
    with contractual.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == "vertrag"))
        gaps = launch.check_campaign(session, campaign)
    assert launch.Gap("letter", "de", "firm", "interest rate") in gaps
    assert len([g for g in gaps if g.missing == "interest rate"]) == 15  # 5 languages × 3 tones


def test_the_email_states_the_amount_of_the_day_and_its_interest(contractual):
    from kindly.messaging.email import compose_email, links

    with contractual.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "P-1"))
        view = build_view(debtor, debtor.campaign, base_url="https://k.example")
    link = links("https://k.example", "T" * 32, "email", unsubscribe="1~" + "U" * 22)
    message = compose_email(view, "ida.zinsmann@example.org", sender="k@k.example",
                            reply_to=None, link=link, message_id="<1@k.example>")  # fmt: skip
    body = message.get_body(("plain",)).get_content().replace("\xa0", " ")
    assert "1.000,00 €" in body and "20,00 €" in body and "1.020,00 €" in body
