"""One debtor, one set of files: references that differ only in `/`, a space, `_` or a
non-Latin letter never share a stored page, letter or link, and the dashboard opens them all."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kindly.campaigns.models import Campaign, Debtor
from kindly.context import Context
from kindly.infra.storage import artifact_key, legacy_artifact_key
from kindly.site import artifacts, links
from kindly.site.models import Artifact
from tests.support.app import front_client, launched, load_campaign, make_settings
from tests.unit.test_admin import make_user, sign_in
from tests.unit.test_api import auth, key_for
from workers.jobs import render_debtor

HEADER = "reference,first_name,last_name,locale,currency,amount_due,due_date,street,postal_code,city,country\n"
PEOPLE = {
    # reference: (first name, last name, amount); the first four shared one folder before 0980
    "A/1": ("Anna", "Alpha", "100.00"),
    "A 1": ("Bernd", "Beta", "999.99"),
    "A_1": ("Carla", "Gamma", "55.55"),
    "山田-1": ("Taro", "山田", "12.34"),
    "川田-1": ("Jiro", "川田", "777.77"),
    "2024/00123": ("Dora", "Delta", "42.00"),
}
PORTFOLIO = HEADER + "".join(
    f"{ref},{first},{last},de-DE,EUR,{amount},2026-12-15,Hauptstraße {i},1011{i},Berlin,DE\n"
    for i, (ref, (first, last, amount)) in enumerate(PEOPLE.items())
)


def rendered(ctx) -> dict[str, Debtor]:
    """The portfolio imported into campaign `keys` and rendered (page and letter), in order."""
    load_campaign(ctx, "keys", PORTFOLIO)
    with ctx.db.session() as session:
        debtors = {d.reference: d for d in session.scalars(select(Debtor).order_by(Debtor.id))}
        session.expunge_all()
    for debtor in debtors.values():
        render_debtor(debtor.id, ["site", "letter"])
    return debtors


def pdf_text(data: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-", "-"], input=data, check=True, capture_output=True
    ).stdout.decode()


def test_each_reference_sees_only_its_own_page_letter_and_token(client, ctx):
    debtors = rendered(ctx)
    for reference, (_, last, amount) in PEOPLE.items():
        token = debtors[reference].token
        page = client.get(f"/s/{token}")
        html = page.get_data(as_text=True)
        assert page.status_code == 200, reference
        assert last in html and amount.replace(".", ",") in html, reference
        others = [d for ref, d in debtors.items() if ref != reference]
        for other in others:
            assert PEOPLE[other.reference][1] not in html, (reference, other.reference)
            assert other.token not in html, (reference, other.reference)
        letter = client.get(f"/s/{token}/letter.pdf")
        assert letter.status_code == 200, reference
        text = pdf_text(letter.data)
        assert amount.replace(".", ",") in text, reference
        for other in others:
            assert PEOPLE[other.reference][2].replace(".", ",") not in text, reference
    with ctx.db.session() as session:
        keys = session.scalars(select(Artifact.key)).all()
    assert len(keys) == len(set(keys)) == 2 * len(PEOPLE)


def test_erasing_one_debtor_leaves_the_others_files(client, ctx):
    debtors = rendered(ctx)
    admin = key_for(ctx, "admin")
    erased = client.post("/api/v1/campaigns/keys/debtors/A%201/erase", headers=auth(admin))
    assert erased.status_code == 200
    with ctx.db.session() as session:
        anna = session.get(Debtor, debtors["A/1"].id)
        kept = {a.kind: a.key for a in anna.artifacts}
    assert set(kept) == {"site", "letter"}
    assert all(ctx.storage.exists(key) for key in kept.values())
    letter = client.get(f"/s/{debtors['A/1'].token}/letter.pdf")
    assert letter.status_code == 200 and "Alpha" in pdf_text(letter.data)
    assert "Beta" not in pdf_text(letter.data)
    page = client.get(f"/s/{debtors['A/1'].token}").get_data(as_text=True)
    assert "Alpha" in page and "Beta" not in page
    assert client.get(f"/s/{debtors['A 1'].token}").status_code == 404
    for kind in ("site", "letter"):  # Bernd's own folder is gone
        assert not ctx.storage.exists(artifact_key("keys", debtors["A 1"].id, kind))


def case_link(manager, reference: str) -> str:
    """The case page's address as the dashboard's debtor list links it."""
    listing = manager.get("/admin/campaigns/keys/debtors").get_data(as_text=True)
    row = re.search(
        r'<tr data-reference="' + re.escape(reference) + r'"><th scope="row"><a href="([^"]+)"',
        listing,
    )
    assert row, reference
    return row.group(1)


@pytest.mark.parametrize("reference", ["2024/00123", "山田-1", "A/1", "A 1", "A_1"])
def test_the_dashboard_opens_every_reference(client, ctx, reference):
    rendered(ctx)
    make_user(ctx)
    assert sign_in(client).status_code == 303
    link = case_link(client, reference)
    case = client.get(link)
    html = case.get_data(as_text=True)
    assert case.status_code == 200
    assert f"({reference})" in html and PEOPLE[reference][1] in html
    for other in PEOPLE:
        assert other == reference or f"({other})" not in html
    preview = client.get(f"{link}/preview")
    assert preview.status_code == 200 and PEOPLE[reference][1] in preview.get_data(as_text=True)
    letter = client.get(f"{link}/preview/letter.pdf")
    assert letter.status_code == 200
    assert PEOPLE[reference][2].replace(".", ",") in pdf_text(letter.data)


def test_a_plain_reference_keeps_its_dashboard_address(client, ctx):
    load_campaign(ctx)
    make_user(ctx)
    assert sign_in(client).status_code == 303
    assert client.get("/admin/campaigns/winter/debtors/A-1").status_code == 200
    assert client.get("/admin/campaigns/winter/debtors/A~2F1").status_code == 404


def test_a_japanese_reference_works_end_to_end(client, ctx, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from kindly.cli import cli

    debtors = rendered(ctx)
    yamada = debtors["山田-1"]
    page = client.get(f"/s/{yamada.token}").get_data(as_text=True)
    assert "山田" in page and "12,34" in page and "川田" not in page
    letter = client.get(f"/s/{yamada.token}/letter.pdf")
    assert letter.status_code == 200 and "12,34" in pdf_text(letter.data)
    out = tmp_path / "export.csv"
    monkeypatch.setenv("KINDLY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("KINDLY_SECRET_KEY", "test-secret-key-0123456789")
    result = CliRunner().invoke(cli, ["export", "keys", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = {line.split(",")[0]: line.split(",") for line in out.read_text("utf-8").splitlines()}
    assert rows["山田-1"][3] == artifact_key("keys", yamada.id, "letter")
    assert rows["川田-1"][3] == artifact_key("keys", debtors["川田-1"].id, "letter")


def test_artifact_keys_are_unique_in_the_database(ctx):
    load_campaign(ctx)
    with pytest.raises(IntegrityError), ctx.db.session() as session:
        a1, a2 = session.scalars(select(Debtor).order_by(Debtor.id).limit(2))
        for debtor in (a1, a2):
            session.add(Artifact(debtor_id=debtor.id, kind="site", key="campaigns/x/1/site.html",
                                 sha256="0" * 64, size=1, content_type="text/html"))  # fmt: skip
        session.flush()


def test_an_artifact_under_an_old_key_is_moved_not_rendered_again(ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        debtor = session.scalar(select(Debtor).where(Debtor.reference == "A-1"))
        debtor_id = debtor.id
    render_debtor(debtor_id, ["site", "letter"])
    with ctx.db.session() as session:  # as Kindly before 0980 left it: reference-named keys
        for artifact in session.scalars(select(Artifact).where(Artifact.debtor_id == debtor_id)):
            old = legacy_artifact_key("winter", "A-1", artifact.kind)
            ctx.storage.put(old, ctx.storage.get(artifact.key), artifact.content_type)
            ctx.storage.delete(artifact.key)
            artifact.key = old
    assert "letter" not in render_debtor(debtor_id, ["site", "letter"])  # a move, no rendering
    with ctx.db.session() as session:
        moved = {a.kind: a.key for a in session.scalars(select(Artifact))}
    assert moved == {kind: artifact_key("winter", debtor_id, kind) for kind in moved}
    assert all(ctx.storage.exists(key) for key in moved.values())
    assert not ctx.storage.exists(legacy_artifact_key("winter", "A-1", "letter"))


def test_an_old_key_holding_someone_elses_bytes_is_rendered_anew(ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        ids = dict(session.execute(select(Debtor.reference, Debtor.id)).all())
    render_debtor(ids["A-1"], ["letter"])
    render_debtor(ids["A-2"], ["letter"])
    with ctx.db.session() as session:
        mine, theirs = (artifacts.find(session, session.get(Debtor, ids[r]), "letter")
                        for r in ("A-1", "A-2"))  # fmt: skip
        old = legacy_artifact_key("winter", "A-1", "letter")
        ctx.storage.put(old, ctx.storage.get(theirs.key), "application/pdf")  # overwritten
        mine.key = old
    assert "letter" in render_debtor(ids["A-1"], ["letter"])
    with ctx.db.session() as session:
        key = artifacts.find(session, session.get(Debtor, ids["A-1"]), "letter").key
    assert "Müller" in pdf_text(ctx.storage.get(key))


def test_during_an_outage_an_old_link_record_serves_no_ones_page(tmp_path):
    from tests.reliability.conftest import DOWN

    up = make_settings(Path(tmp_path / "var"))
    context = Context(up)
    context.db.migrate()
    context.storage.ensure()
    load_campaign(context, "keys", PORTFOLIO)
    with context.db.session() as session:
        anna, bernd = (session.scalar(select(Debtor).where(Debtor.reference == ref))
                       for ref in ("A/1", "A 1"))  # fmt: skip
        campaign_id = session.scalar(select(Campaign.id))
        shared = legacy_artifact_key("keys", "A/1", "site")
        context.storage.put(shared, b"<h1>Herr Beta</h1>", "text/html")
        for debtor in (anna, bernd):  # the records Kindly before 0980 stored for both
            record = {"debtor_id": debtor.id, "campaign_id": campaign_id, "variant": "A",
                      "check": "none", "expires_at": "2099-01-01T00:00:00+00:00",
                      "site_key": shared, "lang": "de"}  # fmt: skip
            context.storage.put(links.record_key(debtor.token), json.dumps(record).encode(),
                                 "application/json")  # fmt: skip
        token = anna.token
    down = front_client(Context(make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=DOWN)))
    answer = down.get(f"/s/{token}")
    assert answer.status_code == 503 and b"Beta" not in answer.data


def test_the_api_names_a_reference_with_a_slash(client, ctx):
    debtors = rendered(ctx)
    manager, admin = key_for(ctx, "manager"), key_for(ctx, "admin")
    exported = client.get("/api/v1/campaigns/keys/debtors/A~2F1/export", headers=auth(manager))
    assert exported.status_code == 200
    assert exported.get_json()["debtor"]["last_name"] == "Alpha"
    timeline = client.get("/api/v1/campaigns/keys/debtors/A~2F1/timeline", headers=auth(manager))
    assert timeline.status_code == 200
    erased = client.post("/api/v1/campaigns/keys/debtors/2024~2F00123/erase", headers=auth(admin))
    assert erased.status_code == 200 and erased.get_json()["reference"] == "2024/00123"
    assert client.get(f"/s/{debtors['2024/00123'].token}").status_code == 404
    assert client.get(f"/s/{debtors['A/1'].token}").status_code == 200


def test_a_reference_with_a_slash_is_sent_by_email_and_sms_to_the_outbox(ctx):
    from kindly.messaging.delivery import deliver
    from kindly.rules.store import decide, save_rules
    from kindly.rules.validate import parse_rules

    text = "reference,last_name,email,phone,currency,amount_due,due_date\n"
    text += "A/1,Alpha,anna@example.org,+4915112345678,EUR,100.00,2026-12-15\n"
    text += "A 1,Beta,bernd@example.org,+4915112345679,EUR,999.99,2026-12-15\n"
    load_campaign(ctx, "keys", text)
    launched(ctx, "keys")
    with ctx.db.session() as session:
        campaign = session.scalar(select(Campaign))
        rules = parse_rules({"defaults": {"channels": ["email", "sms"]}})
        decide(session, campaign, save_rules(session, campaign, rules), dt.date(2026, 11, 1))
        ids = dict(session.execute(select(Debtor.reference, Debtor.id)).all())
        for reference in ("A/1", "A 1"):
            for channel in ("email", "sms"):
                row = deliver(session, ctx.settings, ids[reference], 0, channel)
                assert row is not None and row.status != "failed", (reference, channel)
    outbox = ctx.settings.data_dir / "outbox"
    mails = sorted(outbox.glob("*.eml"))
    assert len(mails) == 2 and len(list(outbox.glob("*.sms.json"))) == 2
    bodies = [mail.read_bytes() for mail in mails]
    assert sum(b"Alpha" in body for body in bodies) == sum(b"Beta" in body for body in bodies) == 1
    for body in bodies:
        message_id = re.search(rb"Message-ID: (\S+)", body, re.IGNORECASE).group(1)
        assert b"A/1" not in message_id and b"A 1" not in message_id
