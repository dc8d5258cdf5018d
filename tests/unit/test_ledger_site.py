"""The microsite's breakdown shows what is still open of each part after a payment made
elsewhere, in the campaign's allocation order (Flask client, the stored page)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.ledger import manual
from tests.support.app import load_campaign
from workers.jobs import render_debtor


@pytest.fixture
def site(client, ctx):
    """(client, token) of A-1 (1100.00 principal, 84.56 interest, 50.00 fees), rendered."""
    load_campaign(ctx)
    with ctx.db.session() as session:
        debtor_id, token = session.execute(
            select(Debtor.id, Debtor.token).where(Debtor.reference == "A-1")
        ).one()
    render_debtor(debtor_id, ["site"])
    return client, token


def breakdown(client, token: str) -> list[list[str]]:
    """The breakdown table's rows as the debtor reads them (cell texts)."""
    html = client.get(f"/s/{token}").get_data(as_text=True)
    table = html.split('<table class="breakdown', 1)[1].split("</table>", 1)[0]
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", row)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    ]


def pay(ctx, amount: str) -> None:
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        manual.record(session, debtor, amount, method="cash", on=dt.date(2026, 11, 30),
                      user=None, via="test", today=dt.date(2026, 12, 2))  # fmt: skip


def test_the_breakdown_shows_per_part_what_is_still_open(site, ctx):
    client, token = site
    assert breakdown(client, token) == [
        ["Hauptforderung", "1.100,00\xa0€"],
        ["Zinsen", "84,56\xa0€"],
        ["Kosten", "50,00\xa0€"],
        ["Offener Betrag", "1.234,56\xa0€"],
    ]
    pay(ctx, "100.00")  # costs first, then interest (§ 367 BGB)
    assert breakdown(client, token) == [
        ["", "Forderung", "Noch offen"],
        ["Hauptforderung", "1.100,00\xa0€", "1.100,00\xa0€"],
        ["Zinsen", "84,56\xa0€", "34,56\xa0€"],
        ["Kosten", "50,00\xa0€", "0,00\xa0€"],
        ["Bereits gezahlt", "− 100,00\xa0€", ""],
        ["Noch offen", "", "1.134,56\xa0€"],
    ]


def test_a_campaign_order_changes_what_the_page_shows_open(site, ctx):
    client, token = site
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        campaign.settings = {
            **(campaign.settings or {}),
            "payments": {"allocation_order": ["principal", "interest", "fees"]},
        }
    pay(ctx, "1110.00")
    rows = breakdown(client, token)
    assert rows[1:4] == [
        ["Hauptforderung", "1.100,00\xa0€", "0,00\xa0€"],
        ["Zinsen", "84,56\xa0€", "74,56\xa0€"],
        ["Kosten", "50,00\xa0€", "50,00\xa0€"],
    ]
