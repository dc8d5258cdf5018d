"""gunicorn, run from `kindly serve`, with an access log that never shows a token."""

from __future__ import annotations

import re

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

TOKEN_IN_PATH = re.compile(r"/(s|o|c)/[A-Za-z0-9_-]{16,}")
SANDBOX_REF = re.compile(r"sbx_[A-Za-z0-9_-]+")


def redact(path: str) -> str:
    """The path with debtor tokens and payment ids replaced."""
    return SANDBOX_REF.sub("sbx_…", TOKEN_IN_PATH.sub(r"/\1/…", path))


class RedactingLogger(Logger):
    """gunicorn's logger, but request lines and paths lose their tokens."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "q"):
            if key in atoms and isinstance(atoms[key], str):
                atoms[key] = redact(atoms[key])
        atoms["q"] = (
            ""  # query strings may carry channel hints; nothing personal, but keep lines short
        )
        return atoms


class KindlyServer(BaseApplication):
    """gunicorn with the app factory and our options."""

    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from kindly.web import create_app

        return create_app()


THREADS = 4
"""Threads per worker: a request mostly waits on PostgreSQL or Redis with the GIL released."""
KEEPALIVE = 5
"""Seconds an idle keep-alive connection stays open (phones fetch the page, then its assets)."""


def worker_options(workers: int) -> dict:
    """How each worker serves: the same settings for `kindly serve` and the bench baseline."""
    return {
        "workers": workers,
        "worker_class": "gthread",
        "threads": THREADS,
        "keepalive": KEEPALIVE,
    }


def run(host: str, port: int, workers: int) -> None:
    """Serve until stopped."""
    KindlyServer(
        {
            "bind": f"{host}:{port}",
            **worker_options(workers),
            "accesslog": "-",
            "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
            "logger_class": RedactingLogger,
            "timeout": 60,
            "graceful_timeout": 20,
        }
    ).run()
