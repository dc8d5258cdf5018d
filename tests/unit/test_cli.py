"""The kindly command as an operator runs it: real processes, real files, one-line errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kindly.bank.rf import rf_for
from tests.support.app import PORTFOLIO

pytestmark = pytest.mark.slow  # every test starts the kindly command as its own process


def kindly(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | {
        "KINDLY_DATA_DIR": str(tmp_path / "var"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "kindly", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=300,
    )


@pytest.fixture
def portfolio(tmp_path: Path) -> Path:
    path = tmp_path / "portfolio.csv"
    path.write_text(PORTFOLIO, encoding="utf-8")
    return path


def test_import_render_export_stats(tmp_path, portfolio):
    imported = kindly(tmp_path, "import", str(portfolio), "--campaign", "winter", "--create")
    assert imported.returncode == 0, imported.stderr
    assert "3 created, 0 updated" in imported.stdout

    again = kindly(tmp_path, "import", str(portfolio), "--campaign", "winter")
    assert "0 created, 3 updated" in again.stdout

    rendered = kindly(tmp_path, "render", "winter", "--kinds", "site,letter")
    assert rendered.returncode == 0, rendered.stderr
    assert "rendering winter" in rendered.stderr  # the progress bar

    out = tmp_path / "export.csv"
    exported = kindly(tmp_path, "export", "winter", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["reference"] for r in rows] == ["A-1", "A-2", "A-3"]
    assert list(rows[0]) == ["reference", "token", "site_url", "letter_key", "video_key",
                             "segment", "variant", "channel", "payment_reference",
                             "amount_today", "interest_today"]  # fmt: skip
    # the payment reference is a valid ISO 11649 reference and survived the re-import
    assert rows[0]["payment_reference"] == rf_for("winter", "A-1")
    assert len({r["payment_reference"] for r in rows}) == 3
    assert rows[0]["site_url"] == f"http://127.0.0.1:5000/s/{rows[0]['token']}"
    assert rows[0]["letter_key"] == "campaigns/winter/debtors/1/letter.pdf"  # A-1's id
    assert (tmp_path / "var/storage" / rows[0]["letter_key"]).read_bytes()[:5] == b"%PDF-"
    assert rows[0]["video_key"] == ""

    numbers = json.loads(kindly(tmp_path, "stats", "winter", "--json").stdout)
    assert numbers["debtors"] == 3
    for step in (
        "sent",
        "opened",
        "clicked",
        "viewed",
        "cta",
        "payment_started",
        "paid",
        "plan_agreed",
    ):
        assert numbers["funnel"][step] == 0
    assert numbers["funnel"]["collected"] == {}
    assert numbers["artifacts"] == {"letter": 3, "site": 3}

    segments = json.loads(kindly(tmp_path, "segments", "winter", "--json").stdout)
    assert segments["segments"] == [{"segment": "default", "variant": "A", "debtors": 3}]


def test_bad_portfolio_lists_every_error_and_imports_nothing(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "reference,last_name,currency,amount_due,due_date,email\n"
        'R1,Doe,EUR,"1.234,56",2026-12-01,\n'
        "R2,Roe,EUR,10,2026-02-30,\n"
        "R3,Poe,EUR,10,2026-12-01,not-an-email\n",
        encoding="utf-8",
    )
    result = kindly(tmp_path, "import", str(bad), "--campaign", "winter", "--create")
    assert result.returncode == 1
    assert "row 2, column amount_due: '1.234,56' uses ','" in result.stderr
    assert "row 3, column due_date: '2026-02-30' is not a real date" in result.stderr
    assert "row 4, column email" in result.stderr
    assert "Traceback" not in result.stderr
    # nothing was written, not even the campaign
    assert "no campaign 'winter'" in kindly(tmp_path, "stats", "winter").stderr


def test_skip_invalid_writes_the_rejected_rows_beside_the_input(tmp_path, portfolio):
    portfolio.write_text(PORTFOLIO + "A-9,,X,Bad,,,,EUR,0,,,,2026-12-01,,,,,,\n", encoding="utf-8")
    result = kindly(
        tmp_path, "import", str(portfolio), "--campaign", "w", "--create", "--skip-invalid"
    )
    assert result.returncode == 0, result.stderr
    assert "3 created, 0 updated, 1 rejected" in result.stdout
    rejects = (tmp_path / "portfolio.rejected.csv").read_text(encoding="utf-8")
    assert "A-9" in rejects and "must be greater than 0" in rejects


def test_unreachable_redis_is_one_clear_line(tmp_path, portfolio):
    kindly(tmp_path, "import", str(portfolio), "--campaign", "winter", "--create")
    result = kindly(tmp_path, "render", "winter", KINDLY_REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 1
    assert "error: Redis unreachable at redis://127.0.0.1:1/0" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_s3_is_one_clear_line(tmp_path, portfolio):
    kindly(tmp_path, "import", str(portfolio), "--campaign", "winter", "--create")
    result = kindly(
        tmp_path, "render", "winter", "--kinds", "site",
        KINDLY_STORAGE_URL="s3://nowhere/kindly", KINDLY_S3_ENDPOINT_URL="http://127.0.0.1:1",
        AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y", AWS_DEFAULT_REGION="us-east-1",
    )  # fmt: skip
    assert result.returncode == 1
    assert "S3 unreachable (s3://nowhere at http://127.0.0.1:1)" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_clear_line(tmp_path, portfolio):
    result = kindly(
        tmp_path, "import", str(portfolio), "--campaign", "w", "--create",
        KINDLY_DATABASE_URL="postgresql://kindly:secret@127.0.0.1:1/kindly",
    )  # fmt: skip
    assert result.returncode == 1
    assert (
        "error: database unreachable (postgresql+psycopg://kindly:***@127.0.0.1:1/kindly)"
        in result.stderr
    )
    assert "secret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_serves_the_links_it_prints(tmp_path):
    """`make demo`'s command: generated debtors rendered, served, and every printed link opens."""
    import re
    import time
    import urllib.request

    from tests.support import services

    port = services.free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | {
        "KINDLY_DATA_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "demo.log"
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "kindly", "demo", "--count", "7", "--kinds", "site,letter",
             "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=environment, cwd=tmp_path,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while "Serving on" not in log.read_text(encoding="utf-8"):
                assert process.poll() is None, log.read_text(encoding="utf-8")
                assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
                time.sleep(0.3)
            printed = log.read_text(encoding="utf-8")
            links = re.findall(r"(\w\w-\w\w)\s+(DEMO-\d+)\s+(http://\S+)", printed)
            assert {locale for locale, _, _ in links} >= {"de-DE", "en-GB", "it-IT"}
            for _, reference, link in links:
                assert link.startswith(f"http://127.0.0.1:{port}/s/")  # where it serves
                for _ in range(100):
                    try:
                        with urllib.request.urlopen(link, timeout=5) as response:
                            page = response.read().decode("utf-8")
                        break
                    except OSError:
                        time.sleep(0.2)
                assert reference in page and 'data-cta="pay"' in page
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_events_status_shows_the_journal_lag_and_ship_once_clears_it(tmp_path, portfolio):
    from kindly.tracking.journal import Journal, encode

    assert kindly(tmp_path, "import", str(portfolio), "--campaign", "w", "--create").returncode == 0
    folder = tmp_path / "var" / "journal"  # `kindly serve`'s default folder
    journal = Journal(folder, limit_bytes=10**9)
    event = {"campaign_id": 1, "debtor_id": 1, "type": "opened", "channel": "email",
             "variant": "A", "agent": "unverified", "occurred_at": "2026-12-01T10:00:00+00:00",
             "data": {}}  # fmt: skip
    for n in range(25):
        assert journal.append_record(encode(event | {"idempotency_key": f"opened:cli-{n}"}))
    journal.close()
    status = kindly(tmp_path, "events", "status", "--json")
    assert status.returncode == 0, status.stderr
    lag = json.loads(status.stdout)
    assert lag["unshipped_records"] == 25 and lag["segments"] == 1
    assert lag["open_segments"] == 0 and not lag["over_limit"] and not lag["shipper_running"]
    assert lag["lag_seconds"] > 0
    text = kindly(tmp_path, "events", "status", KINDLY_JOURNAL_LIMIT_MB="1")
    assert "25 records" in text.stdout and "ALARM" not in text.stdout
    shipped = kindly(tmp_path, "events", "ship", "--once")
    assert shipped.returncode == 0 and "shipped 25 records" in shipped.stdout
    after = json.loads(kindly(tmp_path, "events", "status", "--json").stdout)
    assert after["unshipped_records"] == 0 and after["segments"] == 0
    bad = kindly(tmp_path, "events", "status", KINDLY_JOURNAL_FSYNC="sometimes")
    assert bad.returncode != 0 and "KINDLY_JOURNAL_FSYNC" in bad.stderr
