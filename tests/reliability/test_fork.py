"""A forked process (an RQ work horse, a gunicorn worker) never shares the parent's database
connection: on one socket, two processes corrupt each other's sessions."""

from __future__ import annotations

import os

from sqlalchemy import text

from kindly.infra.db import Database


def _same_query_often(database: Database) -> list[int]:
    """psycopg prepares a statement on the server after five runs: enough to clash."""
    with database.engine.connect() as connection:
        return [connection.execute(text("SELECT :n + 1"), {"n": n}).scalar() for n in range(8)]


def test_a_forked_child_opens_its_own_connections(postgres_url):
    database = Database(postgres_url)
    try:
        with database.engine.connect() as connection:  # the parent's pooled connection
            parent_backend = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            status = 1
            try:
                with database.engine.connect() as connection:
                    backend = connection.execute(text("SELECT pg_backend_pid()")).scalar()
                ok = backend != parent_backend and _same_query_often(database) == list(range(1, 9))
                os.write(write, b"ok" if ok else b"shared")
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        _, status = os.waitpid(child, 0)
        answer = os.read(read, 16)
        os.close(read)
        assert os.waitstatus_to_exitcode(status) == 0 and answer == b"ok"
        # and the parent's own connection still works after the child ran its statements
        assert _same_query_often(database) == list(range(1, 9))
    finally:
        database.dispose()
