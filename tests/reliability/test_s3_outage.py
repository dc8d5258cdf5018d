"""S3 unreachable in the middle of a render: uploads are retried with backoff, the jobs end in
RQ's failed registry with a one-line reason, nothing half-stored is recorded, and a later
`kindly render` finishes the campaign with each artifact stored once."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import boto3
import pytest
from sqlalchemy import select

from kindly import context as context_module
from kindly.campaigns.models import Debtor
from kindly.context import Context
from kindly.infra import storage as storage_module
from kindly.site.models import Artifact
from tests.reliability.conftest import start_worker, stop
from tests.support.app import load_campaign, make_settings
from workers import queues

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_stack(tmp_path, postgres_url, redis_url, s3_gate, s3_bucket):
    """PostgreSQL, Redis and an S3 bucket reached through a gate the drill controls."""
    env = {
        "KINDLY_DATA_DIR": str(tmp_path / "var"),
        "KINDLY_SECRET_KEY": "s3-outage-secret-key-0123456789",
        "KINDLY_DATABASE_URL": postgres_url,
        "KINDLY_REDIS_URL": redis_url,
        "KINDLY_STORAGE_URL": f"s3://{s3_bucket}/prod",
        "KINDLY_S3_ENDPOINT_URL": s3_gate.url,
    }
    context = Context(make_settings(Path(env["KINDLY_DATA_DIR"]), **env))
    context.db.migrate()
    context.storage.ensure()
    context_module.use(context)
    yield context, env, s3_gate, s3_bucket
    context_module.use(None)


def objects(endpoint: str, bucket: str) -> list[str]:
    """Every key in the bucket, read past the gate."""
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_s3_unreachable_jobs_fail_with_a_reason_and_kindly_render_finishes_later(
    s3_stack, s3_endpoint, monkeypatch
):
    from rq import Queue, SimpleWorker
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    from workers.render import enqueue_renders, run_render

    context, env, gate, bucket = s3_stack
    load_campaign(context)
    with context.db.session() as session:
        ids = list(session.scalars(select(Debtor.id).order_by(Debtor.id)))
    # The real waits are 1, 2, 4 s between uploads and 10, 60, 300 s between job attempts;
    # the drill keeps their shape and shrinks them so the outage fits in seconds.
    monkeypatch.setattr(storage_module, "UPLOAD_BACKOFF_SECONDS", 0.1)
    monkeypatch.setattr(queues, "RETRY_INTERVALS", (0, 0, 0))
    redis = queues.redis_connection(context.settings)

    handles = list(enqueue_renders(context, ids, ["site"]))
    gate.open = False  # S3 goes away after the jobs were queued
    started = time.monotonic()
    SimpleWorker([Queue(queues.RENDER, connection=redis)], connection=redis).work(burst=True)
    outage = time.monotonic() - started

    failed = FailedJobRegistry(queues.RENDER, connection=redis)
    assert sorted(failed.get_job_ids()) == sorted(h.id for h in handles)
    for handle in handles:
        job = Job.fetch(handle.id, connection=redis)
        assert job.retries_left == 0  # every retry was used before giving up
        reason = job.latest_result().exc_string.strip().splitlines()[-1]
        assert reason.startswith(
            f"kindly.infra.storage.StorageError: S3 unreachable (s3://{bucket} at {gate.url}): "
        ), reason
    # each of the 4 job attempts tried its upload 4 times, botocore up to 3 times each
    tries = len(gate.refused)
    assert tries >= len(ids) * 4 * 4, tries
    with context.db.session() as session:
        assert session.scalars(select(Artifact)).all() == []  # nothing recorded as stored
    assert objects(s3_endpoint, bucket) == []

    # S3 is back; the operator runs `kindly render` again, a worker is running
    gate.open = True
    worker = start_worker(env, "render")
    try:
        back = time.monotonic()
        still_failed = run_render(context, "winter", ["site"], quiet=True)
        recovered = time.monotonic() - back
    finally:
        stop(worker)
    assert [h.id for h in still_failed] == []
    assert failed.get_job_ids() == []
    keys = objects(s3_endpoint, bucket)
    with context.db.session() as session:
        sites = session.scalars(select(Artifact).where(Artifact.kind == "site")).all()
    pages = [key for key in keys if not key.startswith("prod/links/")]  # and one record each
    assert len(sites) == len(ids) and sorted(pages) == sorted(f"prod/{a.key}" for a in sites)
    assert len(keys) == 2 * len(ids)
    for artifact in sites:
        data = context.storage.get(artifact.key)
        assert hashlib.sha256(data).hexdigest() == artifact.sha256  # complete, as recorded
    print(
        f"\nS3 outage: {len(ids)} jobs failed after {tries} connection attempts in "
        f"{outage:.1f} s; `kindly render` finished them {recovered:.1f} s after S3 was back"
    )


@pytest.mark.parametrize("value", ["0", "11", "three", "-1"])
def test_upload_attempts_are_bounded(tmp_path, value):
    from kindly.errors import ConfigError

    with pytest.raises(ConfigError, match="KINDLY_S3_UPLOAD_ATTEMPTS"):
        make_settings(tmp_path, KINDLY_S3_UPLOAD_ATTEMPTS=value)
    assert make_settings(tmp_path, KINDLY_S3_UPLOAD_ATTEMPTS="2").s3_upload_attempts == 2
    assert make_settings(tmp_path).s3_upload_attempts == 4
