"""One log line per request and per job: the route's rule, never the path; no personal data."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from gunicorn.config import Config
from sqlalchemy import select
from werkzeug.test import EnvironBuilder

from kindly.campaigns.models import Debtor
from kindly.errors import ConfigError
from kindly.infra import logs
from kindly.infra.config import read_log_format
from tests.support import services
from tests.support.app import load_campaign
from tests.unit.test_web import token_of
from web.server import ACCESS_FORMAT, RedactingLogger, options


@pytest.fixture
def lines():
    """The JSON lines kindly's loggers write during the test, as dicts."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_request_writes_one_json_line_with_the_rule_and_the_campaign(app, ctx, lines):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    client = app.test_client()
    assert client.get(f"/c/{token}?to=site").status_code in (302, 303)
    [line] = [line for line in lines() if line["logger"] == "kindly.request"]
    assert line["route"] == "/c/<token>" and line["method"] == "GET"
    assert line["status"] in (302, 303) and line["campaign"] == "winter"
    assert isinstance(line["duration_ms"], float) and len(line["request_id"]) == 16
    assert line["level"] == "info" and line["time"].endswith("+00:00")
    text = json.dumps(lines())
    assert token not in text and "Müller" not in text and "anna@example.org" not in text


def test_an_admin_request_names_the_slug_and_not_the_reference(app, ctx, lines):
    load_campaign(ctx)
    client = app.test_client()
    client.get("/admin/campaigns/winter/debtors/A-1")
    [line] = [line for line in lines() if line["logger"] == "kindly.request"]
    assert line["route"] == "/admin/campaigns/<slug>/debtors/<reference>"
    assert line["campaign"] == "winter" and "A-1" not in json.dumps(line)


def test_a_mistyped_link_is_logged_without_its_path(app, ctx, lines):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    answer = app.test_client().get(f"/S/{token}")  # a phone capitalised the link
    assert answer.status_code == 404
    [line] = [line for line in lines() if line["logger"] == "kindly.request"]
    assert line["route"] == "-" and line["status"] == 404
    assert token not in json.dumps(lines())


def test_lines_written_during_a_request_carry_its_id(app, ctx, lines):
    def noisy():
        logging.getLogger("kindly.test").warning("inside")
        return "ok"

    app.add_url_rule("/noisy", view_func=noisy)
    app.test_client().get("/noisy")
    inside, request_line = (
        next(line for line in lines() if line["logger"] == name)
        for name in ("kindly.test", "kindly.request")
    )
    assert inside["request_id"] == request_line["request_id"]
    assert inside["route"] == "/noisy" and inside["method"] == "GET"


def test_an_in_process_job_writes_its_line_with_the_campaign(ctx, lines):
    from workers.jobs import render_debtor
    from workers.queues import DEFAULT, Dispatcher

    load_campaign(ctx)
    with ctx.db.session() as session:
        debtor_id = session.scalar(select(Debtor.id).where(Debtor.reference == "A-1"))
    Dispatcher(ctx.settings).enqueue(
        render_debtor, [debtor_id, ["site"]], queue=DEFAULT, job_id="render-x", timeout=60
    )
    [line] = [line for line in lines() if line["logger"] == "kindly.job"]
    assert line["job_id"] == "render-x" and line["job"] == "workers.jobs.render_debtor"
    assert line["status"] == "finished" and line["campaign"] == "winter"
    assert "Müller" not in json.dumps(lines())


@pytest.mark.parametrize(
    "path", ["/S/{token}", "/s//{token}", "/admin/campaigns/winter/debtors/{token}"]
)
def test_gunicorn_access_log_names_the_rule_never_the_path(app, ctx, path):
    # The access line showed PATH_INFO through redact(), which knows only /s/, /o/, /c/ and
    # /u/ followed by the token: a capitalised or doubled slash printed the token whole.
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    response = app.test_client().open(EnvironBuilder(path=path.format(token=token)))
    environ = response.request.environ
    environ["RAW_URI"] = environ["PATH_INFO"]
    logger = RedactingLogger(Config())
    atoms = logger.atoms(response, None, environ, dt.timedelta(milliseconds=3))
    line = ACCESS_FORMAT % logger.atoms_wrapper_class(atoms)
    assert token not in line and token not in atoms["r"]
    assert '"GET -"' in line or '"GET /admin/campaigns/<slug>/debtors/<reference>"' in line


def test_the_log_format_follows_the_environment():
    assert read_log_format({}) == "text"
    assert read_log_format({"KINDLY_ENV": "production"}) == "json"
    assert read_log_format({"KINDLY_ENV": "production", "KINDLY_LOG_FORMAT": "TEXT"}) == "text"
    with pytest.raises(ConfigError, match="KINDLY_LOG_FORMAT must be json or text"):
        read_log_format({"KINDLY_LOG_FORMAT": "xml"})


def test_json_mode_turns_gunicorns_own_access_line_off(monkeypatch):
    monkeypatch.setenv("KINDLY_LOG_FORMAT", "json")
    assert options("127.0.0.1", 5000, 2)["accesslog"] is None
    monkeypatch.setenv("KINDLY_LOG_FORMAT", "text")
    assert options("127.0.0.1", 5000, 2)["accesslog"] == "-"


def test_text_lines_read_as_a_sentence_with_the_fields_after_it():
    record = logging.LogRecord("kindly.request", logging.INFO, __file__, 1, "GET %s 200",
                               ("/s/<token>",), None)  # fmt: skip
    record.route, record.status, record.campaign = "/s/<token>", 200, "winter"
    text = logs.TextFormatter().format(record)
    assert text.endswith("INFO kindly.request: GET /s/<token> 200 route=/s/<token> "
                         "status=200 campaign=winter")  # fmt: skip


def test_in_json_mode_gunicorns_error_log_is_json_and_redacted(monkeypatch, tmp_path):
    monkeypatch.setenv("KINDLY_LOG_FORMAT", "json")
    config = Config()
    config.set("errorlog", str(tmp_path / "error.log"))
    logger = RedactingLogger(config)
    logger.error("Error handling request %s", "/s/lxRJKp6FGVWEyd234KpkN0gOsaSewZsV/pay")
    [line] = (tmp_path / "error.log").read_text(encoding="utf-8").splitlines()
    entry = json.loads(line)
    assert entry["level"] == "error" and entry["logger"] == "gunicorn.error"
    assert entry["message"] == "Error handling request /s/…/pay"


@pytest.mark.slow
def test_kindly_serve_in_json_mode_writes_nothing_but_json_lines(ctx, tmp_path):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    port = services.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | {
        "KINDLY_DATA_DIR": ctx.settings.data_dir.as_posix(),
        "KINDLY_SECRET_KEY": ctx.settings.secret_key,
        "KINDLY_DATABASE_URL": ctx.settings.database_url,
        "KINDLY_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "serve-json.log"
    with log.open("w", encoding="utf-8") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "kindly", "serve", "--port", str(port), "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not services.port_open("127.0.0.1", port):
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            for path in (f"/c/{token}?to=site", f"/S/{token}", "/healthz"):
                with contextlib.suppress(urllib.error.HTTPError):
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).read()
        finally:
            server.terminate()
            server.wait(timeout=30)
    text = log.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    requests = [line for line in lines if line["logger"] == "kindly.request"]
    # the click's redirect is followed to the page: four requests, four lines
    assert [line["route"] for line in requests] == ["/c/<token>", "/s/<token>", "-", "/healthz"]
    assert [line["status"] for line in requests][::2] == [302, 404]
    assert requests[0]["campaign"] == "winter"
    assert any(line["logger"] == "gunicorn.error" for line in lines)
    assert token not in text


def test_a_slug_that_is_no_campaign_slug_is_not_logged(app, ctx, lines):
    # CI found the fixture's surname in a 404's line: a caller typed it where a slug goes
    load_campaign(ctx)
    answer = app.test_client().get("/admin/campaigns/Weiß@example.org/debtors/A-1")
    assert answer.status_code in (302, 303, 401, 403, 404)
    [line] = [line for line in lines() if line["logger"] == "kindly.request"]
    assert "campaign" not in line and "Weiß" not in json.dumps(lines())
