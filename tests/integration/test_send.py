"""`kindly send` end to end: a real SMTP server, a local SMS gateway, bounces, idempotency."""

from __future__ import annotations

import datetime as dt
import email
import json
import logging
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from kindly import context as context_module
from kindly.campaigns.models import Campaign, Debtor
from kindly.context import Context
from kindly.messaging import delivery, optout, unsublink
from kindly.messaging.models import Send
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.tracking.models import Event
from tests.support import services
from tests.support.app import launched, load_campaign, make_settings
from workers.queues import Dispatcher
from workers.send import enqueue_sends

AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 in Berlin, a Tuesday
RULES = {"defaults": {"tone": "firm", "channels": ["email", "sms", "letter"]}}


class Inbox:
    """An aiosmtpd handler that keeps what arrives and refuses some recipients."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.refuse: dict[str, str] = {}
        self.refuse_data: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_data:
            return self.refuse_data
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=services.free_port())
    controller.start()
    yield inbox, f"smtp+insecure://127.0.0.1:{controller.port}"
    controller.stop()


@pytest.fixture
def gateway():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(body | {"idempotency_key": self.headers["Idempotency-Key"]})
            answer = json.dumps({"id": f"gw-{len(received)}"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received, f"http://127.0.0.1:{server.server_address[1]}/sms"
    server.shutdown()
    server.server_close()


@pytest.fixture
def sending(tmp_path, smtp, gateway):
    inbox, smtp_url = smtp
    received, sms_url = gateway
    settings = make_settings(tmp_path / "var", KINDLY_SMTP_URL=smtp_url,
                             KINDLY_SMS_WEBHOOK_URL=sms_url,
                             KINDLY_BASE_URL="https://pay.example.org")  # fmt: skip
    ctx = Context(settings)
    ctx.db.migrate()
    context_module.use(ctx)
    load_campaign(ctx)
    launched(ctx)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        decide(session, campaign, save_rules(session, campaign, parse_rules(RULES)), AT.date())
    yield ctx, inbox, received
    context_module.use(None)


def run_send(ctx: Context, at: dt.datetime = AT) -> list[delivery.Planned]:
    with ctx.db.session() as session:
        planned = delivery.plan(session, session.scalar(select(Campaign)), at)
    enqueue_sends(Dispatcher(ctx.settings), planned, at)
    return planned


def test_email_arrives_with_both_parts_tracking_and_one_click_unsubscribe(sending):
    ctx, inbox, received = sending
    planned = {p.reference: p for p in run_send(ctx)}
    assert (planned["A-1"].channel, planned["A-2"].channel) == ("email", "email")
    assert planned["A-3"].channel == "letter"  # no email, no phone: the print batch

    by_to = {m["To"].addresses[0].addr_spec: m for m in inbox.messages}
    assert set(by_to) == {"anna@example.org", "siobhan@example.org"}
    anna = by_to["anna@example.org"]
    with ctx.db.session() as session:
        token = session.scalar(select(Debtor.token).where(Debtor.reference == "A-1"))
    assert (
        anna["Subject"]
        == "Bitte begleichen Sie 1.234,56\u00a0€ bei Stadtwerke Beispielstadt GmbH bis zum 15. Dezember 2026"
    )
    with ctx.db.session() as session:
        anna_id = session.scalar(select(Debtor.id).where(Debtor.reference == "A-1"))
    unsubscribe = unsublink.credential(ctx.settings.secret_key, anna_id, "email")
    # the unsubscribe link has its own credential: a mail scanner's fetch never carries the token
    assert anna["List-Unsubscribe"].strip() == f"<https://pay.example.org/u/{unsubscribe}?c=email>"
    assert anna["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert anna["Message-ID"].endswith("@pay.example.org>")
    text = anna.get_body(("plain",)).get_content()
    html = anna.get_body(("html",)).get_content()
    assert f"https://pay.example.org/c/{token}?c=email&to=pay" in text
    assert f'href="https://pay.example.org/c/{token}?c=email&amp;to=pay"' in html
    assert f'src="https://pay.example.org/o/{token}.gif"' in html
    for fact in ("Stadtwerke Beispielstadt GmbH", "Stromliefervertrag 4711", "Hauptforderung",
                 "1.100,00\u00a0€", "84,56\u00a0€", "50,00\u00a0€", "A-1"):  # fmt: skip
        assert fact in text and fact in html
    siobhan = by_to["siobhan@example.org"]
    assert siobhan["Subject"].startswith("Please settle £89.90 with Northern Water Ltd")

    with ctx.db.session() as session:
        rows = session.scalars(select(Send).order_by(Send.debtor_id)).all()
        assert [(r.channel, r.status) for r in rows] == [
            ("email", "sent"),
            ("email", "sent"),
            ("letter", "print"),
        ]
        assert session.scalar(select(Event).where(Event.type == "sent")).channel == "email"
        # one-click unsubscribe (what the front's POST handler calls): no more email
        assert optout.unsubscribe(session, token, "email")
    again = {p.reference: p for p in run_send(ctx, AT + dt.timedelta(days=7))}
    assert again["A-1"].channel == "sms"  # the next step uses the next channel
    assert received[0]["to"] == "+4915112345678"
    with ctx.db.session() as session:
        assert session.scalar(select(Event.type).where(Event.type == "opted_out")) == "opted_out"


def test_a_duplicated_job_never_sends_twice(sending):
    ctx, inbox, _ = sending
    planned = run_send(ctx)
    enqueue_sends(Dispatcher(ctx.settings), planned, AT)  # the same jobs again
    with ctx.db.session() as session:
        row = session.scalar(select(Send).where(Send.channel == "email").limit(1))
        delivery.deliver(session, ctx.settings, row.debtor_id, 0, "email", AT)
    assert len(inbox.messages) == 2
    with ctx.db.session() as session:
        assert session.scalar(select(Send.attempts).where(Send.id == row.id)) == 1


def test_hard_bounce_blocks_the_address_and_the_next_channel_is_used(sending):
    ctx, inbox, received = sending
    inbox.refuse["anna@example.org"] = "550 5.1.1 <anna@example.org>: user unknown"
    run_send(ctx)
    with ctx.db.session() as session:
        anna = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        row = session.scalar(select(Send).where(Send.debtor_id == anna.id))
        assert (row.status, row.channel) == ("bounced", "email")
        assert optout.blocked(session, "anna@example.org", "email") == "bounced_hard"
        planned = delivery.plan(session, anna.campaign, AT + dt.timedelta(minutes=5))
    anna_next = next(p for p in planned if p.reference == "A-1")
    assert (anna_next.step, anna_next.channel) == (0, "sms")
    enqueue_sends(Dispatcher(ctx.settings), [anna_next], AT)
    [message] = received
    assert message["parts"] == 2 and message["encoding"] == "GSM-7"
    assert "STOP" in message["text"] and "https://pay.example.org/c/" in message["text"]


def test_soft_bounce_is_retried_and_then_delivered(sending):
    ctx, inbox, _ = sending
    inbox.refuse["anna@example.org"] = "452 4.2.2 mailbox full"
    run_send(ctx)
    with ctx.db.session() as session:
        row = session.scalar(select(Send).where(Send.address == "anna@example.org"))
        assert (row.status, row.attempts) == ("failed", 1)
        assert session.scalar(select(Event.type).where(Event.type == "bounced_soft"))
    del inbox.refuse["anna@example.org"]
    run_send(ctx, AT + dt.timedelta(hours=1))
    with ctx.db.session() as session:
        row = session.scalar(select(Send).where(Send.address == "anna@example.org"))
        assert (row.status, row.attempts) == ("sent", 2)


def test_dry_run_says_why_and_the_frequency_cap_holds(sending):
    ctx, inbox, _ = sending
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        night = delivery.plan(session, campaign, dt.datetime(2026, 12, 1, 22, 0, tzinfo=dt.UTC))
        assert {p.reason for p in night} == {"quiet_hours"}
        rules = parse_rules({**RULES, "defaults": {**RULES["defaults"], "cadence_days": [0, 1, 2, 3]},
                             "frequency_cap": {"messages": 2, "days": 7}})  # fmt: skip
        decide(session, campaign, save_rules(session, campaign, rules), AT.date())
    for day in range(3):
        planned = run_send(ctx, AT + dt.timedelta(days=day))
    anna = next(p for p in planned if p.reference == "A-1")
    assert (anna.status, anna.reason) == ("held", "frequency_cap")
    assert len([m for m in inbox.messages if "anna" in m["To"]]) == 2


def test_kindly_send_dry_run_at_a_time_lists_each_debtor(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from kindly.cli import cli

    settings = make_settings(tmp_path / "var")
    ctx = Context(settings)
    ctx.db.migrate()
    load_campaign(ctx)
    launched(ctx)
    ctx.close()
    monkeypatch.setenv("KINDLY_DATA_DIR", str(settings.data_dir))
    args = ["send", "winter", "--dry-run", "--json", "--at", "2026-12-01T21:30+01:00"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["held"] == {"quiet_hours": 3} and data["send"] == {}
    morning = CliRunner().invoke(cli, [*args[:-1], "2026-12-01T09:30+01:00"])
    data = json.loads(morning.output)
    assert data["send"] == {"email": 2, "letter": 1}
    assert not (settings.data_dir / "outbox").exists()  # a dry run sends nothing
    context_module.use(None)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_message_its_worker_never_finished_is_reported_in_doubt_and_not_resent(
    database, request, tmp_path, monkeypatch
):
    from click.testing import CliRunner

    from kindly.cli import cli

    env = {"KINDLY_DATA_DIR": str(tmp_path / "var")}
    if database == "postgresql":
        env["KINDLY_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    ctx = Context(make_settings(tmp_path / "var", **env))
    ctx.db.migrate()
    load_campaign(ctx)
    launched(ctx)
    now = dt.datetime.now(dt.UTC)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        anna, ben = session.scalars(select(Debtor).order_by(Debtor.reference)).all()[:2]
        # Anna's claim is 20 minutes old: its worker died before the server answered.
        # Ben's was made a minute ago: a worker may still be waiting for the answer.
        for debtor, age in ((anna, 20), (ben, 1)):
            session.add(Send(campaign_id=campaign.id, debtor_id=debtor.id, step=0,
                             channel="email", status="sending", attempts=1,
                             created_at=now - dt.timedelta(minutes=age)))  # fmt: skip
        session.commit()
        assert delivery.in_doubt(session, campaign.id, now) == {"email": 1}
        assert delivery.in_doubt(session, campaign.id, now - dt.timedelta(minutes=10)) == {}
    ctx.close()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["send", "winter", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["in_doubt"] == {"email": 1}
    assert all(p["reference"] not in ("A-1", "A-2") or p["status"] != "send"
               for p in data["debtors"])  # fmt: skip # neither is sent again
    assert "outcome unknown: email 1" in result.stderr
    plain = CliRunner().invoke(cli, ["send", "winter", "--dry-run"])
    assert "outcome unknown: email 1" in plain.stderr
    context_module.use(None)


def test_a_refusal_that_names_the_address_leaves_it_out_of_the_log(sending, caplog):
    # A content filter refusing the message after DATA often quotes the recipient; the
    # failed job's log line (and RQ's traceback in a worker) printed the reply whole.
    ctx, inbox, _ = sending
    inbox.refuse_data = "554 5.7.1 <anna@example.org>: message refused, call +4915112345678"
    with caplog.at_level(logging.WARNING):
        run_send(ctx)
    with ctx.db.session() as session:
        row = session.scalar(select(Send).where(Send.address == "anna@example.org"))
        assert row.status == "failed" and "anna@example.org" in row.error  # kept for the operator
    assert "SMTPDataError" in caplog.text and "message refused" in caplog.text
    assert "anna@example.org" not in caplog.text and "4915112345678" not in caplog.text
