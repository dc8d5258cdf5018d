"""The restore drill: a campaign rendered, sent, paid (online and by bank transfer) and
visited on PostgreSQL and S3 is backed up with `kindly backup`, restored with `kindly restore`
into an empty new database and an empty new bucket, and reads the same: ledger, tokens,
links, funnel. A tampered backup is refused and writes nothing; a failing restore leaves the
database as it was."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import psycopg
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from kindly import context as context_module
from kindly.campaigns.models import Campaign, Debtor
from kindly.cases.read import case_of
from kindly.claims import balance as claims_balance
from kindly.context import Context
from kindly.ledger import export
from kindly.messaging import delivery
from kindly.payments import ledger
from kindly.reconciliation.importer import import_statement
from kindly.reporting.metrics import campaign_stats
from kindly.rules.store import decide, save_rules
from kindly.rules.validate import parse_rules
from kindly.tracking.models import Event
from tests.support import bankfiles as bf
from tests.support import services
from tests.support.app import front_client, installed, launched, load_campaign, make_settings
from workers.queues import Dispatcher
from workers.render import run_render
from workers.send import enqueue_sends

pytestmark = pytest.mark.slow
AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
SECRET = "drill-secret-key-0123456789abcdef"


class Inbox:
    """An SMTP server's handler that accepts every message."""

    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 Message accepted"


@pytest.fixture
def smtp_url():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=services.free_port())
    controller.start()
    yield f"smtp+insecure://127.0.0.1:{controller.port}"
    controller.stop()


@pytest.fixture
def fresh_database(postgres_server):
    """Make empty databases beside the session's one (never migrated); dropped afterwards."""
    admin = os.environ.get("KINDLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    made: list[str] = []

    def make() -> str:
        name = f"kindly_restore_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return postgres_server.rsplit("/", 1)[0] + f"/{name}"

    yield make
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def environment(tmp_path: Path, name: str, database_url: str, bucket: str, endpoint: str):
    return {
        "KINDLY_DATA_DIR": str(tmp_path / name),
        "KINDLY_SECRET_KEY": SECRET,
        "KINDLY_DATABASE_URL": database_url,
        "KINDLY_STORAGE_URL": f"s3://{bucket}/{name}",
        "KINDLY_S3_ENDPOINT_URL": endpoint,
    }


def kindly(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The `kindly` command as an operator runs it, with only these KINDLY_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KINDLY_")} | env
    return subprocess.run([sys.executable, "-m", "kindly", *args], env=clean, capture_output=True,
                          text=True, timeout=300, cwd=env["KINDLY_DATA_DIR"] + "-cwd")  # fmt: skip


def tables(database_url: str) -> int:
    plain = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        return conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()[0]


def bucket_keys(endpoint: str, bucket: str) -> dict[str, bytes]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    try:
        listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    except s3.exceptions.NoSuchBucket:
        return {}
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def build_campaign(ctx: Context, smtp_url: str) -> None:
    """Render, send, pay online and by transfer, and visit: every number the drill compares."""
    load_campaign(ctx)
    launched(ctx)
    assert not run_render(ctx, "winter", ["site", "letter"], quiet=True)
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        rules = parse_rules({"defaults": {"tone": "firm", "channels": ["email"]}})
        decide(session, campaign, save_rules(session, campaign, rules), AT.date())
        planned = delivery.plan(session, campaign, AT)
    enqueue_sends(Dispatcher(ctx.settings), planned, AT)
    client = front_client(ctx, TESTING=True)
    with ctx.db.session() as session:
        anna, siobhan = (session.scalar(select(Debtor).where(Debtor.reference == ref))
                         for ref in ("A-1", "A-2"))  # fmt: skip
        tokens, rf = (anna.token, siobhan.token), anna.payment_reference
    for token in tokens:  # an open, a click, a page view
        assert client.get(f"/o/{token}.gif").status_code == 200
        assert client.get(f"/c/{token}?to=site&c=email").status_code == 302
        assert client.get(f"/s/{token}").status_code == 200
    # Siobhán pays online (the sandbox), Anna part of hers by bank transfer (camt.053)
    form = client.get(f"/s/{tokens[1]}/pay").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    checkout = client.post(f"/s/{tokens[1]}/pay", data={"csrf_token": csrf}).headers["Location"]
    client.post(urlsplit(checkout).path, data={"csrf_token": csrf, "outcome": "succeeded"})
    statement = bf.camt053([bf.Payment("Anna Müller", bf.ACCOUNT, "234.56", reference=rf)])
    with ctx.db.session() as session:
        assert import_statement(session, ctx.storage, statement, "dec.xml").matched == 1


def facts(ctx: Context) -> dict:
    """What a restore must bring back unchanged: per debtor its token, payment reference,
    ledger and case; per campaign the funnel, money and the ledger export; every event."""
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == "winter"))
        debtors = {
            d.reference: (d.id, d.token, d.payment_reference, ledger.paid_minor(session, d),
                          claims_balance.balance_minor(session, d), claims_balance.credit_minor(session, d),
                          case_of(session, d).state)
            for d in session.scalars(select(Debtor).order_by(Debtor.reference))
        }  # fmt: skip
        stats = campaign_stats(session, campaign)
        stats.pop("artifacts")  # rendered files are left out of the backup: compared apart
        rows = [row.cells() for row in export.rows(session, campaign)]
        events = session.execute(
            select(Event.type, Event.channel, func.count()).group_by(Event.type, Event.channel)
        ).all()
    return {"debtors": debtors, "stats": stats, "ledger": rows, "events": sorted(events)}


def test_a_backup_restores_into_an_empty_database_and_bucket(
    tmp_path, postgres_url, fresh_database, s3_endpoint, smtp_url
):
    source_env = environment(tmp_path, "source", postgres_url, f"src-{uuid.uuid4().hex[:8]}",
                             s3_endpoint) | {"KINDLY_SMTP_URL": smtp_url}  # fmt: skip
    target_url, target_bucket = fresh_database(), f"dst-{uuid.uuid4().hex[:8]}"
    target_env = environment(tmp_path, "target", target_url, target_bucket, s3_endpoint)
    for env in (source_env, target_env):
        Path(env["KINDLY_DATA_DIR"] + "-cwd").mkdir()
    with installed(make_settings(tmp_path / "source", **source_env)) as source:
        build_campaign(source, smtp_url)
        before = facts(source)
        stored = bucket_keys(s3_endpoint, source_env["KINDLY_STORAGE_URL"][5:].split("/")[0])
        statements = {k: v for k, v in stored.items() if "/bank/statements/" in k}
    # the drill's numbers are not zeros: a restore that lost them would be noticed
    funnel = before["stats"]["funnel_raw"]  # the test client's hits may not count as people's
    assert (funnel["sent"], funnel["opened"], funnel["clicked"], funnel["viewed"]) == (2, 2, 2, 2)
    assert before["stats"]["funnel"]["paid"] == 2
    assert before["stats"]["collected"] == {"EUR": "234.56", "GBP": "89.90"}
    assert len(statements) == 1

    backup_dir = tmp_path / "backups" / "tonight"
    taken = kindly(source_env, "backup", str(backup_dir), "--json")
    assert taken.returncode == 0, taken.stderr
    outcome = json.loads(taken.stdout)
    assert (outcome["database"], outcome["objects"]) == ("postgresql", 1)
    assert outcome["rendered_skipped"] == 3 * 2 + 3  # site and letter, and each page's link record
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["alembic_revision"] and manifest["database"]["pg_dump"] >= 15
    assert [o["key"] for o in manifest["objects"]] == [k.split("/", 1)[1] for k in statements]

    restored = kindly(target_env, "restore", str(backup_dir))
    assert restored.returncode == 0, restored.stderr
    assert "kindly render winter" in restored.stdout

    target = Context(make_settings(tmp_path / "target", **target_env))
    try:
        assert facts(target) == before
        # the statement as received, byte for byte, in the new bucket
        copied = bucket_keys(s3_endpoint, target_bucket)
        assert list(copied.values()) == list(statements.values())
        # the links: each token opens its own debtor's page, built live until re-rendered
        client = front_client(target, TESTING=True)
        page = client.get(f"/s/{before['debtors']['A-1'][1]}")
        assert page.status_code == 200 and "Müller" in page.get_data(as_text=True)
        page = client.get(f"/s/{before['debtors']['A-2'][1]}")
        assert page.status_code == 200 and "Brien" in page.get_data(as_text=True)
        # `kindly render` makes the rendered files again, and the letter is served
        context_module.use(target)
        assert not run_render(target, "winter", ["site", "letter"], quiet=True)
        letter = client.get(f"/s/{before['debtors']['A-1'][1]}/letter.pdf")
        assert letter.status_code == 302
        with target.db.session() as session:
            stats = campaign_stats(session, session.scalar(select(Campaign)))
        assert stats["artifacts"] == {"letter": 3, "site": 3}
        after = facts(target)  # the drill's own visits are new events; the money is not
        assert (after["debtors"], after["ledger"]) == (before["debtors"], before["ledger"])
    finally:
        context_module.use(None)
        target.close()

    # a second restore into the now busy target is refused, unless --force replaces it all
    again = kindly(target_env, "restore", str(backup_dir))
    assert again.returncode == 1
    assert "the target database is not empty" in again.stderr
    forced = kindly(target_env, "restore", str(backup_dir), "--force")
    assert forced.returncode == 0, forced.stderr
    target = Context(make_settings(tmp_path / "target", **target_env))
    try:
        assert facts(target) == before
    finally:
        target.close()
    # and `kindly stats` says the same on both (but for the files not rendered again yet)
    numbers = [json.loads(kindly(env, "stats", "winter", "--json").stdout)
               for env in (source_env, target_env)]  # fmt: skip
    assert (numbers[0].pop("artifacts"), numbers[1].pop("artifacts")) == (
        {"letter": 3, "site": 3}, {}
    )  # fmt: skip
    assert numbers[0] == numbers[1] and numbers[0]["funnel"]["paid"] == 2


def test_a_tampered_backup_is_refused_and_nothing_is_written(
    tmp_path, postgres_url, fresh_database, s3_endpoint, smtp_url
):
    source_env = environment(tmp_path, "source", postgres_url, f"src-{uuid.uuid4().hex[:8]}",
                             s3_endpoint)  # fmt: skip
    Path(source_env["KINDLY_DATA_DIR"] + "-cwd").mkdir()
    with installed(make_settings(tmp_path / "source", **source_env)) as source:
        load_campaign(source)
        with source.db.session() as session:
            rf = session.scalar(select(Debtor.payment_reference).where(Debtor.reference == "A-1"))
            statement = bf.camt053([bf.Payment("Anna Müller", bf.ACCOUNT, "10.00", reference=rf)])
            import_statement(session, source.storage, statement, "dec.xml")
    good = tmp_path / "good"
    assert kindly(source_env, "backup", str(good)).returncode == 0

    def target() -> tuple[dict[str, str], str]:
        env = environment(tmp_path, f"t{uuid.uuid4().hex[:6]}", fresh_database(),
                          f"dst-{uuid.uuid4().hex[:8]}", s3_endpoint)  # fmt: skip
        Path(env["KINDLY_DATA_DIR"] + "-cwd").mkdir()
        return env, env["KINDLY_STORAGE_URL"][5:].split("/")[0]

    # one changed byte in the statement, then one in the dump
    statement_copy = tmp_path / "statement-changed"
    shutil.copytree(good, statement_copy)
    (stored,) = (statement_copy / "objects" / "bank" / "statements").iterdir()
    stored.write_bytes(stored.read_bytes().replace(b"10.00", b"99.00"))
    dump_copy = tmp_path / "dump-changed"
    shutil.copytree(good, dump_copy)
    dump = dump_copy / "database.pgdump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    for broken, named in ((statement_copy, "objects/bank/statements/"),
                          (dump_copy, "database.pgdump")):  # fmt: skip
        env, bucket = target()
        refused = kindly(env, "restore", str(broken))
        assert refused.returncode == 1
        assert "does not match its manifest, nothing was restored" in refused.stderr
        assert named in refused.stderr and "SHA-256 differs" in refused.stderr
        assert tables(env["KINDLY_DATABASE_URL"]) == 0
        assert bucket_keys(s3_endpoint, bucket) == {}

    # a manifest edited to match a missing file, and no manifest at all
    missing = tmp_path / "missing"
    shutil.copytree(good, missing)
    shutil.rmtree(missing / "objects")
    env, bucket = target()
    refused = kindly(env, "restore", str(missing))
    assert refused.returncode == 1 and "objects/bank/statements/" in refused.stderr
    assert "missing" in refused.stderr
    (missing / "manifest.json").unlink()
    refused = kindly(env, "restore", str(missing))
    assert "holds no manifest.json" in refused.stderr
    assert tables(env["KINDLY_DATABASE_URL"]) == 0


def test_a_restore_that_fails_half_way_leaves_the_database_as_it_was(
    tmp_path, postgres_url, fresh_database, s3_endpoint
):
    source_env = environment(tmp_path, "source", postgres_url, f"src-{uuid.uuid4().hex[:8]}",
                             s3_endpoint)  # fmt: skip
    Path(source_env["KINDLY_DATA_DIR"] + "-cwd").mkdir()
    with installed(make_settings(tmp_path / "source", **source_env)):
        pass
    backup_dir = tmp_path / "b"
    assert kindly(source_env, "backup", str(backup_dir)).returncode == 0
    env = environment(tmp_path, "target", fresh_database(), f"dst-{uuid.uuid4().hex[:8]}",
                      s3_endpoint)  # fmt: skip
    Path(env["KINDLY_DATA_DIR"] + "-cwd").mkdir()
    # A sequence is no table, so the target counts as empty; its name is taken by the last
    # table the dump creates: the restore fails after every other table was made.
    plain = env["KINDLY_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE webhook_subscription")
    failed = kindly(env, "restore", str(backup_dir))
    assert failed.returncode == 1
    assert "nothing was restored" in failed.stderr
    assert "webhook_subscription" in failed.stderr
    assert tables(env["KINDLY_DATABASE_URL"]) == 0


def test_a_backup_in_a_bucket_restores_and_a_changed_object_there_is_refused(
    tmp_path, postgres_url, fresh_database, s3_endpoint
):
    source_env = environment(tmp_path, "source", postgres_url, f"src-{uuid.uuid4().hex[:8]}",
                             s3_endpoint)  # fmt: skip
    Path(source_env["KINDLY_DATA_DIR"] + "-cwd").mkdir()
    with installed(make_settings(tmp_path / "source", **source_env)) as source:
        load_campaign(source)
        with source.db.session() as session:
            rf = session.scalar(select(Debtor.payment_reference).where(Debtor.reference == "A-1"))
            statement = bf.camt053([bf.Payment("Anna Müller", bf.ACCOUNT, "10.00", reference=rf)])
            import_statement(session, source.storage, statement, "dec.xml")
        before = facts(source)
    backups = f"backups-{uuid.uuid4().hex[:8]}"
    location = f"s3://{backups}/kindly/2026-12-01"
    assert kindly(source_env, "backup", location).returncode == 0
    stored = bucket_keys(s3_endpoint, backups)
    assert "kindly/2026-12-01/manifest.json" in stored
    assert "kindly/2026-12-01/database.pgdump" in stored
    again = kindly(source_env, "backup", location)
    assert again.returncode == 1 and f"{location} is not empty" in again.stderr

    env = environment(tmp_path, "target", fresh_database(), f"dst-{uuid.uuid4().hex[:8]}",
                      s3_endpoint)  # fmt: skip
    Path(env["KINDLY_DATA_DIR"] + "-cwd").mkdir()
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    (key,) = [k for k in stored if "/objects/bank/statements/" in k]
    s3.put_object(Bucket=backups, Key=key, Body=stored[key].replace(b"10.00", b"90.00"))
    refused = kindly(env, "restore", location)
    assert refused.returncode == 1 and "does not match its manifest" in refused.stderr
    assert tables(env["KINDLY_DATABASE_URL"]) == 0
    s3.put_object(Bucket=backups, Key=key, Body=stored[key])
    restored = kindly(env, "restore", location)
    assert restored.returncode == 0, restored.stderr
    target = Context(make_settings(tmp_path / "target", **env))
    try:
        assert facts(target) == before
    finally:
        target.close()
