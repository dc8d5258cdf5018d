"""A campaign manager in Chromium: signs in, uploads a broken and then a good portfolio,
launches, watches sandbox payments arrive in the funnel, the money and the charts; a viewer
cannot change anything; a stranger only meets the sign-in page."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PHONE_UA, LiveServer, _checked, serving, snap
from tests.support import services
from tests.support.app import PORTFOLIO
from tests.support.creditors import PROFILES

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
BROKEN = (
    "reference,last_name,currency,amount_due,due_date\n"
    "D-1,Fine,EUR,10.00,2026-12-01\n"
    "D-2,Broken,EUR,ten,2026-12-01\n"
)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`kindly serve` on an empty data folder with a manager and a viewer created by the CLI."""
    workdir = tmp_path_factory.mktemp("dashboard")
    port = services.free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | {
        "KINDLY_DATA_DIR": str(workdir / "var"),
        "KINDLY_SECRET_KEY": "e2e-dashboard-key-0123456789",
        "KINDLY_BASE_URL": base_url,
        "PYTHONUNBUFFERED": "1",
    }
    server = LiveServer(base_url=base_url, workdir=workdir, env=env)
    for email, role in (("manager@example.org", "manager"), ("viewer@example.org", "viewer")):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "kindly",
                "user",
                "create",
                email,
                "--role",
                role,
                "--password-stdin",
            ],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=workdir,
            timeout=120,
        )
        _checked(result, "kindly user create")
    with serving(server, port):
        yield server


@pytest.fixture
def desk(browser):
    """A desktop browser window, 1280 px wide."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def small(browser):
    """A phone-sized window, 360 px wide."""
    context = browser.new_context(
        viewport={"width": 360, "height": 780},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-GB",
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def sign_in(page: Page, server: LiveServer, email: str) -> None:
    page.goto(f"{server.base_url}/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login"))
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Campaigns")


def upload(page: Page, server: LiveServer, path: Path, slug: str) -> None:
    page.goto(f"{server.base_url}/admin/campaigns/new")
    page.fill("#name", "Dashboard test")
    page.fill("#slug", slug)
    page.set_input_files("#portfolio", str(path))
    page.click("form.card button[type=submit]")


def test_strangers_only_see_the_sign_in_page(dashboard: LiveServer, desk: Page, artifacts_dir):
    for path in ("/admin/", "/admin/audit", "/admin/campaigns/new", "/admin/users"):
        desk.goto(dashboard.base_url + path)
        expect(desk).to_have_url(re.compile(r"/admin/login"))
        expect(desk.locator("h1")).to_have_text("Sign in")
    desk.fill("#email", "manager@example.org")
    desk.fill("#password", "not the password")
    desk.click("button[type=submit]")
    expect(desk.locator(".problem")).to_contain_text("do not match")
    snap(desk, artifacts_dir / "dash-0-sign-in.png")


def test_manager_uploads_launches_and_sees_payments(
    dashboard: LiveServer, desk: Page, small: Page, browser, artifacts_dir
):
    sign_in(desk, dashboard, "manager@example.org")
    expect(desk.locator(".empty")).to_contain_text("No campaigns yet")

    broken = dashboard.workdir / "broken.csv"
    broken.write_text(BROKEN, encoding="utf-8")
    upload(desk, dashboard, broken, "spring")
    table = desk.locator("#rejected table")
    expect(table).to_contain_text("amount_due")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr td").first).to_have_text("3")
    snap(desk, artifacts_dir / "dash-1-bad-rows.png")

    good = dashboard.workdir / "spring.csv"
    good.write_text(PORTFOLIO, encoding="utf-8")
    upload(desk, dashboard, good, "spring")
    expect(desk.locator("#import-result")).to_contain_text("3 created")
    desk.click("text=Open the campaign")
    expect(desk.locator("#status")).to_have_text("draft")
    # the launch check refuses while a creditor of the portfolio has no complete profile
    desk.click("button[value=launch]")
    expect(desk.locator("main")).to_contain_text("creditor Northern Water Ltd")
    expect(desk.locator("main")).to_contain_text("whom to contact: phone or email")
    snap(desk, artifacts_dir / "dash-1b-launch-refused.png")
    for name in ("Stadtwerke Beispielstadt GmbH", "Acqua Roma S.p.A."):  # as an operator would
        p = PROFILES[name]
        done = dashboard.kindly("creditor", "set", name, "--address", "; ".join(p["address"]),
                                "--phone", p["phone"], "--email", p["email_address"],
                                "--iban", p["iban"], "--bic", p["bic"])  # fmt: skip
        assert done.returncode == 0, done.stderr
    # the manager completes the third in the dashboard
    desk.goto(f"{dashboard.base_url}/admin/creditors")
    expect(desk.locator("#creditors")).to_contain_text("no profile yet")
    desk.click("#creditors tr:has-text('Northern Water Ltd') a")
    nw = PROFILES["Northern Water Ltd"]
    desk.fill("#address", "\n".join(nw["address"]))
    desk.fill("#phone", nw["phone"])
    desk.fill("#iban", "GB29 NWBK 6016 1331 9268 18")  # one digit wrong
    desk.click("form.settings button[type=submit]")
    expect(desk.locator("#problems")).to_contain_text("fails its checksum")
    desk.fill("#iban", nw["iban"])
    desk.click("form.settings button[type=submit]")
    expect(desk.locator("#saved")).to_be_visible()
    desk.goto(f"{dashboard.base_url}/admin/creditors")
    expect(desk.locator("#creditors .missing")).to_have_text(["nothing"] * 3)
    snap(desk, artifacts_dir / "dash-1c-creditors.png")
    assert dashboard.kindly("check", "spring").returncode == 0
    desk.goto(f"{dashboard.base_url}/admin/campaigns/spring")
    desk.click("button[value=launch]")
    expect(desk.locator("#status")).to_have_text("live")
    expect(desk.locator('tr[data-step="paid"] .human')).to_have_text("0")

    # Debtors pay in the sandbox: the site is rendered by the CLI, as an operator would.
    _checked(dashboard.kindly("render", "spring", "--kinds", "site"), "kindly render")
    export = dashboard.workdir / "export.csv"
    _checked(dashboard.kindly("export", "spring", "--out", str(export)), "kindly export")
    with export.open(encoding="utf-8") as handle:
        tokens = {row["reference"]: row["token"] for row in csv.DictReader(handle)}
    phone = browser.new_context(viewport={"width": 360, "height": 780}, user_agent=PHONE_UA)
    debtor = phone.new_page()
    for reference in ("A-1", "A-2"):
        debtor.goto(f"{dashboard.base_url}/s/{tokens[reference]}")
        debtor.locator("[data-cta=pay]").click()
        debtor.locator("[data-cta=checkout]").click()
        debtor.locator("[data-sandbox=succeed]").click()
        expect(debtor).to_have_url(re.compile(r"\?payment=succeeded"))
    debtor.goto(f"{dashboard.base_url}/s/{tokens['A-3']}")
    phone.close()

    desk.reload()
    expect(desk.locator('tr[data-step="paid"] .human')).to_have_text("2")
    expect(desk.locator('tr[data-step="viewed"] .human')).to_have_text("3")
    expect(desk.locator('.money[data-currency="EUR"] .collected')).to_have_text("€1,234.56")
    expect(desk.locator('.money[data-currency="GBP"] .collected')).to_have_text("£89.90")
    expect(desk.locator('.money[data-currency="GBP"] .recovery')).to_have_text("100.0 %")
    expect(desk.locator('tr[data-rate="payment_success"] .value')).to_have_text("100.0 %")
    assert desk.locator("svg.chart").count() >= 4  # funnel, money (EUR, GBP), variants, hours
    assert desk.evaluate("document.documentElement.scrollWidth") <= 1280
    snap(desk, artifacts_dir / "dash-2-campaign-1280.png")

    sign_in(small, dashboard, "manager@example.org")
    small.goto(f"{dashboard.base_url}/admin/campaigns/spring")
    expect(small.locator('tr[data-step="paid"] .human')).to_have_text("2")
    assert small.evaluate("document.documentElement.scrollWidth") <= 360
    snap(small, artifacts_dir / "dash-3-campaign-360.png")

    desk.goto(f"{dashboard.base_url}/admin/")
    row = desk.locator('tr[data-slug="spring"]')
    expect(row.locator(".collected")).to_contain_text("1234.56 EUR")
    snap(desk, artifacts_dir / "dash-4-campaigns-1280.png")
    desk.goto(f"{dashboard.base_url}/admin/audit")
    expect(desk.locator("#audit")).to_contain_text("campaign.launch")
    expect(desk.locator("#audit")).to_contain_text("portfolio.import")


def test_viewer_cannot_change_anything(dashboard: LiveServer, desk: Page, artifacts_dir):
    sign_in(desk, dashboard, "viewer@example.org")
    expect(desk.locator("text=New campaign")).to_have_count(0)
    desk.goto(f"{dashboard.base_url}/admin/campaigns/spring")
    expect(desk.locator("#funnel")).to_be_visible()
    expect(desk.locator("button[value=pause]")).to_have_count(0)
    expect(desk.locator("#upload-h")).to_have_count(0)
    response = desk.goto(f"{dashboard.base_url}/admin/campaigns/spring/debtors.csv")
    assert response is not None and response.status == 403
    snap(desk, artifacts_dir / "dash-5-viewer-refused.png")
