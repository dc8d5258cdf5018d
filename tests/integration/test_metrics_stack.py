"""Every metric Kindly exports, read over HTTP after real work on the production components:
render and send jobs on RQ, SMTP, a sandbox payment, a webhook, tracking hits buffered in
Redis, the identity check; and `kindly worker` serving its own port, a video's horse
included. The deploy/ dashboard and alert rules read only names found in that scrape."""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from kindly.campaigns.models import Campaign, Debtor
from kindly.infra import exposition, metrics
from kindly.messaging import delivery
from kindly.outbound import deliveries as outbound
from kindly.outbound.models import WebhookDelivery
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from tests.integration.test_send import Inbox
from tests.reliability.conftest import OwnRedis
from tests.support import services
from tests.support.app import front_client, installed, launched, load_campaign, make_settings
from tests.support.promql import scrape, used_names, value
from tests.unit.test_identity_limits import T0, five_wrong
from workers import queues

pytestmark = pytest.mark.integration

AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 in Berlin, a Tuesday
RULES = {"defaults": {"tone": "firm", "channels": ["email", "sms", "letter"]}}


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=services.free_port())
    controller.start()
    yield inbox, f"smtp+insecure://127.0.0.1:{controller.port}"
    controller.stop()


@pytest.fixture
def receiver():
    """A webhook receiver that answers 500 to the first post and 200 to the next ones."""
    posts: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(500 if len(posts) == 1 else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", posts
    server.shutdown()
    server.server_close()


@pytest.fixture
def private_redis(tmp_path) -> Iterator[str]:
    """A redis-server of this test's own: queue depths and job counts that no other test
    session's worker on the shared server (same database number) can touch."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = OwnRedis(folder)
    server.start()
    yield server.url
    server.kill()


@pytest.fixture
def stack_env(
    tmp_path, postgres_url, private_redis, s3_endpoint, s3_bucket, smtp
) -> dict[str, str]:
    return {
        "KINDLY_DATA_DIR": str(tmp_path / "var"),
        "KINDLY_SECRET_KEY": "metrics-secret-key-0123456789",
        "KINDLY_DATABASE_URL": postgres_url,
        "KINDLY_REDIS_URL": private_redis,
        "KINDLY_STORAGE_URL": f"s3://{s3_bucket}/prod",
        "KINDLY_S3_ENDPOINT_URL": s3_endpoint,
        "KINDLY_SMTP_URL": smtp[1],
        "KINDLY_OUTBOUND_ALLOW_PRIVATE": "on",
    }


@pytest.fixture
def stack(stack_env):
    with installed(make_settings(Path(stack_env["KINDLY_DATA_DIR"]), **stack_env)) as context:
        yield context


@pytest.fixture
def metrics_port(stack):
    """This process's metrics, with the queue depths and event lag read from Redis."""
    server = exposition.serve(0, "127.0.0.1", queues.live_metrics(stack.settings))
    yield server.server_port
    server.shutdown()
    server.server_close()


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def pay_in_full_at_the_sandbox(client, token: str) -> None:
    page = client.get(f"/s/{token}/pay").get_data(as_text=True)
    go = client.post(f"/s/{token}/pay", data={"csrf_token": csrf(page), "choice": "full"})
    checkout = go.headers["Location"].split("127.0.0.1:5000", 1)[-1]
    html = client.get(checkout).get_data(as_text=True)
    assert 'data-sandbox="succeed"' in html
    done = client.post(checkout, data={"csrf_token": csrf(html), "outcome": "succeeded"})
    assert done.status_code == 303


def test_every_metric_is_exported_after_real_work_and_the_deploy_files_use_only_those(
    stack, smtp, receiver, metrics_port
):
    from workers.jobs import render_debtor
    from workers.outbound import deliver_pending
    from workers.render import enqueue_renders
    from workers.worker import run

    inbox, _ = smtp
    url, posts = receiver
    before = scrape(metrics_port)
    load_campaign(stack)
    with stack.db.session() as session:
        ids = dict(session.execute(select(Debtor.reference, Debtor.id)).all())
        tokens = dict(session.execute(select(Debtor.reference, Debtor.token)).all())
        outbound.subscribe(session, url, ["paid"], allow_private=True)

    # queue depth, read from Redis at the scrape
    list(enqueue_renders(stack, list(ids.values()), ["site", "letter"]))
    dispatcher = queues.Dispatcher(stack.settings)
    dispatcher.enqueue(render_debtor, (10**9, ["site"]), queue=queues.DEFAULT,
                       job_id="render-missing", timeout=60, retries=0)  # fmt: skip
    waiting = scrape(metrics_port)
    assert value(waiting, "kindly_rq_queue_jobs", queue="render") == 3
    assert value(waiting, "kindly_rq_queue_jobs", queue="default") == 1
    assert value(waiting, "kindly_rq_queue_jobs", queue="video") == 0

    # a tracking hit waits in the Redis stream until a writer takes it: the event lag
    client = front_client(stack, TESTING=True, KINDLY_EVENT_WRITER=False)
    assert client.get(f"/o/{tokens['A-1']}.gif").status_code == 200
    time.sleep(0.3)
    assert value(scrape(metrics_port), "kindly_event_lag_seconds") >= 0.25
    assert stack.event_buffer.flush_all(stack.db) == 1
    assert value(scrape(metrics_port), "kindly_event_lag_seconds") == 0

    # the jobs, on a real RQ worker as `kindly worker` runs it (one fails: no such debtor)
    run(stack.settings, [queues.RENDER, queues.DEFAULT], burst=True)

    # sends over SMTP; the server refuses one address for good
    inbox.refuse["siobhan@example.org"] = "550 5.1.1 no such mailbox"
    launched(stack)
    with stack.db.session() as session:
        campaign = session.scalar(select(Campaign))
        decide(session, campaign, save_rules(session, campaign, parse_rules(RULES)), AT.date())
    with stack.db.session() as session:
        planned = delivery.plan(session, session.scalar(select(Campaign)), AT)
    from workers.send import enqueue_sends

    enqueue_sends(dispatcher, planned, AT)
    run(stack.settings, [queues.SEND], burst=True)
    assert len(inbox.messages) == 1

    # a payment at the sandbox's checkout, and the webhook that tells of it: refused once
    pay_in_full_at_the_sandbox(client, tokens["A-3"])
    with stack.db.session() as session:
        handles = deliver_pending(session, dispatcher)
    assert len(handles) == 1
    run(stack.settings, [queues.DEFAULT], burst=True)  # the first attempt gets a 500
    with stack.db.session() as session:
        delivery_id = session.scalar(select(WebhookDelivery.id))
        retried = outbound.attempt(session, delivery_id, allow_private=True)
        assert retried.status == "delivered"  # the retry, done by hand instead of waiting 10 s
    assert len(posts) == 2

    five_wrong(stack, T0)
    after = scrape(metrics_port)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    render_jobs = {"queue": "render", "kind": "render_debtor"}
    assert delta("kindly_rq_job_duration_seconds_count", **render_jobs) == 3
    assert delta("kindly_rq_jobs_failed_total", **render_jobs) == 0
    assert delta("kindly_rq_jobs_failed_total", queue="default", kind="render_debtor") == 1
    assert delta("kindly_rq_jobs_failed_total", queue="default", kind="deliver_webhook") == 1
    assert delta("kindly_rq_job_duration_seconds_count", queue="send", kind="send_message") >= 2
    assert delta("kindly_render_duration_seconds_count", kind="letter") == 3
    assert delta("kindly_sends_total", channel="email", outcome="sent", reason="") == 1
    assert delta("kindly_sends_total", channel="email", outcome="bounced", reason="hard") == 1
    assert delta("kindly_payments_booked_total", method="sandbox") == 1
    assert delta("kindly_webhook_deliveries_total", outcome="retrying") == 1
    assert delta("kindly_webhook_deliveries_total", outcome="delivered") == 1
    assert delta("kindly_webhook_retries_total") == 1
    assert delta("kindly_identity_check_failures_total") == 5
    assert delta("kindly_identity_check_locks_total") == 1
    assert delta("kindly_http_requests_total", route="/o/<token>.gif", method="GET",
                 status="200") == 1  # fmt: skip

    exported = {name for name, _ in after}
    for spec in metrics.ALL_SPECS:
        assert set(spec.samples) <= exported, spec.name
    for name, labels in after:
        spec = next((s for s in metrics.ALL_SPECS if name in s.samples), None)
        if spec is not None:
            assert {k for k, _ in labels} - {"le"} == set(spec.labels), name
    unknown = {name: sorted(where) for name, where in used_names().items() if name not in exported}
    assert unknown == {}


@pytest.mark.slow  # a video rendered in a forked work horse
def test_kindly_worker_serves_its_own_port_and_keeps_what_its_horses_counted(
    stack, stack_env, tmp_path
):
    load_campaign(stack)
    with stack.db.session() as session:
        debtor_id = session.scalar(select(Debtor.id).where(Debtor.reference == "A-1"))
    port = services.free_port()
    directory = tmp_path / "metrics"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KINDLY_", "PROMETHEUS_"))}
    env |= stack_env | {
        "KINDLY_METRICS_PORT": str(port),
        "KINDLY_METRICS_HOST": "127.0.0.1",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    from workers.render import enqueue_renders

    (handle,) = enqueue_renders(stack, [debtor_id], ["video"])
    log = tmp_path / "worker.log"
    with log.open("w", encoding="utf-8") as out:
        worker = subprocess.Popen([sys.executable, "-m", "kindly", "worker", "video"], env=env,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while handle.refresh() not in queues.ENDED:
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the video job did not end"
                time.sleep(0.5)
            assert handle.status == "finished", log.read_text()
            # the job reads as finished a moment before the worker has timed it and folded
            # its horse's counts: scrape until it has (bounded), as Prometheus would next time
            video_jobs = {"queue": "video", "kind": "render_debtor"}
            settled = time.monotonic() + 30
            samples = scrape(port)
            while (
                value(samples, "kindly_rq_job_duration_seconds_count", **video_jobs) < 1
                and time.monotonic() < settled
            ):
                time.sleep(0.2)
                samples = scrape(port)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
    assert value(samples, "kindly_rq_job_duration_seconds_count", **video_jobs) == 1
    assert value(samples, "kindly_rq_jobs_failed_total", **video_jobs) == 0
    # rendered in the horse, counted there, folded into the worker's totals when it ended
    assert value(samples, "kindly_render_duration_seconds_count", kind="video") == 1
    assert value(samples, "kindly_rq_queue_jobs", queue="video") == 0
    assert (directory / "histogram_folded.db").exists()
    files = {Path(p).name for p in glob.glob(str(directory / "*.db"))}
    pids = {name.rsplit("_", 1)[1][:-3] for name in files} - {"folded"}
    assert pids <= {str(worker.pid)}, files  # no file of a horse is left behind
