"""The campaign actions the CLI, the API and the dashboard share."""

from __future__ import annotations

import pytest

from kindly import launch
from kindly.campaigns import service
from kindly.errors import NotFound
from renderer.texts import LANGUAGES


def test_slugs():
    assert service.is_slug("winter-2026") and service.is_slug("a")
    for bad in ("", "-winter", "Winter", "winter_2026", "w" * 64, None, 7):
        assert not service.is_slug(bad), bad


def test_every_default_locale_speaks_a_language_with_texts():
    assert [locale.split("-")[0] for locale in service.LOCALES] == list(LANGUAGES)


def test_create_look_up_launch_and_pause(ctx):
    with ctx.db.session() as session:
        assert service.by_slug(session, "spring") is None
        assert not service.slug_taken(session, "spring")
        with pytest.raises(NotFound, match="kindly import FILE --campaign spring --create"):
            service.find_or_fail(session, "spring")
        campaign = service.create_campaign(session, "spring", creditor="Stadtwerke")
        assert campaign.id and (campaign.name, campaign.default_locale) == ("spring", "de-DE")
        assert service.by_slug(session, "spring") is campaign
        assert service.slug_taken(session, "spring")
        assert service.status_of(session, campaign.id) == "draft"

        with pytest.raises(launch.StatusRefused, match="a draft: there is nothing to pause"):
            launch.set_status(session, campaign, "paused")
        assert service.status_of(session, campaign.id) == "draft"
        before, gaps = launch.set_status(session, campaign, "live")
        assert before == "draft" and {(g.template, g.missing.split(" (")[0]) for g in gaps} == {
            ("creditor Stadtwerke", "creditor address"),
            ("creditor Stadtwerke", "whom to contact: phone or email"),
            ("creditor Stadtwerke", "IBAN for letters and bank transfers"),
        }  # fmt: skip
        assert service.status_of(session, campaign.id) == "draft"  # refused: nothing changed

        # the campaign's own letter settings still describe its own creditor
        campaign.settings = {"creditor_address": "Hauptstr. 1, 10115 Berlin",
                             "contact": "service@example.org", "payee_name": "Stadtwerke",
                             "iban": "DE89370400440532013000"}  # fmt: skip
        assert launch.set_status(session, campaign, "live") == ("draft", [])
        assert service.status_of(session, campaign.id) == "live"
        assert launch.set_status(session, campaign, "paused") == ("live", [])
        assert launch.set_status(session, campaign, "paused") == ("paused", [])  # no change
        assert launch.set_status(session, campaign, "live") == ("paused", [])  # resumed
        assert launch.set_status(session, campaign, "ended") == ("live", [])
        with pytest.raises(launch.StatusRefused, match="spring has ended"):
            launch.set_status(session, campaign, "live")
        assert service.status_of(session, campaign.id) == "ended"
        with pytest.raises(ValueError):
            launch.set_status(session, campaign, "draft")
