"""Dispute files in a real S3 endpoint (moto's server) on PostgreSQL: stored privately, shown
to managers only through presigned links that are signed for five minutes; and the whole
dispute, opened and resolved, on PostgreSQL with its migration up and down."""

from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from alembic import command
from sqlalchemy import inspect, select

from kindly.campaigns.models import Debtor
from kindly.cases.read import case_of
from kindly.disputes.models import Dispute, DisputeFile
from tests.integration.test_inbox_postgres import _alembic
from tests.support import disputefiles as make
from tests.support.app import front_client, installed, load_campaign, make_settings
from tests.unit.test_admin import make_user, sign_in
from tests.unit.test_web import csrf_from


def test_dispute_files_in_s3_are_private_and_linked_for_five_minutes(
    tmp_path, postgres_url, s3_endpoint, s3_bucket
):
    settings = make_settings(
        Path(tmp_path / "var"),
        KINDLY_DATABASE_URL=postgres_url,
        KINDLY_STORAGE_URL=f"s3://{s3_bucket}/kindly",
        KINDLY_S3_ENDPOINT_URL=s3_endpoint,
    )
    with installed(settings) as ctx:
        _alembic(ctx, command.downgrade, "1002")  # before the dispute tables
        assert "dispute_file" not in inspect(ctx.db.engine).get_table_names()
        _alembic(ctx, command.upgrade, "head")
        load_campaign(ctx)
        with ctx.db.session() as session:
            token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
        client = front_client(ctx)
        csrf = csrf_from(client.get(f"/s/{token}/contact").get_data(as_text=True))
        sent = client.post(
            f"/s/{token}/dispute",
            data={"csrf_token": csrf, "reason": "not_received", "text": "Nie geliefert",
                  "files": [(io.BytesIO(make.pdf()), "Lieferschein.pdf"),
                            (io.BytesIO(make.image("JPEG")), "foto.jpg")]},
            content_type="multipart/form-data",
        )  # fmt: skip
        assert sent.status_code == 303
        with ctx.db.session() as session:
            rows = list(session.scalars(select(DisputeFile).order_by(DisputeFile.id)))
            debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
            assert case_of(session, debtor).state == "disputed"
        assert [r.content_type for r in rows] == ["application/pdf", "image/jpeg"]
        # private: the object's plain URL answers 403 to anyone without a signature
        plain = f"{s3_endpoint}/{s3_bucket}/kindly/{rows[0].key}"
        assert requests.get(plain, timeout=10).status_code == 403
        # the cockpit links each file with a presigned URL, valid for 300 seconds
        make_user(ctx)
        assert sign_in(client).status_code == 303
        page = client.get("/admin/campaigns/winter/debtors/A-1").get_data(as_text=True)
        urls = re.findall(r'href="(http[^"]+)" data-dispute-file', page)
        assert len(urls) == 2
        signed = urls[0].replace("&amp;", "&")
        query = parse_qs(urlsplit(signed).query)
        assert query["X-Amz-Expires"] == [
            "300"
        ]  # moto does not check expiry: the signature says it
        assert "X-Amz-Signature" in query
        assert requests.get(signed, timeout=10).content == make.pdf()
        # resolved on PostgreSQL: rejected, the answer on the page, the hold released
        csrf = csrf_from(page)
        with ctx.db.session() as session:
            dispute_id = session.scalar(select(Dispute.id))
        done = client.post(
            f"/admin/campaigns/winter/debtors/A-1/disputes/{dispute_id}/resolve",
            data={"csrf_token": csrf, "outcome": "rejected", "answer": "Zugestellt am 2.11."},
        )
        assert done.status_code == 303
        with ctx.db.session() as session:
            assert session.get(Dispute, dispute_id).state == "rejected"
            debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
            assert case_of(session, debtor).state == "open"
        shown = client.get(f"/s/{token}").get_data(as_text=True)
        assert "Ihr Widerspruch wurde abgelehnt" in shown and "Zugestellt am 2.11." in shown
