"""A watched S3 prefix (moto's server over HTTP): each statement a bank connector drops into the
bucket is imported once and moved under done/ or failed/ beside it, as in a watched folder."""

from __future__ import annotations

import json

import boto3
import pytest

from kindly.bank.rf import rf_for
from tests.support import bankfiles as bf
from tests.unit.test_bank_import import IBAN, PORTFOLIO
from tests.unit.test_cli import kindly


@pytest.fixture
def bucket(s3_endpoint, s3_bucket):
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=s3_bucket)
    return client, s3_bucket


def keys(client, bucket: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def test_a_watched_s3_prefix_imports_each_statement_once(tmp_path, s3_endpoint, bucket):
    client, name = bucket
    env = {"KINDLY_S3_ENDPOINT_URL": s3_endpoint}
    (tmp_path / "p.csv").write_text(PORTFOLIO)
    made = kindly(
        tmp_path, "import", str(tmp_path / "p.csv"), "--campaign", "winter", "--create", **env
    )
    assert made.returncode == 0, made.stderr
    paying = bf.Payment("Erika", IBAN, "57.30", reference=rf_for("winter", "INV-40017"))
    good = bf.camt053([paying])
    client.put_object(Bucket=name, Key="from-bank/2026-12-01.xml", Body=good)
    client.put_object(Bucket=name, Key="from-bank/broken.xml", Body=b"<Document><broken")
    client.put_object(Bucket=name, Key="elsewhere/other.xml", Body=good)  # not watched

    where = f"s3://{name}/from-bank/"
    early = kindly(tmp_path, "bank", "watch", where, "--once", "--settle", "3600", **env)
    assert early.returncode == 0 and early.stdout == ""  # nothing has settled yet

    run = kindly(tmp_path, "bank", "watch", where, "--once", "--settle", "0", **env)
    assert run.returncode == 0, run.stderr
    assert "2026-12-01.xml: 1 entries, 1 matched" in run.stdout
    assert "broken.xml: refused:" in run.stderr
    assert keys(client, name) == [
        "elsewhere/other.xml",
        "from-bank/done/2026-12-01.xml",
        "from-bank/failed/broken.xml",
        "from-bank/failed/broken.xml.error.txt",
    ]
    reason = client.get_object(Bucket=name, Key="from-bank/failed/broken.xml.error.txt")
    said = run.stderr.split("broken.xml: refused: ", 1)[1].strip()
    assert said and reason["Body"].read().decode().strip().endswith(said)

    # the same file again (the connector re-sent it): imported as already known, kept apart
    client.put_object(Bucket=name, Key="from-bank/2026-12-01.xml", Body=good)
    again = kindly(tmp_path, "bank", "watch", where, "--once", "--settle", "0", **env)
    assert "1 entries, 0 matched, 0 unmatched, 0 ignored, 0 returned, 1 already_imported" in (
        again.stdout
    )
    assert "from-bank/done/2026-12-01.1.xml" in keys(client, name)
    stats = json.loads(kindly(tmp_path, "stats", "winter", "--json", **env).stdout)
    assert stats["funnel"]["collected"] == {"EUR": "57.30"}  # booked once


def test_an_unreachable_bucket_is_a_clear_error(tmp_path, s3_endpoint):
    run = kindly(tmp_path, "bank", "watch", "s3://no-such-bucket-here/x/", "--once",
                 KINDLY_S3_ENDPOINT_URL=s3_endpoint)  # fmt: skip
    assert run.returncode == 1
    assert "s3://no-such-bucket-here/x/: S3 unreachable" in run.stderr
    assert "Traceback" not in run.stderr
    nothing = kindly(tmp_path, "bank", "watch", str(tmp_path / "nope"), "--once")
    assert nothing.returncode == 1 and "not a folder" in nothing.stderr
