"""What tests share: the sample portfolio, settings on a private folder, a migrated context,
a test client of the app, a loaded campaign, a launched one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select

from kindly import context as context_module
from kindly.campaigns.models import Campaign, CampaignStatus
from kindly.campaigns.portfolio import import_portfolio, read_portfolio
from kindly.context import Context
from kindly.infra.config import Settings, load_settings

PORTFOLIO = """reference,salutation,first_name,last_name,email,phone,locale,currency,amount_due,principal,interest,fees,due_date,creditor,contract,street,postal_code,city,country
A-1,Frau,Anna,Müller,anna@example.org,+4915112345678,de-DE,EUR,1234.56,1100.00,84.56,50.00,2026-12-15,Stadtwerke Beispielstadt GmbH,Stromliefervertrag 4711,Hauptstraße 5,10115,Berlin,DE
A-2,Ms,Siobhán,O'Brien,siobhan@example.org,,en-GB,GBP,89.90,,,,2026-12-20,Northern Water Ltd,Account 99,12 Baker Street,NW1 6XE,London,GB
A-3,,Giulia,D'Angelo,,,it-IT,EUR,42.00,,,,2027-01-10,Acqua Roma S.p.A.,Contratto 7,Via Roma 10,00184,Roma,IT
"""


def make_settings(data_dir: Path, **env: str) -> Settings:
    """Settings as the process would read them, on a private data folder."""
    values = {"KINDLY_DATA_DIR": str(data_dir), "KINDLY_SECRET_KEY": "test-secret-key-0123456789"}
    values.update(env)
    return load_settings(values)


PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)
"""A browser's User-Agent (machines are counted apart)."""


@contextmanager
def installed(settings: Settings) -> Iterator[Context]:
    """A migrated context with its storage ready, the process's current one in the block."""
    context = Context(settings)
    context.db.migrate()
    context.storage.ensure()
    context_module.use(context)
    try:
        yield context
    finally:
        context_module.use(None)


def front_client(context: Context, *, user_agent: str = PHONE_UA, **config):
    """A test client of the Flask app on this context (`config` goes to app.config)."""
    from web import create_app

    application = create_app(context.settings, context=context)
    application.config.update(config)
    test_client = application.test_client()
    test_client.environ_base["HTTP_USER_AGENT"] = user_agent
    return test_client


def load_campaign(context: Context, slug: str = "winter", text: str = PORTFOLIO) -> int:
    """Create a campaign with the sample portfolio; return its id."""
    with context.db.session() as session:
        campaign = Campaign(slug=slug, name=slug.title(), default_locale="de-DE")
        session.add(campaign)
        session.flush()
        import_portfolio(session, campaign, read_portfolio(text.encode(), "p.csv"))
        return campaign.id


def launched(context: Context, slug: str = "winter") -> None:
    """Mark the campaign live, as `kindly launch` does once its check passes (only a live
    campaign sends; the sample portfolio lacks the launch check's address and contact)."""
    with context.db.session() as session:
        campaign_id = session.scalar(select(Campaign.id).where(Campaign.slug == slug))
        row = session.get(CampaignStatus, campaign_id) or CampaignStatus(campaign_id=campaign_id)
        row.status = "live"
        session.add(row)
