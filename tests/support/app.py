"""What tests share: the sample portfolio, settings on a private folder, a migrated context,
a test client of the app, a loaded campaign, a launched one."""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import cache
from pathlib import Path

from sqlalchemy import event, select

from kindly import context as context_module
from kindly.campaigns.models import Campaign, CampaignStatus
from kindly.campaigns.portfolio import import_portfolio, read_portfolio
from kindly.context import Context
from kindly.infra.config import Settings, load_settings
from kindly.infra.db import Database
from kindly.infra.files import make_private_dir

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


@cache
def _migrated_sqlite() -> Path:
    """A SQLite database the migrations brought to head, once per test process."""
    folder = Path(tempfile.mkdtemp(prefix="kindly-migrated-"))
    atexit.register(shutil.rmtree, folder, True)
    database = Database(f"sqlite:///{folder / 'kindly.db'}")
    database.migrate()
    database.dispose()
    return folder / "kindly.db"


def _copied_migrated(url: str) -> bool:
    """Whether a SQLite file that did not exist yet is now a copy of the migrated database.

    Running the migrations takes about 0.2 s, even finding them already run 20 ms; the copy
    takes a millisecond.
    """
    if not url.startswith("sqlite:///"):
        return False
    path = Path(url.split("///", 1)[-1])
    if path.exists():
        return False
    make_private_dir(path.parent)
    source = sqlite3.connect(_migrated_sqlite())
    with closing(source), closing(sqlite3.connect(path)) as target:
        source.backup(target)
    return True


def _commit_without_flush(dbapi_connection, _record) -> None:
    """WAL's synchronous=NORMAL: a commit waits for no disk flush (about 3 ms each), which
    only a power cut could tell apart; a test machine's power never fails mid-test."""
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


@contextmanager
def installed(settings: Settings) -> Iterator[Context]:
    """A migrated context with its storage ready, the process's current one in the block."""
    copied = _copied_migrated(settings.database_url)
    context = Context(settings)
    if settings.database_url.startswith("sqlite:"):
        event.listen(context.db.engine, "connect", _commit_without_flush)
    if not copied:
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
