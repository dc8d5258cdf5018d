"""The campaign report as PDF: what a manager reads when it is printed."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from kindly.campaigns.models import Debtor
from kindly.cli import cli
from kindly.payments.models import Payment
from kindly.tracking import events
from tests.support.app import load_campaign
from tests.unit.test_api import auth, key_for
from web.api import common

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")


def text_of(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True)
    return " ".join(out.stdout.decode().split())


def _activity(ctx) -> None:
    campaign_id = load_campaign(ctx)
    with ctx.db.session() as session:
        a1 = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        a2 = session.scalar(select(Debtor).where(Debtor.reference == "A-2"))
        for debtor in (a1, a2):
            events.record(session, debtor, "sent", channel="email")
            events.record(session, debtor, "opened", agent="automated")
        events.record(session, a1, "viewed")
        events.record(session, a1, "paid")
        session.add(Payment(campaign_id=campaign_id, debtor_id=a1.id, provider="sandbox",
                            provider_ref="sbx_1", amount_minor=123456, currency="EUR",
                            status="succeeded"))  # fmt: skip


def test_viewer_downloads_the_report_with_funnel_money_rates_and_kpis(client, ctx, tmp_path):
    _activity(ctx)
    common.forget_rate_limits()
    response = client.get(
        "/api/v1/campaigns/winter/report.pdf", headers=auth(key_for(ctx, "viewer"))
    )
    assert response.status_code == 200
    assert response.mimetype == "application/pdf" and response.data.startswith(b"%PDF")
    text = text_of(response.data, tmp_path)
    assert "Campaign report: Winter" in text
    assert "Sent 2 2" in text  # people and raw
    assert "Opened 0 2" in text  # machines' opens only in the raw column
    assert "Paid 1 1" in text
    assert "EUR 1,276.56 EUR 1,234.56 EUR" in text  # owed, collected
    assert "96.7 %" in text  # recovery rate and CEI
    assert "Collection KPIs" in text
    assert "EUR 96.7 % CEI = (beginning receivables" in text  # CEI with its formula
    assert "EUR not computed DSO =" in text
    assert "So CEI = collected ÷ owed at import × 100." in text  # the convention chosen
    assert "GBP 89.90 GBP 0.00 GBP" in text
    assert "By segment" in text
    fonts = subprocess.run(["pdffonts", "-"], input=response.data, capture_output=True)
    if fonts.returncode == 0:
        assert "Kindly-Sans" in fonts.stdout.decode()  # the shipped DejaVu, embedded
    missing = client.get(
        "/api/v1/campaigns/none/report.pdf", headers=auth(key_for(ctx, "viewer", "v2@example.org"))
    )
    assert missing.status_code == 404


def test_cli_writes_the_report(ctx, monkeypatch, tmp_path):
    monkeypatch.setenv("KINDLY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("KINDLY_SECRET_KEY", "test-secret-key-0123456789")
    _activity(ctx)
    out = tmp_path / "winter.pdf"
    result = CliRunner().invoke(cli, ["report", "winter", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = text_of(out.read_bytes(), tmp_path)
    assert "Median days to pay" in text and "Conversion" in text
