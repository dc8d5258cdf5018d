"""The formatted facts the renderers receive."""

from __future__ import annotations

from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.site.personalise import build_view
from tests.support.app import load_campaign


def view_of(ctx, reference: str):
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == reference))
        return build_view(debtor, debtor.campaign, base_url="https://pay.example.com")


def test_addresses_follow_each_countrys_postal_rules(ctx):
    load_campaign(ctx)
    assert view_of(ctx, "A-1").address_lines == (
        "Frau Anna Müller",
        "Hauptstraße 5",
        "10115 Berlin",
    )
    assert view_of(ctx, "A-2").address_lines == (
        "Ms Siobhán O'Brien",
        "12 Baker Street",
        "LONDON",
        "NW1 6XE",
    )


def test_links_amounts_and_dates_are_formatted_for_the_debtor(ctx):
    load_campaign(ctx)
    view = view_of(ctx, "A-3")
    assert (view.lang, view.amount, view.due_date) == ("it", "42,00\xa0€", "10 gennaio 2027")
    assert view.greeting == "Gentile Giulia D'Angelo,"
    assert view.site_url.startswith("https://pay.example.com/s/") and len(view.site_url) >= 58
    assert view.short_url == view.site_url.removeprefix("https://")
