"""gunicorn's access log as `kindly serve` writes it: short lines, never a token."""

from __future__ import annotations

import datetime as dt

from gunicorn.config import Config

from web.server import ACCESS_FORMAT, RedactingLogger, worker_options

TOKEN = "lxRJKp6FGVWEyd234KpkN0gOsaSewZsV"


class Response:
    status = "200 OK"
    sent = 42


def test_access_lines_carry_no_token_and_no_query():
    logger = RedactingLogger(Config())
    environ = {
        "REMOTE_ADDR": "203.0.113.9",
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/o/{TOKEN}.gif",
        "RAW_URI": f"/o/{TOKEN}.gif?c=email",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "kindly.route": "/o/<token>.gif",  # what the app (or its fast lane) answered as
    }
    atoms = logger.atoms(Response(), None, environ, dt.timedelta(microseconds=2500))
    line = ACCESS_FORMAT % logger.atoms_wrapper_class(atoms)
    assert line == '203.0.113.9 "GET /o/<token>.gif" 200 42 2ms'
    assert TOKEN not in atoms["r"] and atoms["q"] == ""


def test_serve_keeps_connections_alive_on_threaded_workers():
    options = worker_options(2)
    assert options["worker_class"] == "gthread" and options["workers"] == 2
    assert options["threads"] >= 2 and options["keepalive"] >= 2


def test_the_session_serializer_is_built_once_per_key(app):
    interface = app.session_interface
    first = interface.get_signing_serializer(app)
    assert interface.get_signing_serializer(app) is first
    app.secret_key = "another-secret-key-0123456789"
    rotated = interface.get_signing_serializer(app)
    assert rotated is not first
    assert rotated.loads(rotated.dumps({"verified": [1]})) == {"verified": [1]}
