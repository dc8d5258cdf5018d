"""KINDLY_PAYMENTS: no play money in production (security issue 15, review H2)."""

from __future__ import annotations

import datetime as dt
import os
import re
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kindly.bank import rf
from kindly.campaigns.models import Campaign, Debtor
from kindly.creditors.service import set_creditor
from kindly.errors import ConfigError
from kindly.infra.config import check_production, load_settings
from kindly.payments.models import Payment, Plan
from kindly.reporting.metrics import campaign_stats
from kindly.tracking.models import Event
from tests.support.app import front_client, installed, load_campaign

BANK = {"payee_name": "Stadtwerke Beispielstadt GmbH", "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX"}  # fmt: skip


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A production environment that is complete except for what a test leaves out."""
    env = {
        "KINDLY_ENV": "production",
        "KINDLY_DATA_DIR": str(tmp_path / "var"),
        "KINDLY_SECRET_KEY": "production-secret-key-0123456789",
        "KINDLY_DATABASE_URL": f"sqlite:///{tmp_path / 'kindly.db'}",
        "KINDLY_BASE_URL": "https://pay.example.org",
        "KINDLY_OUTBOX": "on",
    }
    env.update(extra)
    return {name: value for name, value in env.items() if value}


@pytest.fixture
def production(tmp_path, monkeypatch):
    """Start a production front with this environment (the process's, as `kindly serve`)."""
    with ExitStack() as stack:

        def start(**extra: str):
            for name in [n for n in os.environ if n.startswith("KINDLY_")]:
                monkeypatch.delenv(name)
            for name, value in production_env(tmp_path, **extra).items():
                monkeypatch.setenv(name, value)
            context = stack.enter_context(installed(load_settings()))
            load_campaign(context)
            return context, front_client(context)

        yield start


def token(context, reference: str = "A-1") -> str:
    with context.db.session() as session:
        return session.scalar(select(Debtor.token).where(Debtor.reference == reference))


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def with_bank(context) -> None:
    """The account of A-1's creditor, in its profile (kindly.creditors)."""
    with context.db.session() as session:
        set_creditor(session, BANK["payee_name"], BANK)


def test_production_without_kindly_payments_refuses_to_start_naming_it(tmp_path):
    env = production_env(tmp_path)
    with pytest.raises(ConfigError, match="production needs KINDLY_PAYMENTS"):
        check_production(load_settings(env), env)
    # a Stripe key alone is not a choice either: the operator names the mode
    keyed = env | {"KINDLY_STRIPE_SECRET_KEY": "sk_test_x", "KINDLY_STRIPE_WEBHOOK_SECRET": "w"}
    with pytest.raises(ConfigError, match="KINDLY_PAYMENTS"):
        check_production(load_settings(keyed), keyed)
    for mode in ("none", "sandbox"):
        chosen = env | {"KINDLY_PAYMENTS": mode}
        check_production(load_settings(chosen), chosen)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("stripe", "KINDLY_PAYMENTS=stripe needs KINDLY_STRIPE_SECRET_KEY"),
        ("paypal", "KINDLY_PAYMENTS must be stripe, sandbox or none, got 'paypal'"),
    ],
)
def test_a_payment_mode_that_cannot_work_is_refused_anywhere(tmp_path, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({"KINDLY_DATA_DIR": str(tmp_path), "KINDLY_PAYMENTS": value})


def test_development_keeps_the_sandbox_by_default_and_stripe_with_a_key(tmp_path):
    base = {"KINDLY_DATA_DIR": str(tmp_path)}
    assert load_settings(base).payments == "sandbox"
    assert load_settings(base | {"KINDLY_STRIPE_SECRET_KEY": "sk_test_x"}).payments == "stripe"
    assert not load_settings(base).test_banner  # the demo looks as it did


def test_production_without_online_payment_has_no_sandbox_and_books_nothing(production):
    context, client = production(KINDLY_PAYMENTS="none")
    tok = token(context)
    assert 'data-cta="checkout"' not in client.get(f"/s/{tok}/pay").get_data(as_text=True)
    form = client.get(f"/s/{tok}/contact").get_data(as_text=True)  # a page with a form
    answer = client.post(f"/s/{tok}/pay", data={"csrf_token": csrf(form)})  # a stale pay form
    # back to the bank details, not to a checkout
    assert answer.status_code == 303 and answer.headers["Location"] == f"/s/{tok}/pay"
    assert client.get("/sandbox/checkout/sbx_AAAAAAAAAAAAAAAAAAAAAAAA").status_code == 404
    posted = client.post(
        "/sandbox/checkout/sbx_AAAAAAAAAAAAAAAAAAAAAAAA",
        data={"csrf_token": csrf(form), "outcome": "succeeded"},
    )
    assert posted.status_code == 404
    with context.db.session() as session:
        assert session.scalar(select(func.count(Payment.id))) == 0
        assert session.scalar(select(func.count(Event.id)).where(Event.type == "paid")) == 0
        stats = campaign_stats(session, session.scalar(select(Campaign)))
    assert stats["funnel"]["paid"] == 0 and stats["collected"] == {}


def test_stripe_mode_has_no_sandbox_routes_either(production):
    _, client = production(KINDLY_PAYMENTS="stripe", KINDLY_STRIPE_SECRET_KEY="sk_test_x",
                           KINDLY_STRIPE_WEBHOOK_SECRET="whsec_x")  # fmt: skip
    assert client.get("/sandbox/checkout/sbx_AAAAAAAAAAAAAAAAAAAAAAAA").status_code == 404


def test_the_sandbox_in_production_says_test_on_every_page(production):
    from workers.jobs import render_debtor

    context, client = production(KINDLY_PAYMENTS="sandbox")
    tok = token(context)
    pages = {
        "microsite": client.get(f"/s/{tok}"),
        "pay": client.get(f"/s/{tok}/pay"),
        "plan": client.get(f"/s/{tok}/plan"),
        "contact": client.get(f"/s/{tok}/contact"),
        "unknown link": client.get("/s/" + "x" * 30),
        "dashboard login": client.get("/admin/login"),
    }
    form = pages["pay"].get_data(as_text=True)
    checkout = client.post(f"/s/{tok}/pay", data={"csrf_token": csrf(form)})
    pages["test checkout"] = client.get(checkout.headers["Location"].split(".org", 1)[1])
    # the page the render job stored is marked when it is served, too
    with context.db.session() as session:
        other = session.scalar(select(Debtor.id).where(Debtor.reference == "A-3"))
    render_debtor(other, ["site"])
    pages["stored microsite"] = client.get(f"/s/{token(context, 'A-3')}")
    for name, page in pages.items():
        html = page.get_data(as_text=True)
        assert html.count("data-test-banner") == 1, name
        assert re.search(r"data-test-banner>[^<]*TEST", html), name


def test_no_online_payment_shows_bank_details_and_girocode_instead_of_pay_now(production):
    context, client = production(KINDLY_PAYMENTS="none")
    with_bank(context)
    tok = token(context)
    site = client.get(f"/s/{tok}").get_data(as_text=True)
    assert 'data-cta="pay"' not in site and "data-test-banner" not in site
    assert "data-transfer" in site and "DE89 3704 0044 0532 0130 00" in site
    assert "data-girocode" in site and 'src="data:image/svg+xml' in site
    assert 'data-cta="plan"' in site  # a plan can still be agreed, and paid by transfer
    pay = client.get(f"/s/{tok}/pay").get_data(as_text=True)
    assert "data-transfer" in pay and "data-girocode" in pay
    assert 'data-cta="checkout"' not in pay
    with context.db.session() as session:
        payref = session.scalar(select(Debtor.payment_reference).where(Debtor.reference == "A-1"))
    printed = rf.printed(payref)  # the payment reference, in groups of four, on both pages
    assert f"<strong>{printed}</strong>" in site and f"<strong>{printed}</strong>" in pay


def test_without_online_payment_a_plan_is_paid_by_transfer_and_never_charged(production):
    from workers import daily

    context, client = production(KINDLY_PAYMENTS="none")
    with_bank(context)
    tok = token(context)
    step1 = client.get(f"/s/{tok}/plan").get_data(as_text=True)
    shown = client.post(f"/s/{tok}/plan",
                        data={"csrf_token": csrf(step1), "show": "1", "instalments": "3"})  # fmt: skip
    review = client.get(shown.headers["Location"]).get_data(as_text=True)
    agreed = client.post(f"/s/{tok}/plan",
                         data={"csrf_token": csrf(review), "agree": "1", "instalments": "3"})  # fmt: skip
    assert agreed.headers["Location"] == f"/s/{tok}/plan/agreed"
    page = client.get(agreed.headers["Location"]).get_data(as_text=True)
    assert 'data-cta="instalment"' not in page
    assert "data-transfer" in page and "411,52" in page  # the first instalment, by transfer
    with context.db.session() as session:  # every instalment long due
        for instalment in session.scalar(select(Plan)).instalments:
            instalment.due_date = dt.date.today() - dt.timedelta(days=60)
    # the daily job charges nothing, so no charge can fail and break the plan
    for _ in range(3):
        summary = daily.collect_payments()
        assert (summary["charged"], summary["failed"], summary["plans_broken"]) == (0, 0, 0)
    with context.db.session() as session:
        plan = session.scalar(select(Plan))
        assert plan.status == "agreed" and plan.misses == 0
        assert all((i.status, i.attempts) == ("due", 0) for i in plan.instalments)
        assert session.scalar(select(func.count(Payment.id))) == 0


def test_a_production_worker_refuses_to_start_without_kindly_payments(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from kindly.cli import cli

    env = production_env(tmp_path, KINDLY_REDIS_URL="redis://127.0.0.1:1/0")
    result = CliRunner().invoke(cli, ["worker", "--burst"], env=env)
    assert isinstance(result.exception, ConfigError)
    assert "KINDLY_PAYMENTS" in str(result.exception)
