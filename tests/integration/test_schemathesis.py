"""Schemathesis generates requests from the API's OpenAPI document and checks every answer.

The document is loaded from the app itself (/api/v1/openapi.json over WSGI) on the embedded
defaults (SQLite, local storage, jobs in-process), so no service is needed. Every operation
gets valid and invalid generated requests with a real admin key; each request whose path
names a campaign is sent again for a real one ("winter"), so the handlers behind a known
slug are exercised as well as the 404s.
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kindly.accounts import users
from tests.support.app import load_campaign
from web.api import OPENAPI, common

DOCUMENT = json.loads(OPENAPI.read_text(encoding="utf-8"))
OPERATIONS = [
    f"{method.upper()} {path}"
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
PASSWORD = "correct horse battery staple"
EXAMPLES = int(os.environ.get("KINDLY_SCHEMATHESIS_EXAMPLES", "20"))
"""Generated requests per operation and mode; raise it for a longer hunt."""
CASES = [
    (label, mode)
    for label in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # the document itself takes no parameter and no key: nothing to make invalid
    if not (label == "GET /openapi.json" and mode is GenerationMode.NEGATIVE)
]


@pytest.fixture
def api_key(ctx, monkeypatch) -> str:
    """An admin's key, on a campaign with three debtors; no rate limit for generated traffic."""
    monkeypatch.setattr(common, "RATE_LIMIT", 1_000_000)
    common.forget_rate_limits()
    load_campaign(ctx)
    with ctx.db.session() as session:
        user = users.create_user(session, "admin@example.org", PASSWORD, "admin")
        _, secret = users.issue_token(session, user, "schemathesis")
    return secret


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{o}-{m.value}" for o, m in CASES])
def test_the_api_keeps_to_its_openapi_document(app, api_key, label, mode):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    headers = {"Authorization": f"Bearer {api_key}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        case.call_and_validate(headers=headers, checks=CHECKS)
        if "slug" in (case.path_parameters or {}):
            case.path_parameters["slug"] = "winter"
            case.call_and_validate(headers=headers, checks=CHECKS)

    run()
