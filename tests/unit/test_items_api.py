"""The API's JSON import takes an `items` list per case, as documented in its schema."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator
from sqlalchemy import select

from kindly.accounts.models import AuditLog
from kindly.campaigns.items import Item
from kindly.campaigns.models import Debtor
from tests.support.app import load_campaign
from tests.unit.test_api import auth, key_for
from web.api import OPENAPI

CASES = [
    {"reference": "J-1", "last_name": "Doe", "currency": "EUR", "due_date": "2026-11-30",
     "items": [{"item_id": "A", "item_date": "2026-10-01", "amount_due": "20.00"},
               {"item_id": "B", "item_date": "2026-10-15", "amount_due": "30.00"}]},
]  # fmt: skip


def test_the_api_imports_a_case_of_items_and_names_a_bad_item(client, ctx):
    schema = json.loads(OPENAPI.read_text(encoding="utf-8"))["paths"][
        "/campaigns/{slug}/portfolio"
    ]["post"]["requestBody"]["content"]
    Draft202012Validator(schema["application/json"]["schema"]).validate(CASES)
    load_campaign(ctx)
    secret = key_for(ctx, "manager")
    bad = [{**CASES[0], "items": [*CASES[0]["items"], {"item_id": "A", "item_date": "2026-11-01",
                                                        "amount_due": "1.00"}]}]  # fmt: skip
    refused = client.post("/api/v1/campaigns/winter/portfolio", headers=auth(secret), json=bad)
    assert refused.status_code == 422
    [error] = refused.get_json()["errors"]
    assert (error["row"], error["column"]) == (1, "items[2].item_id")
    done = client.post("/api/v1/campaigns/winter/portfolio", headers=auth(secret), json=CASES)
    assert done.status_code == 200, done.get_json()
    with ctx.db.session() as session:
        assert (
            session.scalar(select(Debtor).where(Debtor.reference == "J-1")).amount_due_minor == 5000
        )
        assert sorted(session.scalars(select(Item.item_id))) == ["A", "B"]
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "portfolio.import")).one()
        assert entry.detail["items"] == {"added": 2, "updated": 0, "closed": 0, "reopened": 0}
