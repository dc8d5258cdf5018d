"""No debtor token, and no SQL parameter, in any log Kindly writes."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from gunicorn.config import Config
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from kindly.campaigns.models import Debtor
from kindly.infra.db import Database
from tests.support import services
from tests.support.app import load_campaign
from tests.unit.test_web import token_of
from web.server import ACCESS_FORMAT, RedactingLogger

TOKEN = "lxRJKp6FGVWEyd234KpkN0gOsaSewZsV"


class Response:
    status = "200 OK"
    sent = 42


def test_the_access_log_hides_the_token_of_an_unsubscribe_link():
    logger = RedactingLogger(Config())
    environ = {"REMOTE_ADDR": "203.0.113.9", "REQUEST_METHOD": "GET",
               "PATH_INFO": f"/u/{TOKEN}", "RAW_URI": f"/u/{TOKEN}?c=email",
               "SERVER_PROTOCOL": "HTTP/1.1", "kindly.route": "/u/<credential>"}  # fmt: skip
    atoms = logger.atoms(Response(), None, environ, dt.timedelta(microseconds=2500))
    line = ACCESS_FORMAT % logger.atoms_wrapper_class(atoms)
    assert line == '203.0.113.9 "GET /u/<credential>" 200 42 2ms'
    assert TOKEN not in atoms["r"]


def test_gunicorn_error_log_hides_the_token_in_the_message_and_the_traceback(tmp_path):
    config = Config()
    config.set("errorlog", str(tmp_path / "error.log"))
    logger = RedactingLogger(config)
    path = f"/s/{TOKEN}/plan/confirmation.pdf"
    try:
        raise ValueError(f"invalid header on {path}")
    except ValueError:
        # what gunicorn's worker logs when a response cannot be written
        logger.exception("Error handling request %s %s", "GET", path)
    text = (tmp_path / "error.log").read_text(encoding="utf-8")
    assert "Error handling request GET /s/…/plan/confirmation.pdf" in text
    assert "ValueError: invalid header on /s/…/plan/confirmation.pdf" in text
    assert TOKEN not in text


def test_an_unhandled_error_is_logged_with_the_path_but_without_the_token(app, ctx, caplog):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")

    def broken(token: str):
        raise RuntimeError(f"no answer for /s/{token}/x")

    app.add_url_rule("/s/<token>/broken", view_func=broken)
    client = app.test_client()
    with caplog.at_level(logging.ERROR, logger="web"):
        answer = client.get(f"/s/{token}/broken")
    assert answer.status_code == 500 and token.encode() not in answer.data
    assert "unhandled error on GET broken (/s/…/broken)" in caplog.text
    assert "RuntimeError" in caplog.text and token not in caplog.text


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_sql_error_carries_no_parameters(backend, tmp_path, request):
    url = (f"sqlite:///{tmp_path / 'k.db'}" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))  # fmt: skip
    database = Database(url)
    database.migrate()
    row = {"campaign_id": 987654, "reference": "SECRET-REF", "token": TOKEN,
           "last_name": "Geheimname", "currency": "EUR", "amount_due_minor": 100,
           "due_date": dt.date(2026, 1, 1), "attributes": {}, "segment": "default",
           "variant": "a", "channel": "email"}  # fmt: skip
    # no such campaign: a foreign-key violation
    with pytest.raises(IntegrityError) as failure, database.session() as session:
        session.execute(insert(Debtor).values(**row))
    database.dispose()
    message = str(failure.value)
    assert "parameters hidden" in message
    assert TOKEN not in message and "Geheimname" not in message and "SECRET-REF" not in message


@pytest.mark.slow  # a real gunicorn serving on a port
def test_kindly_serve_writes_no_token_to_its_log(ctx, tmp_path):
    load_campaign(ctx)
    token = token_of(ctx, "A-1")
    port = services.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | {
        "KINDLY_DATA_DIR": ctx.settings.data_dir.as_posix(),
        "KINDLY_SECRET_KEY": ctx.settings.secret_key,
        "KINDLY_DATABASE_URL": ctx.settings.database_url,
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "serve.log"
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
            base = f"http://127.0.0.1:{port}"
            for path in (f"/u/{token}?c=email", f"/s/{token}", f"/o/{token}.gif",
                         f"/s/{token}/faq", f"/u/{token}x?c=email"):  # fmt: skip
                with contextlib.suppress(urllib.error.HTTPError):
                    urllib.request.urlopen(base + path, timeout=10).read()
        finally:
            server.terminate()
            server.wait(timeout=30)
    text = log.read_text(encoding="utf-8")
    assert '"GET /u/<credential>"' in text and '"GET /o/<token>.gif"' in text
    assert "kindly.request: GET /s/<token>/faq" in text  # the app's own line per request
    assert token not in text


def test_redact_covers_every_token_route_and_postgres_key_details():
    from kindly.infra.redact import redact

    line = (f"/s/{TOKEN}/pay /o/{TOKEN}.gif /c/{TOKEN}?to=site /u/{TOKEN}?c=sms sbx_abc123 "
            f'DETAIL:  Key (token)=({TOKEN}) already exists.')  # fmt: skip
    assert redact(line) == ("/s/…/pay /o/….gif /c/…?to=site /u/…?c=sms sbx_… "
                            "DETAIL:  Key (token)=(…) already exists.")  # fmt: skip


def test_redact_hides_addresses_phone_numbers_and_ibans_but_not_ids_or_rf_references():
    from kindly.infra.redact import redact

    line = ("554 5.7.1 <anna.m+x@mail.example.org> refused; call +4915112345678 or "
            "4915112345678; refund to DE89 3704 0044 0532 0130 00 and GB82WEST12345698765432; "
            "pay RF18539007547034; job send-1234567-0-email; 2026-12-02 +00:00")  # fmt: skip
    assert redact(line) == ("554 5.7.1 <…@…> refused; call [phone] or [phone]; refund to "
                            "[IBAN] and [IBAN]; pay RF18539007547034; job send-1234567-0-email; "
                            "2026-12-02 +00:00")  # fmt: skip
