"""Backups in embedded mode (SQLite and a storage folder): what is kept and what is left to
`kindly render`, the checks restore makes before it writes, and a round trip."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kindly import context as context_module
from kindly.backup import database, service
from kindly.backup.archive import FolderArchive, open_archive
from kindly.backup.manifest import BackupError
from kindly.campaigns.models import Debtor
from kindly.context import Context
from kindly.payments.models import Payment
from kindly.reconciliation.importer import import_statement
from kindly.site.models import Artifact
from tests.support import bankfiles as bf
from tests.support.app import load_campaign, make_settings
from workers.render import run_render

LOGO = "campaigns/winter/logo/" + "a" * 64 + ".png"


@pytest.mark.parametrize(
    ("key", "rendered"),
    [
        ("campaigns/winter/debtors/12/site.html", True),
        ("campaigns/winter/debtors/12/letter.pdf", True),
        ("campaigns/winter/debtors/12/video.mp4", True),
        ("campaigns/winter/debtors/12/poster.jpg", True),
        ("campaigns/winter/debtors/12/captions.vtt", True),
        ("campaigns/winter/A-1_x/site.html", True),  # the keys before migration 0980
        ("links/" + "f" * 64 + ".json", True),  # written beside each page
        ("bank/statements/" + "0" * 64 + ".xml", False),
        ("bank/statements/" + "0" * 64 + ".mt940", False),
        (LOGO, False),
        ("creditors/logo/" + "b" * 64 + ".png", False),
        ("campaigns/winter/debtors/12/upload.pdf", False),  # not a file Kindly renders
        ("something/else.bin", False),
    ],
)
def test_rendered_files_are_told_apart_from_what_only_a_backup_keeps(key, rendered):
    assert service.is_rendered(key) is rendered


@pytest.fixture
def source(ctx: Context) -> Context:
    """A campaign with rendered pages, a bank statement that booked a payment, and a logo."""
    load_campaign(ctx)
    assert not run_render(ctx, "winter", ["site"], quiet=True)
    with ctx.db.session() as session:
        rf = session.scalar(select(Debtor.payment_reference).where(Debtor.reference == "A-1"))
        statement = bf.camt053([bf.Payment("Anna Müller", bf.ACCOUNT, "34.56", reference=rf)])
        assert import_statement(session, ctx.storage, statement, "dec.xml").matched == 1
    ctx.storage.put(LOGO, b"\x89PNG fake", "image/png")
    return ctx


def target_context(tmp_path: Path, name: str = "target", **env: str) -> Context:
    """An installation nobody migrated: an empty database and an empty storage folder."""
    target = Context(make_settings(tmp_path / name, **env))
    context_module.use(target)
    return target


def rows(ctx: Context) -> dict:
    with ctx.db.session() as session:
        tokens = dict(session.execute(select(Debtor.reference, Debtor.token)).all())
        paid = session.execute(select(Payment.debtor_id, Payment.amount_minor)).all()
        artifacts = session.scalar(select(func.count(Artifact.id)))
    return {"tokens": tokens, "paid": sorted(paid), "artifacts": artifacts}


def test_a_sqlite_backup_restores_into_an_empty_installation(source, tmp_path):
    before = rows(source)
    statement_key = next(k for k in source.storage.list_keys() if k.startswith("bank/"))
    taken = service.backup(source, FolderArchive(tmp_path / "b"))
    assert (taken.database, taken.objects, taken.rendered_skipped) == ("sqlite", 2, 6)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["alembic_revision"] == service.current_revision(source)
    assert sorted(o["key"] for o in manifest["objects"]) == sorted([statement_key, LOGO])
    assert manifest["database"]["name"] == "database.sqlite3"
    assert oct((tmp_path / "b").stat().st_mode & 0o777) == "0o700"  # it holds personal data

    target = target_context(tmp_path)
    done = service.restore(target, FolderArchive(tmp_path / "b"))
    assert (done.objects, done.dropped_artifacts, done.campaigns_to_render) == (2, 3, ["winter"])
    assert done.warnings == []
    after = rows(target)
    assert (after["tokens"], after["paid"]) == (before["tokens"], before["paid"])
    assert after["artifacts"] == 0  # left out of the backup: `kindly render` makes them again
    assert target.storage.get(statement_key) == source.storage.get(statement_key)
    assert target.storage.get(LOGO) == b"\x89PNG fake"
    assert not run_render(target, "winter", ["site"], quiet=True)
    assert rows(target)["artifacts"] == 3


def test_with_all_the_rendered_files_come_back_too(source, tmp_path):
    service.backup(source, FolderArchive(tmp_path / "b"), include_rendered=True)
    target = target_context(tmp_path)
    done = service.restore(target, FolderArchive(tmp_path / "b"))
    assert (done.objects, done.dropped_artifacts) == (2 + 6, 0)
    assert rows(target)["artifacts"] == 3
    assert sorted(target.storage.list_keys()) == sorted(source.storage.list_keys())


def tables(ctx: Context) -> int:
    path = Path(ctx.settings.database_url.split("///", 1)[1])
    if not path.exists():
        return 0
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]


def test_a_changed_byte_is_found_and_nothing_is_written(source, tmp_path):
    service.backup(source, FolderArchive(tmp_path / "b"))
    logo = tmp_path / "b" / "objects" / LOGO
    logo.write_bytes(b"\x89PNG faKe")  # same size, other bytes
    target = target_context(tmp_path)
    with pytest.raises(BackupError) as refused:
        service.restore(target, FolderArchive(tmp_path / "b"))
    assert str(refused.value) == (
        f"the backup at {tmp_path / 'b'} does not match its manifest, nothing was restored: "
        f"objects/{LOGO}: SHA-256 differs from the manifest's"
    )
    assert tables(target) == 0 and list(target.storage.list_keys()) == []
    logo.write_bytes(b"short")
    (tmp_path / "b" / "database.sqlite3").unlink()
    with pytest.raises(BackupError, match=r"database\.sqlite3: missing; objects/.*: 5 bytes, the "):
        service.restore(target, FolderArchive(tmp_path / "b"))
    assert tables(target) == 0


def test_a_manifest_is_checked_before_anything_else(source, tmp_path):
    service.backup(source, FolderArchive(tmp_path / "b"))
    target = target_context(tmp_path)
    path = tmp_path / "b" / "manifest.json"
    good = json.loads(path.read_text())

    def refused(change: dict | str) -> str:
        path.write_text(change if isinstance(change, str) else json.dumps(good | change))
        with pytest.raises(BackupError) as caught:
            service.restore(target, FolderArchive(tmp_path / "b"))
        assert tables(target) == 0
        return str(caught.value)

    assert "not valid JSON" in refused('{"format": "kindly-backup",')
    assert "not a Kindly backup manifest" in refused({"format": "other"})
    assert "format version 7" in refused({"version": 7})
    assert "revision '9999' is unknown to Kindly" in refused({"alembic_revision": "9999"})
    assert "holds a postgresql database" in refused(
        {"database": good["database"] | {"engine": "postgresql"}}
    )
    outside = dict(good["objects"][0], name="objects/../../../etc/passwd", key="../etc/passwd")
    assert "outside the backup" in refused({"objects": [outside]})
    path.unlink()
    with pytest.raises(BackupError, match=r"holds no manifest\.json: not a Kindly backup"):
        service.restore(target, FolderArchive(tmp_path / "b"))


def test_a_busy_target_is_refused_unless_forced(source, tmp_path):
    service.backup(source, FolderArchive(tmp_path / "b"))
    with pytest.raises(BackupError, match="is not empty: back up into a new folder"):
        service.backup(source, FolderArchive(tmp_path / "b"))
    # the source itself is a busy target: its database, then (emptied) its storage
    with pytest.raises(BackupError, match="the target database is not empty"):
        service.restore(source, FolderArchive(tmp_path / "b"))
    target = target_context(tmp_path)
    target.storage.ensure()
    target.storage.put("stray/object.bin", b"x", "application/octet-stream")
    with pytest.raises(BackupError, match="the target storage is not empty"):
        service.restore(target, FolderArchive(tmp_path / "b"))
    assert tables(target) == 0
    # --force: the source's database is replaced by the backup's
    with source.db.session() as session:
        session.scalar(select(Debtor).where(Debtor.reference == "A-3")).last_name = "Changed"
    done = service.restore(source, FolderArchive(tmp_path / "b"), force=True)
    assert done.objects == 2
    with source.db.session() as session:
        names = set(session.scalars(select(Debtor.last_name)))
    assert "Changed" not in names and "D'Angelo" in names


def test_another_secret_key_is_a_warning(source, tmp_path):
    service.backup(source, FolderArchive(tmp_path / "b"))
    target = target_context(tmp_path, KINDLY_SECRET_KEY="another-secret-key-9876543210")
    done = service.restore(target, FolderArchive(tmp_path / "b"))
    assert done.warnings == [
        "the backup was taken with another KINDLY_SECRET_KEY: unsubscribe links already sent "
        "will not be recognised; set the old key to keep them working"
    ]


def test_locations(tmp_path):
    assert isinstance(open_archive(str(tmp_path / "x"), None), FolderArchive)
    assert open_archive(f"file://{tmp_path}/y", None).where == f"{tmp_path}/y"
    with pytest.raises(BackupError, match="needs a bucket"):
        open_archive("s3:///prefix", None)
    with pytest.raises(BackupError, match="unsupported backup location"):
        open_archive("ftp://host/x", None)


def fake_tool(folder: Path, name: str, version: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {version}'\n")
    path.chmod(0o755)


def test_a_client_older_than_the_server_is_refused_with_what_to_install(tmp_path):
    fake_tool(tmp_path / "bin", "pg_dump", "14.12 (Debian 14.12-1)")
    with pytest.raises(BackupError) as refused:
        database.find_tool("pg_dump", 16, tmp_path / "bin")
    assert str(refused.value) == (
        f"no pg_dump of PostgreSQL 16 or newer; found only {tmp_path}/bin/pg_dump (version 14): "
        "install the matching client (e.g. apt-get install postgresql-client-16) or name its "
        "folder with --pg-bin / KINDLY_PG_BIN"
    )
    fake_tool(tmp_path / "bin", "pg_dump", "16.4")
    assert database.find_tool("pg_dump", 16, tmp_path / "bin") == tmp_path / "bin" / "pg_dump"
    assert database.find_tool("pg_dump", 15, tmp_path / "bin") == tmp_path / "bin" / "pg_dump"


def test_a_failed_restore_reports_the_error_but_never_the_rows_it_quotes():
    stderr = (
        b'psql:<stdin>:912: ERROR:  duplicate key value violates unique constraint "debtor_token_key"\n'
        b"psql:<stdin>:912: DETAIL:  Key (token)=(lVwMIUAUh2uXDEJxl6kiKxQ9JX5g8Qfq) already exists.\n"
        b'CONTEXT:  COPY debtor, line 1: "1\tA-1\tAnna\tM\\u00fcller\tanna@example.org"\n'
    )
    line = database._error_lines(stderr)
    assert line == (
        'psql:<stdin>:912: ERROR:  duplicate key value violates unique constraint "debtor_token_key"'
    )


def test_only_postgresql_and_sqlite_are_backed_up():
    with pytest.raises(BackupError, match="backups support PostgreSQL and SQLite, not mysql"):
        database.engine_of("mysql+pymysql://u@h/db")
    assert database.engine_of("postgresql+psycopg://u@h/db") == "postgresql"
