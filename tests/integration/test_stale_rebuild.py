"""On PostgreSQL and Redis: a rules change reaches a page the front keeps (through the page
watch) at once, and the render workers rebuild the stale stored pages in the background."""

from __future__ import annotations

import datetime as dt

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.site import artifacts, freshness
from renderer.texts import load_texts
from tests.integration.test_fastlane import listening, settle
from workers import queues
from workers.jobs import render_debtor
from workers.render import rebuild_stale

pytestmark = pytest.mark.integration


def intro(tone: str) -> str:
    text = load_texts("site").for_lang("de", tone)["intro"]
    return text.format(creditor="Stadtwerke Beispielstadt GmbH")


def stored_page(context, token: str) -> str:
    with context.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.token == token))
        key = artifacts.find(session, debtor, "site").key
    return context.storage.get(key).decode()


def test_a_rules_change_reaches_the_kept_page_and_the_workers_rebuild_it(buffered):
    context, client, token = buffered  # A-1, de-DE
    with context.db.session() as session:
        campaign_id = session.scalar(select(Campaign.id))
        debtor_ids = list(session.scalars(select(Debtor.id)))
    for debtor_id in debtor_ids:
        render_debtor(debtor_id, ["site"])
    first = client.get(f"/s/{token}").get_data(as_text=True)
    assert intro("friendly") in first
    client.get(f"/s/{token}")
    seq = listening(client)
    client.get(f"/s/{token}")  # kept by the lane from now on

    with context.db.session() as session:  # what the cockpit's rules page does
        campaign = session.get(Campaign, campaign_id)
        saved = save_rules(session, campaign, parse_rules({"defaults": {"tone": "firm"}}))
        decide(session, campaign, saved, dt.date.today())
        assert artifacts.mark_stale(session, campaign_id, "rules") == 3
    settle(client, seq)
    served = client.get(f"/s/{token}").get_data(as_text=True)
    assert intro("firm") in served and intro("firm") not in stored_page(context, token)

    handles = rebuild_stale(context, campaign_id)
    assert len(handles) == 3  # one render job per debtor, on the render queue
    connection = queues.redis_connection(context.settings)
    seq = listening(client)
    SimpleWorker([Queue(queues.RENDER, connection=connection)], connection=connection).work(
        burst=True
    )
    assert intro("firm") in stored_page(context, token)
    with context.db.session() as session:
        summary = freshness.summary(session, campaign_id)
    assert summary["kinds"]["site"] == {"stored": 3, "stale": 0}
    assert summary["last_rendered"] is not None
    settle(client, seq)
    assert client.get(f"/s/{token}").get_data(as_text=True) == served  # now from storage
