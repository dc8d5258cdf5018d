"""Answers that carry tokens or personal data are never kept by a cache (L1, L6)."""

from __future__ import annotations

import re

from tests.support.app import load_campaign
from tests.unit.test_api import auth, key_for
from tests.unit.test_web import token_of

VALUES = {
    "slug": "winter", "reference": "A-1", "rest": "nope", "subscription_id": "1",
    "name": "Northern Water Ltd", "item_id": "1", "entry_id": "1", "payment_id": "1",
}  # fmt: skip


def test_unsubscribe_answers_are_not_stored(client, ctx):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    answers = [
        client.get(f"/u/{token}?c=email"),
        client.post(f"/u/{token}?c=email", data={"List-Unsubscribe": "One-Click"}),
        client.get("/u/" + "x" * 32),
    ]
    assert [a.status_code for a in answers] == [200, 200, 404]
    assert all(a.headers.get("Cache-Control") == "no-store" for a in answers)


def test_every_api_answer_is_not_stored(app, client, ctx):
    load_campaign(ctx)
    viewer = auth(key_for(ctx, "viewer"))
    seen = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: VALUES[m.group(1)], rule.rule)
        for method in sorted(rule.methods & {"GET", "POST"}):
            for headers in ({}, viewer):
                answer = client.open(path, method=method, headers=headers)
                assert answer.headers.get("Cache-Control") == "no-store", (method, path)
                seen += 1
    assert seen > 30  # every route, with and without a key
