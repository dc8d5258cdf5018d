"""The plan confirmation downloads as a PDF whatever the reference holds (L3)."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from sqlalchemy import update
from werkzeug.http import parse_options_header

from kindly.campaigns.models import Debtor
from tests.support.app import load_campaign
from tests.unit.test_payments import csrf, token, walk_plan

INJECTION = "Q\"; filename*=UTF-8''evil.html; x=\""


@pytest.mark.parametrize(
    ("reference", "unicode_name"),
    [(INJECTION, "plan-Q_filename_UTF-8_evil.html_x.pdf"), ("山田-1", "plan-山田-1.pdf")],
)
def test_plan_confirmation_has_a_safe_file_name(client, ctx, reference, unicode_name):
    load_campaign(ctx)
    tok = token(ctx, "A-1")
    with ctx.db.session() as session:
        session.execute(update(Debtor).where(Debtor.token == tok).values(reference=reference))
    review = walk_plan(client, tok, instalments="6").get_data(as_text=True)
    client.post(f"/s/{tok}/plan", data={"csrf_token": csrf(review), "agree": "1",
                                         "instalments": "6", "frequency": "monthly"})  # fmt: skip
    pdf = client.get(f"/s/{tok}/plan/confirmation.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    header = pdf.headers["Content-Disposition"]
    header.encode("latin-1")  # gunicorn refuses anything else (a 500 for 山田-1 before)
    kind, params = parse_options_header(header)
    assert kind == "attachment" and params["filename"] == unicode_name  # filename* wins
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and fallback.endswith(".pdf") and ";" not in fallback
    assert unquote(header.rsplit("filename*=UTF-8''", 1)[1]) == unicode_name
