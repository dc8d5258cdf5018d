"""A kept page follows its case on PostgreSQL: a hold placed elsewhere (the cockpit, another
web process) is announced on `kindly_pages`, so the fast lane does not keep serving the
page's old first screen (migration 0995)."""

from __future__ import annotations

import importlib.util

from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.infra.paths import ROOT
from kindly.site import microsite
from tests.integration.test_fastlane import flask_paths, lane_of, listening, settle


def test_every_event_the_live_state_reads_is_announced():
    # the newest migration that rewrites the page trigger names the types it announces
    # (0995, then 1006 for written_off and survey)
    path = ROOT / "kindly/infra/migrations/versions/1006_offers_survey.py"
    spec = importlib.util.spec_from_file_location("page_case_events", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert set(microsite.CASE_EVENTS) | {"sent"} <= set(migration.TYPES)


def test_a_hold_placed_elsewhere_reaches_a_warm_page(buffered):
    from kindly.cases import holds

    context, client, token = buffered
    path = f"/s/{token}"
    first = client.get(path).get_data(as_text=True)  # Flask builds and keeps it
    assert 'data-cta="pay"' in first
    client.get(path)  # the lane starts the watch
    seq = listening(client)
    client.get(path)
    seen = flask_paths(client)
    assert client.get(path).get_data(as_text=True) == first and seen == []
    with context.db.session() as session:  # as the cockpit would, in another process
        debtor = session.scalar(select(Debtor).where(Debtor.token == token))
        hold = holds.place(session, debtor, "dispute", source="cockpit", by="m@example.org")
        hold_id = hold.id
    settle(client, seq)
    disputed = client.get(path).get_data(as_text=True)
    assert 'data-case="disputed"' in disputed and 'data-cta="pay"' not in disputed
    seq = lane_of(client)._watch._seq
    with context.db.session() as session:  # answered: collection resumes, and the page asks
        debtor = session.scalar(select(Debtor).where(Debtor.token == token))
        holds.release(session, debtor, hold_id, by="m@example.org", note="answered")
    settle(client, seq)
    assert 'data-cta="pay"' in client.get(path).get_data(as_text=True)
