"""Prometheus metrics on their own port, read over HTTP after a real render, send and payment
(kindly.infra.metrics); the public app never answers them."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from kindly.campaigns.models import Campaign
from kindly.errors import ConfigError
from kindly.infra import exposition, metrics
from kindly.infra.config import load_settings
from kindly.messaging import delivery
from kindly.messaging.models import Send
from kindly.payments.models import Payment
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from tests.support.app import launched
from tests.support.promql import DASHBOARD, scrape, used_names, value
from tests.unit.test_identity_limits import T0, five_wrong
from tests.unit.test_payments import a_plan_of_three_with_the_first_paid
from tests.unit.test_web import token_of
from workers.queues import Dispatcher
from workers.render import run_render
from workers.send import enqueue_sends

AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 in Berlin, a Tuesday
RULES = {"defaults": {"tone": "firm", "channels": ["email", "sms", "letter"]}}


@pytest.fixture
def metrics_port():
    """This process's metrics on a port of their own, as `kindly serve` serves them."""
    server = exposition.serve(0, "127.0.0.1")
    yield server.server_port
    server.shutdown()
    server.server_close()


def test_the_public_app_answers_404_on_metrics_and_counts_by_url_rule(client, ctx, metrics_port):
    from tests.support.app import load_campaign

    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    before = scrape(metrics_port)
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics/").status_code == 404
    assert client.get(f"/s/{token}").status_code == 200
    assert client.open(f"/s/{token}", method="BREW").status_code == 405
    after = scrape(metrics_port)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("kindly_http_requests_total", route="unmatched", method="GET", status="404") == 2
    assert delta("kindly_http_requests_total", route="/s/<token>", method="GET", status="200") == 1
    assert delta("kindly_http_requests_total", route="unmatched", method="other", status="405") == 1
    assert (
        delta("kindly_http_request_duration_seconds_count", route="/s/<token>", method="GET") == 1
    )
    assert delta("kindly_http_request_duration_seconds_bucket", route="/s/<token>", method="GET",
                 le="+Inf") == 1  # fmt: skip
    # the route is the rule: no path, no token in any label
    assert not [key for key in after if token in str(key)]


def test_a_render_a_send_and_a_payment_show_on_the_metrics_port(client, ctx, metrics_port):
    before = scrape(metrics_port)
    # a payment: A-1 agrees a plan and pays its first instalment at the sandbox's checkout
    a_plan_of_three_with_the_first_paid(client, ctx)
    # a render of every page and letter, in this process (no Redis)
    assert run_render(ctx, "winter", ["site", "letter"], quiet=True) == []
    # a send through the outbox (no gateway configured), as `kindly send` does
    launched(ctx)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        decide(session, campaign, save_rules(session, campaign, parse_rules(RULES)), AT.date())
    with ctx.db.session() as session:
        planned = delivery.plan(session, session.scalar(select(Campaign)), AT)
    enqueue_sends(Dispatcher(ctx.settings), planned, AT)
    # five wrong answers to the identity check lock the link
    five_wrong(ctx, T0)
    after = scrape(metrics_port)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    with ctx.db.session() as session:
        sends = Counter((s.channel, s.status) for s in session.scalars(select(Send)))
        paid = session.scalars(select(Payment).where(Payment.status == "succeeded")).all()
    assert sends and all(status in ("outbox", "print") for _, status in sends)
    for (channel, status), count in sends.items():
        assert delta("kindly_sends_total", channel=channel, outcome=status, reason="") == count
    held = Counter(metrics.hold_reason(p.reason) for p in planned if p.status == "held")
    assert held, "A-1's plan holds its reminders"
    for reason, count in held.items():
        assert sum(v - value(before, n, **dict(k)) for (n, k), v in after.items()
                   if n == "kindly_sends_total" and dict(k)["outcome"] == "held"
                   and dict(k)["reason"] == reason) == count  # fmt: skip
    assert [p.provider for p in paid] == ["sandbox"]
    assert delta("kindly_payments_booked_total", method="sandbox") == 1
    for kind in ("site", "letter"):
        assert delta("kindly_render_duration_seconds_count", kind=kind) == 3
        assert delta("kindly_render_duration_seconds_sum", kind=kind) > 0
    assert delta("kindly_identity_check_failures_total") == 5
    assert delta("kindly_identity_check_locks_total") == 1
    assert delta("kindly_http_requests_total", route="/s/<token>/plan", method="POST",
                 status="303") >= 1  # fmt: skip


def test_a_payment_counts_only_once_its_transaction_commits(ctx):
    from kindly.ledger import manual
    from tests.support.app import load_campaign

    load_campaign(ctx)
    counted = metrics.PAYMENTS_BOOKED.labels("cash")
    start = counted._value.get()
    with ctx.db.session() as session:
        debtor = session.scalar(select(Campaign)).debtors[0]
        manual.record(session, debtor, "10.00", method="cash", on=dt.date(2026, 1, 2),
                      user=None, via="test")  # fmt: skip
        assert counted._value.get() == start  # not yet: the booking may still roll back
        session.rollback()
    assert counted._value.get() == start
    with ctx.db.session() as session:
        debtor = session.scalar(select(Campaign)).debtors[0]
        manual.record(session, debtor, "10.00", method="cash", on=dt.date(2026, 1, 2),
                      user=None, via="test")  # fmt: skip
    assert counted._value.get() == start + 1


def test_every_name_the_deploy_files_use_is_defined_and_the_dashboard_is_in_deploy():
    defined = {sample for spec in metrics.ALL_SPECS for sample in spec.samples}
    assert DASHBOARD.is_file()
    assert set(used_names()) <= defined


def test_the_plans_reasons_become_few_label_values():
    assert metrics.hold_reason("quiet_hours") == "quiet_hours"
    assert metrics.hold_reason("email: opted_out; sms: no_address") == "opted_out"
    assert metrics.hold_reason(None) == ""


def test_the_metrics_port_is_a_number_and_never_the_public_port(tmp_path, monkeypatch):
    env = {"KINDLY_DATA_DIR": str(tmp_path / "var"), "KINDLY_SECRET_KEY": "x" * 32}
    assert load_settings(env).metrics_port is None  # off when unset
    assert load_settings(env | {"KINDLY_METRICS_PORT": "9464"}).metrics_port == 9464
    for bad in ("http", "0", "70000", "-1"):
        with pytest.raises(ConfigError, match="KINDLY_METRICS_PORT must be a port number"):
            load_settings(env | {"KINDLY_METRICS_PORT": bad})

    from kindly.cli import cli

    for name, val in (env | {"KINDLY_METRICS_PORT": "5000"}).items():
        monkeypatch.setenv(name, val)
    result = CliRunner().invoke(cli, ["serve", "--port", "5000"])
    assert result.exit_code != 0
    assert "KINDLY_METRICS_PORT 5000 is the public port" in result.output + str(result.exception)


PREPARED = """
import os, sys
from kindly.infra import exposition, metrics
assert exposition.prepare(None) is False and not exposition.multiprocess()
assert exposition.prepare(9464) is True
directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
print(directory, oct(os.stat(directory).st_mode & 0o777))
metrics.count_webhook("delivered", retry=False)
print(sorted(os.listdir(directory)))
sys.stdout.flush()
"""


def test_without_a_directory_a_served_process_counts_in_a_private_one_removed_at_exit(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("KINDLY_", "PROMETHEUS_"))}
    out = subprocess.run([sys.executable, "-c", PREPARED], env=env, capture_output=True,
                         text=True, check=True, timeout=60).stdout.splitlines()  # fmt: skip
    directory, mode = out[0].split()
    assert mode == "0o700" and f"counter_{os.getpid()}.db" not in out[1]
    assert "counter_" in out[1] and "histogram_" not in out[1]  # one file per type and process
    assert not os.path.exists(directory)  # removed when the process ended


def test_bank_transfers_matched_in_a_statement_count_once_it_is_committed(ctx, metrics_port):
    from kindly.campaigns.models import Debtor
    from kindly.reconciliation.importer import import_statement
    from tests.support import bankfiles as bf
    from tests.support.app import load_campaign

    load_campaign(ctx)
    before = scrape(metrics_port)
    with ctx.db.session() as session:
        debtors = {d.reference: d for d in session.scalars(select(Debtor))}
        data = bf.camt053([
            bf.Payment("Anna Müller", "DE02120300000000202051", "100.00",
                       reference=debtors["A-1"].payment_reference),
            bf.Payment("G. D'Angelo", "DE02500105170137075030", "42.00",
                       reference=debtors["A-3"].payment_reference),
            bf.Payment("Nobody", "DE02500105170137075030", "9.99", remittance="no reference"),
        ])  # fmt: skip
        result = import_statement(session, ctx.storage, data, "statement.xml")
        assert (result.matched, result.unmatched) == (2, 1)
        during = scrape(metrics_port)
    after = scrape(metrics_port)
    booked = ("kindly_payments_booked_total", {"method": "bank_transfer"})
    assert value(during, booked[0], **booked[1]) == value(before, booked[0], **booked[1])
    assert value(after, booked[0], **booked[1]) - value(before, booked[0], **booked[1]) == 2
