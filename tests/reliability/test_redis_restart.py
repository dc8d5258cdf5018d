"""Redis restarted during a campaign render, on a redis-server of the drill's own (the shared
one on 6379 is never touched): queued jobs survive on the append-only file and resume; if
Redis lost everything, `kindly render` queues what is missing; never an artifact twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kindly import context as context_module
from kindly.campaigns.models import Debtor
from kindly.context import Context
from kindly.site.models import Artifact
from tests.reliability.conftest import start_worker, stop, wait_for
from tests.support.app import load_campaign, make_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_stack(tmp_path, postgres_url, own_redis):
    env = {
        "KINDLY_DATA_DIR": str(tmp_path / "var"),
        "KINDLY_SECRET_KEY": "redis-restart-secret-key-0123456789",
        "KINDLY_DATABASE_URL": postgres_url,
        "KINDLY_REDIS_URL": own_redis.url,
    }
    context = Context(make_settings(Path(env["KINDLY_DATA_DIR"]), **env))
    context.db.migrate()
    context.storage.ensure()
    context_module.use(context)
    load_campaign(context)
    yield context, env, own_redis
    context_module.use(None)


def sites(context) -> int:
    with context.db.session() as session:
        return session.scalar(select(func.count(Artifact.id)).where(Artifact.kind == "site"))


def in_append_only_file(folder: Path, job_ids: list[str]) -> bool:
    """Whether Redis has written every job to its append-only file: what is written survives
    the server's death (the kernel holds it), whenever the next fsync comes."""
    written = b"".join(path.read_bytes() for path in folder.rglob("appendonly*.aof"))
    return all(job_id.encode() in written for job_id in job_ids)


@pytest.mark.parametrize("lose_data", [False, True])
def test_redis_restarted_mid_campaign_loses_no_render_and_doubles_none(redis_stack, lose_data):
    from workers.render import enqueue_renders, run_render

    context, env, redis_server = redis_stack
    with context.db.session() as session:
        ids = list(session.scalars(select(Debtor.id).order_by(Debtor.id)))
    handles = list(enqueue_renders(context, ids, ["site"]))  # queued, no worker yet
    wait_for(lambda: in_append_only_file(redis_server.folder, [h.id for h in handles]), 10,
             "the queued jobs in the append-only file")  # fmt: skip
    redis_server.kill()  # Redis dies with the campaign queued
    if lose_data:
        redis_server.wipe()
    restarted = time.monotonic()
    redis_server.start()
    worker = start_worker(env, "render")
    try:
        if lose_data:
            assert sites(context) == 0
            failed = run_render(context, "winter", ["site"], quiet=True)  # the operator
            assert failed == []
        resumed = wait_for(lambda: sites(context) == len(ids), 60, "every site rendered")
        # `kindly render` again afterwards: nothing is stored a second time
        assert run_render(context, "winter", ["site"], quiet=True) == []
    finally:
        stop(worker)
    with context.db.session() as session:
        rows = session.execute(select(Artifact.debtor_id, Artifact.kind)).all()
    assert sorted(rows) == sorted((i, "site") for i in ids)
    print(
        f"\nRedis restarted ({'data lost' if lose_data else 'append-only file kept'}): "
        f"all sites stored {time.monotonic() - restarted:.1f} s after the restart "
        f"({resumed:.1f} s of waiting in the drill)"
    )
