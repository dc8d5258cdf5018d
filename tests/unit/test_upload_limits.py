"""Portfolio uploads may have 32 MiB as docs/dashboard.md says; everything else keeps 1 MiB."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import func, select

from kindly.campaigns.models import Campaign, Debtor
from tests.support.app import PORTFOLIO, load_campaign
from tests.unit.test_admin import csrf_of, make_user, sign_in
from web.edge import UPLOAD_LIMIT

MIB = 1024 * 1024


@pytest.fixture
def manager(client, ctx):
    make_user(ctx)
    assert sign_in(client).status_code == 303
    return client


def padded_portfolio(size: int) -> bytes:
    """The sample portfolio as JSON, padded with whitespace (valid JSON) to `size` bytes."""
    rows = json.dumps(list(csv.DictReader(io.StringIO(PORTFOLIO)))).encode()
    return rows + b" " * (size - len(rows))


def new_campaign(client, data: bytes):
    token = csrf_of(client, "/admin/campaigns/new")
    return client.post(
        "/admin/campaigns/new",
        data={
            "csrf_token": token,
            "slug": "big",
            "name": "Big",
            "locale": "de-DE",
            "portfolio": (io.BytesIO(data), "big.json"),
        },
        content_type="multipart/form-data",
    )


def test_a_two_mib_portfolio_is_imported(manager, ctx):
    response = new_campaign(manager, padded_portfolio(2 * MIB))
    assert response.status_code == 200, response.status_code
    with ctx.db.session() as session:
        assert session.scalar(select(Campaign.id).where(Campaign.slug == "big")) is not None
        assert session.scalar(select(func.count(Debtor.id))) == 3


def test_an_upload_over_32_mib_gets_a_clear_413_and_creates_nothing(manager, ctx):
    response = new_campaign(manager, padded_portfolio(UPLOAD_LIMIT + MIB))
    assert response.status_code == 413
    assert "at most 32 MiB" in response.get_data(as_text=True)
    with ctx.db.session() as session:
        assert session.scalar(select(Campaign.id)) is None


def test_other_dashboard_forms_keep_the_1_mib_limit(manager):
    token = csrf_of(manager, "/admin/users")
    response = manager.post("/admin/keys", data={"csrf_token": token, "name": "x" * (2 * MIB)})
    assert response.status_code == 413


def test_debtor_routes_keep_the_1_mib_limit(client, ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
    response = client.post(f"/s/{token}/contact", data={"message": "x" * (2 * MIB)})
    assert response.status_code == 413
    assert "Traceback" not in response.get_data(as_text=True)
