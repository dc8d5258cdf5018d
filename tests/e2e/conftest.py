"""A live Kindly server built with the real CLI, and a German phone in Chromium to visit it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import services
from tests.support.app import PORTFOLIO

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# A person's phone: without it Chromium says "HeadlessChrome" and is counted as a machine.
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


@dataclass
class LiveServer:
    """The served app, its data folder, and the environment every `kindly` process shares."""

    base_url: str
    workdir: Path
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log: Path | None = None

    def kindly(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run the `kindly` command line as an operator would, on this server's data."""
        return kindly(self.workdir, self.env, *args, timeout=timeout)

    def stats(self, slug: str = "winter") -> dict[str, Any]:
        """`kindly stats SLUG --json`, parsed."""
        result = self.kindly("stats", slug, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def url(self, reference: str, suffix: str = "") -> str:
        """The debtor's personal link (by portfolio reference)."""
        return f"{self.base_url}/s/{self.tokens[reference]}{suffix}"

    def server_log(self) -> str:
        """What gunicorn wrote so far (access log and errors)."""
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(encoding="utf-8", errors="replace")


def kindly(
    workdir: Path, env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kindly", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=timeout,
    )


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _checked(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{what} failed:\n{result.stdout}\n{result.stderr}"
    return result


def rendered_campaign(
    workdir: Path, portfolio: str, *, key: str, rules: dict[str, Any] | None = None
) -> tuple[LiveServer, int, list[dict[str, str]]]:
    """Campaign `winter` imported from `portfolio` (with `rules` saved, if given), its
    microsites rendered and exported: the server (not yet serving: `with serving(server,
    port)`), its port and the export's rows; `server.tokens` maps references to tokens."""
    port = services.free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | {
        "KINDLY_DATA_DIR": str(workdir / "var"),
        "KINDLY_SECRET_KEY": f"e2e-{key}-key-0123456789",
        "KINDLY_BASE_URL": base_url,
        "PYTHONUNBUFFERED": "1",
    }
    server = LiveServer(base_url=base_url, workdir=workdir, env=env)
    source = workdir / "portfolio.csv"
    source.write_text(portfolio, encoding="utf-8")
    _checked(server.kindly("import", str(source), "--campaign", "winter", "--create"), "import")
    if rules is not None:
        document = workdir / "rules.json"
        document.write_text(json.dumps(rules), encoding="utf-8")
        _checked(server.kindly("rules", "winter", "--set", str(document)), "kindly rules --set")
    _checked(server.kindly("render", "winter", "--kinds", "site"), "render")
    export = workdir / "export.csv"
    _checked(server.kindly("export", "winter", "--out", str(export)), "export")
    with export.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    server.tokens = {row["reference"]: row["token"] for row in rows}
    return server, port, rows


@contextmanager
def serving(server: LiveServer, port: int) -> Iterator[LiveServer]:
    """`kindly serve` on the port until the block ends; its log goes to server.log."""
    server.log = server.workdir / "serve.log"
    with server.log.open("w", encoding="utf-8") as log_handle:
        server.process = subprocess.Popen(
            [sys.executable, "-m", "kindly", "serve", "--port", str(port), "--workers", "1"],
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            env=server.env,
            cwd=server.workdir,
        )
        try:
            deadline = time.monotonic() + 30
            while not _healthy(server.base_url):
                if server.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"kindly serve did not come up:\n{server.server_log()}")
                time.sleep(0.2)
            yield server
        finally:
            server.process.terminate()
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=10)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Import and render campaign `winter` with the CLI, then `kindly serve` it on a free port."""
    workdir = tmp_path_factory.mktemp("e2e")
    port = services.free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | {
        "KINDLY_DATA_DIR": str(workdir / "var"),
        "KINDLY_SECRET_KEY": "e2e-secret-key-0123456789",
        "KINDLY_BASE_URL": base_url,
        "PYTHONUNBUFFERED": "1",
    }
    server = LiveServer(base_url=base_url, workdir=workdir, env=env)

    portfolio = workdir / "portfolio.csv"
    portfolio.write_text(PORTFOLIO, encoding="utf-8")
    _checked(
        server.kindly("import", str(portfolio), "--campaign", "winter", "--create"), "kindly import"
    )
    _checked(server.kindly("render", "winter", "--kinds", "site,letter,video"), "kindly render")
    export = workdir / "export.csv"
    _checked(server.kindly("export", "winter", "--out", str(export)), "kindly export")
    with export.open(encoding="utf-8") as handle:
        server.tokens = {row["reference"]: row["token"] for row in csv.DictReader(handle)}

    with serving(server, port):
        yield server


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """When a test fails, attach what the server wrote to the report."""
    report = yield
    if report.failed and "live_server" in item.fixturenames:
        server = item.funcargs.get("live_server")
        if isinstance(server, LiveServer):
            report.sections.append(("kindly serve log", server.server_log()[-20000:]))
    return report


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session (Debian's; never a downloaded one)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def phone(browser):
    """A fresh German-language phone: 360×780 CSS px at 2×, touch, mobile Chrome."""
    context = browser.new_context(
        viewport={"width": 360, "height": 780},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="de-DE",
        user_agent=PHONE_UA,
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def snap(page, path, *, full_page: bool = True) -> None:
    """Keep a screenshot of what the person sees, as a test artefact.

    Headless Chromium now and then stops producing frames for a page whose context is not
    the front one (seen in the full suite, never alone): the screenshot then waits forever.
    Bring the page to the front and try again; a last try takes the viewport only.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt, whole in enumerate((full_page, full_page, False)):
        try:
            page.screenshot(path=str(path), full_page=whole, timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.bring_to_front()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where screenshots go (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
