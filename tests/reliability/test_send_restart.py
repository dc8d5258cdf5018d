"""Redis restarted during a campaign send, on a redis-server of the drill's own: a real
`kindly worker send` delivers email to a real SMTP server (aiosmtpd) and is killed with
Redis in the middle of a message; after the restart, a new worker and `kindly send` again
deliver the rest, and every debtor has received exactly one message."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from kindly import context as context_module
from kindly.campaigns.models import Campaign, Debtor
from kindly.context import Context
from kindly.messaging.models import Send
from kindly.rules.store import save_rules
from kindly.rules.validate import parse_rules
from kindly.tracking.models import Event
from tests.reliability.conftest import ROOT, start_worker, stop, wait_for
from tests.support import services
from tests.support.app import launched, load_campaign, make_settings

pytestmark = pytest.mark.integration
AT = "2026-12-01T10:00:00+00:00"  # 11:00 in Berlin on a Tuesday: inside every send window
DEBTORS = 12
HOLD_AT = 5  # the SMTP server holds its answer to the 5th message while Redis dies
PORTFOLIO = "reference,last_name,email,locale,currency,amount_due,due_date,creditor\n" + "".join(
    f"S-{i:02d},Muster{i},d{i:02d}@example.org,de-DE,EUR,{100 + i}.00,2026-12-15,Stadtwerke\n"
    for i in range(DEBTORS)
)


class Inbox:
    """An SMTP server's handler that keeps who got what and can hold one answer back."""

    def __init__(self):
        self.received: list[str] = []
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        # The whole message is here: a real server delivers it whatever happens next.
        self.received.extend(envelope.rcpt_tos)
        if len(self.received) == HOLD_AT:
            self.holding.set()  # the worker waits for our "250" with the job in hand
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        return "250 Message accepted"


@pytest.fixture
def sending(tmp_path, postgres_url, own_redis):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=services.free_port())
    controller.start()
    env = {
        "KINDLY_DATA_DIR": str(tmp_path / "var"),
        "KINDLY_SECRET_KEY": "send-restart-secret-key-0123456789",
        "KINDLY_DATABASE_URL": postgres_url,
        "KINDLY_REDIS_URL": own_redis.url,
        "KINDLY_SMTP_URL": f"smtp+insecure://127.0.0.1:{controller.port}",
        "KINDLY_BASE_URL": "https://pay.example.org",
    }
    context = Context(make_settings(Path(env["KINDLY_DATA_DIR"]), **env))
    context.db.migrate()
    context_module.use(context)
    load_campaign(context, slug="spring", text=PORTFOLIO)
    launched(context, "spring")
    with context.db.session() as session:
        campaign = session.scalar(select(Campaign))
        save_rules(session, campaign, parse_rules({"defaults": {"channels": ["email"]}}))
    yield context, env, own_redis, inbox
    inbox.release.set()
    context_module.use(None)
    context.close()
    controller.stop()


def kindly_send(env: dict[str, str]) -> None:
    """`kindly send spring --at AT`, as the operator runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | env
    subprocess.run([sys.executable, "-m", "kindly", "send", "spring", "--at", AT], env=clean,
                   cwd=ROOT, check=True, capture_output=True, timeout=60)  # fmt: skip


def abandoned_job_comes_back(url: str) -> None:
    """What RQ does to the job the killed worker held, without waiting the 90 s for it.

    The worker's maintenance finds the job's heartbeat expired and retries it, 10 s later;
    here the clock is moved on instead: cleanup as of an hour from now, the retry queued now.
    """
    from redis import Redis
    from rq import Queue
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    with Redis.from_url(url) as redis:
        queue = Queue("send", connection=redis)
        StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 3600)
        scheduled = ScheduledJobRegistry(queue=queue)
        for job_id in scheduled.get_job_ids():
            scheduled.remove(job_id)
            queue.enqueue_job(Job.fetch(job_id, connection=redis))


def rows(context) -> dict[str, tuple[str, int]]:
    """Each debtor's send: status and how many `sent` events it has."""
    with context.db.session() as session:
        sent = Counter(session.scalars(select(Event.debtor_id).where(Event.type == "sent")))
        return {
            reference: (status, sent[debtor_id])
            for reference, debtor_id, status in session.execute(
                select(Debtor.reference, Debtor.id, Send.status).join(
                    Send, Send.debtor_id == Debtor.id
                )
            )
        }


@pytest.mark.parametrize(
    "worker_dies_mid_message", [False, True], ids=["worker-done", "worker-killed"]
)
@pytest.mark.parametrize("lose_data", [False, True], ids=["aof-kept", "data-lost"])
def test_redis_restarted_mid_send_sends_each_message_once(
    sending, lose_data, worker_dies_mid_message
):
    context, env, redis_server, inbox = sending
    kindly_send(env)  # the campaign is queued, no worker yet
    worker = start_worker(env, "send")
    try:
        assert inbox.holding.wait(30), "the worker never reached the 5th message"
        redis_server.kill()  # Redis dies while the worker waits for the server's answer
        if lose_data:
            redis_server.wipe()
        if worker_dies_mid_message:
            stop(worker, signal.SIGKILL)  # the message is delivered, the worker never knows
            inbox.release.set()
        else:
            inbox.release.set()  # the worker finishes the message, then finds Redis gone
            wait_for(lambda: len(rows(context)) >= HOLD_AT and all(
                status != "sending" for status, _ in rows(context).values()
            ), 30, "the held message recorded")  # fmt: skip
            stop(worker, signal.SIGKILL)
        redis_server.start()
        worker = start_worker(env, "send")
        abandoned_job_comes_back(redis_server.url)
        kindly_send(env)  # the operator runs the campaign again
        wait_for(lambda: len(inbox.received) >= DEBTORS and len(rows(context)) == DEBTORS, 60,
                 "every debtor's message")  # fmt: skip
        kindly_send(env)  # and once more, for good measure: nothing is left to send
        time.sleep(1.5)  # room for a duplicate to show up
    finally:
        stop(worker, signal.SIGKILL)

    assert Counter(inbox.received) == {f"d{i:02d}@example.org": 1 for i in range(DEBTORS)}
    state = rows(context)
    if worker_dies_mid_message:
        # The server took the 5th message but the worker died before hearing so: its send
        # stays "sending" (a contact possibly made is never repeated) and has no `sent` event.
        in_doubt = {ref for ref, (status, _) in state.items() if status == "sending"}
        assert len(in_doubt) == 1
        assert state[in_doubt.pop()][1] == 0
        assert sum(n for _, n in state.values()) == DEBTORS - 1
    else:
        assert state == {f"S-{i:02d}": ("sent", 1) for i in range(DEBTORS)}
    with context.db.session() as session:
        assert session.scalar(select(func.count(Send.id))) == DEBTORS
