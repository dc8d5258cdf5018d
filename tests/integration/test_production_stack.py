"""The whole path on the production components: PostgreSQL, RQ on Redis, S3 over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from sqlalchemy import func, select

from kindly.campaigns.models import Campaign, Debtor
from kindly.campaigns.portfolio import PortfolioRejected, import_portfolio, read_portfolio
from kindly.context import Context
from kindly.reporting.metrics import campaign_stats
from kindly.site.models import Artifact
from tests.support import logscan
from tests.support.app import PORTFOLIO, installed, load_campaign, make_settings
from workers import queues

pytestmark = pytest.mark.integration


@pytest.fixture
def stack_env(tmp_path, postgres_url, redis_url, s3_endpoint, s3_bucket) -> dict[str, str]:
    """KINDLY_* variables that point at the real services."""
    return {
        "KINDLY_DATA_DIR": str(tmp_path / "var"),
        "KINDLY_SECRET_KEY": "integration-secret-key-0123456789",
        "KINDLY_DATABASE_URL": postgres_url,
        "KINDLY_REDIS_URL": redis_url,
        "KINDLY_STORAGE_URL": f"s3://{s3_bucket}/prod",
        "KINDLY_S3_ENDPOINT_URL": s3_endpoint,
    }


@pytest.fixture
def stack(stack_env) -> Context:
    """A migrated context on the real services, installed for jobs run in this process."""
    with installed(make_settings(Path(stack_env["KINDLY_DATA_DIR"]), **stack_env)) as context:
        yield context


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def work_queues(context: Context, names=queues.ALL) -> None:
    """Run a real RQ worker (no fork) until the queues are empty."""
    from rq import Queue, SimpleWorker

    connection = queues.redis_connection(context.settings)
    worker = SimpleWorker([Queue(n, connection=connection) for n in names], connection=connection)
    worker.work(burst=True)


def debtor_ids(context: Context) -> dict[str, int]:
    with context.db.session() as session:
        return dict(session.execute(select(Debtor.reference, Debtor.id)).all())


def test_render_on_rq_stores_private_objects_in_s3_and_serves_them(stack, s3_endpoint, s3_bucket):
    from web import create_app
    from workers.render import enqueue_renders

    load_campaign(stack)
    ids = debtor_ids(stack)
    handles = list(enqueue_renders(stack, [ids["A-1"], ids["A-2"], ids["A-3"]], ["site", "letter"]))
    handles += list(enqueue_renders(stack, [ids["A-2"]], ["video"]))
    assert {h.status for h in handles} == {"queued"}
    # the video job waits on its own queue, apart from the quick ones
    connection = queues.redis_connection(stack.settings)
    from rq import Queue

    assert Queue(queues.RENDER, connection=connection).count == 3
    assert Queue(queues.VIDEO, connection=connection).count == 1

    work_queues(stack)
    assert {h.refresh() for h in handles} == {"finished"}

    s3 = s3_client(s3_endpoint)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    folder = {ref: f"prod/campaigns/winter/debtors/{ids[ref]}" for ref in ids}  # one per debtor
    for reference in ("A-1", "A-2", "A-3"):
        assert f"{folder[reference]}/site.html" in keys
        assert f"{folder[reference]}/letter.pdf" in keys
    for name in ("video.mp4", "poster.jpg", "captions.vtt"):
        assert f"{folder['A-2']}/{name}" in keys
    acl = s3.get_object_acl(Bucket=s3_bucket, Key=f"{folder['A-1']}/letter.pdf")
    assert not [g for g in acl["Grants"] if "AllUsers" in str(g.get("Grantee"))]
    head = s3.head_object(Bucket=s3_bucket, Key=f"{folder['A-1']}/letter.pdf")
    assert head["ContentType"] == "application/pdf"

    app = create_app(stack.settings, context=stack)
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 (iPhone) Mobile Safari"
    with stack.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "Sehr geehrte Frau Müller," in page and "1.234,56\xa0€" in page

    letter = client.get(f"/s/{token}/letter.pdf")
    assert letter.status_code == 302
    url = letter.headers["Location"]
    query = parse_qs(urlsplit(url).query)
    assert urlsplit(url).path == f"/{s3_bucket}/{folder['A-1']}/letter.pdf"
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["600"]
    assert len(query["X-Amz-Signature"][0]) == 64
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read(5) == b"%PDF-"


def test_rerendering_is_idempotent(stack):
    from workers.render import enqueue_renders

    load_campaign(stack)
    ids = list(debtor_ids(stack).values())
    # enqueued twice before a worker runs: the deterministic job id keeps one job each
    list(enqueue_renders(stack, ids, ["site"]))
    list(enqueue_renders(stack, ids, ["site"]))
    from rq import Queue

    assert Queue(queues.RENDER, connection=queues.redis_connection(stack.settings)).count == 3
    work_queues(stack)
    with stack.db.session() as session:
        before = dict(session.execute(select(Artifact.id, Artifact.sha256)).all())
    list(enqueue_renders(stack, ids, ["site"]))
    work_queues(stack)
    with stack.db.session() as session:
        after = dict(session.execute(select(Artifact.id, Artifact.sha256)).all())
        assert session.scalar(select(func.count(Artifact.id))) == 3
    assert before == after


def test_portfolio_all_or_nothing_on_postgresql(stack):
    load_campaign(stack)
    with stack.db.session() as session:
        campaign = session.scalar(select(Campaign))
        bad = PORTFOLIO.replace("42.00", "zero").replace("A-3,", "A-4,")
        with pytest.raises(PortfolioRejected) as caught:
            import_portfolio(session, campaign, read_portfolio(bad.encode(), "p.csv"))
    assert [(e.row, e.column) for e in caught.value.errors] == [(4, "amount_due")]
    with stack.db.session() as session:
        assert session.scalar(select(func.count(Debtor.id))) == 3


def test_sandbox_payment_on_postgresql_is_collected_once(stack):
    import re

    from web import create_app

    load_campaign(stack)
    app = create_app(stack.settings, context=stack)
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 (Android 14) Mobile Safari"
    with stack.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-2"))
    form = client.get(f"/s/{token}/pay").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    checkout = client.post(f"/s/{token}/pay", data={"csrf_token": csrf}).headers["Location"]
    path = urlsplit(checkout).path
    for _ in range(3):  # a double, triple submit
        client.post(path, data={"csrf_token": csrf, "outcome": "succeeded"})
    with stack.db.session() as session:
        numbers = campaign_stats(session, session.scalar(select(Campaign)))
    assert numbers["collected"] == {"GBP": "89.90"}
    assert numbers["funnel"]["paid"] == 1


def test_cli_render_waits_for_a_real_forking_worker(stack_env, tmp_path):
    """`kindly worker` (forking, warm) and `kindly render` as an operator runs them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | stack_env
    portfolio = tmp_path / "p.csv"
    portfolio.write_text(PORTFOLIO, encoding="utf-8")

    def kindly(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kindly", *args], env=env, capture_output=True,
                              text=True, timeout=timeout, cwd=tmp_path)  # fmt: skip

    assert kindly("import", str(portfolio), "--campaign", "winter", "--create").returncode == 0
    worker = subprocess.Popen([sys.executable, "-m", "kindly", "worker", "render", "video"], env=env,
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        started = time.monotonic()
        rendered = kindly("render", "winter", "--kinds", "site,letter")
        assert rendered.returncode == 0, rendered.stderr
        assert "rendered winter (site, letter)" in rendered.stdout
        assert time.monotonic() - started < 120
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
        logscan.keep_output("stack-worker", output)  # scanned for personal data
    assert "Worker listening on render, video" in output  # RQ's forking class: video is here
    numbers = json.loads(kindly("stats", "winter", "--json").stdout)
    assert numbers["artifacts"] == {"letter": 3, "site": 3}
    assert numbers["debtors"] == 3


def test_presigned_links_are_signed_for_the_public_endpoint(stack_env, s3_endpoint, s3_bucket):
    """Workers talk to the internal endpoint; browsers get links for the public one."""
    from kindly.infra.storage import open_storage

    storage = open_storage(f"s3://{s3_bucket}/prod", s3_endpoint, "https://files.example.com")
    storage.ensure()
    storage.put("campaigns/x/A/letter.pdf", b"%PDF-1.7", "application/pdf")
    url = storage.presigned_url("campaigns/x/A/letter.pdf", expires=60)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "files.example.com")
    assert parts.path == f"/{s3_bucket}/prod/campaigns/x/A/letter.pdf"
    assert parse_qs(parts.query)["X-Amz-Expires"] == ["60"]
    assert storage.get("campaigns/x/A/letter.pdf") == b"%PDF-1.7"  # internal path still works


def test_deleted_objects_are_gone_from_s3(stack_env, s3_endpoint, s3_bucket):
    """GDPR erasure removes files; S3 must really lose them, not keep an empty copy."""
    from kindly.infra.storage import open_storage

    storage = open_storage(f"s3://{s3_bucket}/prod", s3_endpoint)
    storage.ensure()
    storage.put("campaigns/x/A/letter.pdf", b"%PDF-1.7", "application/pdf")
    storage.delete("campaigns/x/A/letter.pdf")
    storage.delete("campaigns/x/A/letter.pdf")  # twice is fine
    assert not storage.exists("campaigns/x/A/letter.pdf")
    keys = s3_client(s3_endpoint).list_objects_v2(Bucket=s3_bucket).get("Contents", [])
    assert keys == []
