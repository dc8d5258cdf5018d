"""Every answer carries the browser-side protections: HSTS over https, Permissions-Policy, COOP,
and a media source no wider than the storage in use."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kindly.campaigns.models import Debtor
from tests.support.app import front_client, installed, load_campaign, make_settings

PAGES = ("/s/{token}", "/admin/login", "/api/v1/openapi.json", "/healthz", "/no-such-page")


@pytest.fixture(params=["https://pay.example.com", "http://127.0.0.1:5000"])
def front(request, tmp_path):
    """(client, token, https?) on a context whose base URL is https or http."""
    settings = make_settings(tmp_path / "var", KINDLY_BASE_URL=request.param)
    with installed(settings) as context:
        load_campaign(context)
        with context.db.session() as session:
            token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
        yield front_client(context), token, request.param.startswith("https")


def test_every_page_carries_the_browser_protections(front):
    client, token, https = front
    for path in PAGES:
        headers = client.get(path.format(token=token)).headers
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin", path
        assert "camera=()" in headers["Permissions-Policy"], path
        assert "geolocation=()" in headers["Permissions-Policy"], path
        hsts = headers.get("Strict-Transport-Security")
        assert (hsts == "max-age=31536000") if https else hsts is None, path


def test_the_fast_lane_sends_the_same_headers(front):
    client, _, https = front
    names = {name for name, _ in client.application.extensions["kindly_headers"]}
    assert {"Permissions-Policy", "Cross-Origin-Opener-Policy"} <= names
    assert ("Strict-Transport-Security" in names) is https


def test_local_storage_allows_no_outside_media(front):
    client, token, _ = front
    policy = client.get(f"/s/{token}").headers["Content-Security-Policy"]
    media = next(part for part in policy.split("; ") if part.startswith("media-src"))
    assert media == "media-src 'self'"
