"""gunicorn, run from `kindly serve`, with access and error logs that never show a token."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from kindly.infra import exposition
from kindly.infra.config import Settings, read_log_format
from kindly.infra.logs import JsonFormatter
from kindly.infra.redact import install
from web.requestlog import route_of


class RedactingLogger(Logger):
    """gunicorn's logger, but request lines, paths and error messages lose their tokens.

    The access line names the route's rule (`/s/<token>`), never the path: a path holds
    tokens, and a mistyped one (`/S/<token>`, `/s//<token>`) is not shaped like one that
    redaction recognises; a request no rule matched shows `-` (web.requestlog).

    Only the atoms of ACCESS_FORMAT are computed: gunicorn's own `atoms` builds every header
    and environ variable into the dict and formats a timestamp on each request, which cost
    a hot route more than its own work.
    """

    def setup(self, cfg):
        """gunicorn's handlers, and the error log's records redacted ("Error handling
        request GET /s/<token>/…" and the traceback under it)."""
        super().setup(cfg)
        install(self.error_log)
        if read_log_format() == "json":  # one format on stderr, or log shippers choke
            for handler in self.error_log.handlers:
                handler.setFormatter(JsonFormatter())

    def atoms(self, resp, req, environ, request_time):
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        method = environ.get("REQUEST_METHOD")
        route = route_of(environ)
        return {
            "h": environ.get("REMOTE_ADDR", "-"),
            "m": method,
            "U": route,
            "r": f"{method} {route} {environ.get('SERVER_PROTOCOL')}",
            "q": "",  # query strings may carry channel hints; nothing personal, keep lines short
            "s": status,
            "b": str(sent) if sent is not None else "-",
            "M": request_time.seconds * 1000 + request_time.microseconds // 1000,
        }


ACCESS_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'


class KindlyServer(BaseApplication):
    """gunicorn with the app factory and our options."""

    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from web import create_app

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


def options(host: str, port: int, workers: int) -> dict:
    """gunicorn's settings for `kindly serve`."""
    return {
        "bind": f"{host}:{port}",
        **worker_options(workers),
        # JSON: the app's own request line (web.requestlog) is the access log
        "accesslog": None if read_log_format() == "json" else "-",
        "access_log_format": ACCESS_FORMAT,
        "logger_class": RedactingLogger,
        "timeout": 60,
        "graceful_timeout": 20,
    }


def run(host: str, port: int, workers: int, settings: Settings | None = None) -> None:
    """Serve until stopped; with `settings.metrics_port`, Prometheus on that port too."""
    chosen = options(host, port, workers)
    if settings is not None and settings.metrics_port is not None:
        chosen.update(metrics_hooks(settings))
    KindlyServer(chosen).run()


def metrics_hooks(settings: Settings) -> dict:
    """gunicorn hooks that serve the workers' summed metrics from the master, on a port of
    their own (kindly.infra.exposition.prepare has set up the multiprocess directory)."""
    held: dict = {}

    def when_ready(server) -> None:  # in the master, before the first worker is forked
        from workers.queues import live_metrics

        held["server"] = exposition.serve(
            settings.metrics_port, settings.metrics_host, live_metrics(settings)
        )

    def post_fork(server, worker) -> None:  # in the worker: the master's socket is not its own
        if "server" in held:
            held["server"].socket.close()

    def child_exit(server, worker) -> None:  # in the master: keep the counts, drop the file
        exposition.fold_dead(worker.pid)

    return {"when_ready": when_ready, "post_fork": post_fork, "child_exit": child_exit}
