"""Creditor profiles through `kindly creditor`, the API and the dashboard: bad input changes
nothing and says why; a scoped user or key reaches only the creditors of its campaigns."""

from __future__ import annotations

import io
import json
import re
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import select

from kindly.accounts.models import AuditLog
from kindly.accounts.scopes import Scope
from kindly.campaigns.models import Campaign
from kindly.cli import cli
from kindly.creditors.models import Creditor
from kindly.creditors.service import get_creditor, set_creditor
from tests.support.app import load_campaign
from tests.unit.test_admin import csrf_of, make_user, sign_in
from tests.unit.test_api import auth, conforms, key_for
from tests.unit.test_creditors import PROFILES
from tests.unit.test_scopes import key, signed_in
from web.api import common

NW = "Northern Water Ltd"
SW = "Stadtwerke Beispielstadt GmbH"
GOOD = {"address": "1 Quay Street\nMANCHESTER\nM3 3JE", "phone": "+44 161 496 0000",
        "email_address": "billing@northernwater.example", "iban": "GB29 NWBK 6016 1331 9268 19",
        "bic": "NWBKGB2L", "brand_color": "#1d3557"}  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_rate_windows():
    common.forget_rate_limits()
    yield
    common.forget_rate_limits()


@pytest.fixture
def env(ctx, monkeypatch):
    monkeypatch.setenv("KINDLY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("KINDLY_SECRET_KEY", ctx.settings.secret_key)
    return ctx


def stored(ctx, name: str) -> dict | None:
    with ctx.db.session() as session:
        row = get_creditor(session, name)
        return None if row is None else {"phone": row.phone, "iban": row.iban, "logo": row.logo}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 40), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


# ---- kindly creditor ---------------------------------------------------------------------


def test_the_command_line_sets_lists_and_shows_a_profile(env, tmp_path):
    runner = CliRunner()
    (tmp_path / "logo.png").write_bytes(png())
    done = runner.invoke(cli, ["creditor", "set", NW, "--legal-form", "Ltd",
                               "--address", "1 Quay Street; MANCHESTER; M3 3JE",
                               "--email", "billing@northernwater.example",
                               "--sender-name", "Northern Water", "--phone", "+44 161 496 0000",
                               "--iban", "GB29 NWBK 6016 1331 9268 19", "--bic", "NWBKGB2L",
                               "--colour", "#1D3557", "--logo", str(tmp_path / "logo.png")])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert f"created creditor {NW}" in done.output
    listed = runner.invoke(cli, ["creditor", "list"])
    assert listed.exit_code == 0 and NW in listed.output and "+44 161 496 0000" in listed.output
    shown = json.loads(runner.invoke(cli, ["creditor", "show", NW, "--json"]).output)
    assert shown["address"] == ["1 Quay Street", "MANCHESTER", "M3 3JE"]
    assert (shown["iban"], shown["bic"], shown["brand_color"]) == (
        "GB29NWBK60161331926819", "NWBKGB2L", "#1d3557")  # fmt: skip
    assert re.fullmatch(r"creditors/logo/[0-9a-f]{64}\.png", shown["logo"])
    assert env.storage.get(shown["logo"]).startswith(b"\x89PNG")
    # one option changes one field; the others keep their values
    assert runner.invoke(cli, ["creditor", "set", NW, "--phone", "+44 161 496 0999"]).exit_code == 0
    assert stored(env, NW)["phone"] == "+44 161 496 0999"
    assert stored(env, NW)["iban"] == "GB29NWBK60161331926819"
    with env.db.session() as session:
        assert session.scalars(select(AuditLog.action)).all() == ["creditor.set", "creditor.set"]


def test_a_bad_iban_is_named_and_nothing_changes(env, tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["creditor", "set", NW, "--phone", "+44 161 496 0000"]).exit_code == 0
    (tmp_path / "notes.txt").write_text("not a picture")
    refused = runner.invoke(cli, ["creditor", "set", NW, "--iban", "GB29 NWBK 6016 1331 9268 18",
                                  "--phone", "+44 161 496 0999", "--bic", "NWB"])  # fmt: skip
    assert refused.exit_code == 1
    assert "not saved" in refused.output and "fails its checksum" in refused.output
    assert "BIC 'NWB'" in refused.output
    assert stored(env, NW) == {"phone": "+44 161 496 0000", "iban": "", "logo": ""}
    picture = runner.invoke(cli, ["creditor", "set", NW, "--logo", str(tmp_path / "notes.txt")])
    assert picture.exit_code == 1 and "not a PNG or JPEG picture" in picture.output
    missing = runner.invoke(cli, ["creditor", "show", "Nobody plc"])
    assert missing.exit_code == 1 and "no creditor 'Nobody plc'" in missing.output
    with env.db.session() as session:
        assert session.scalars(select(AuditLog.action)).all() == ["creditor.set"]


# ---- the API -----------------------------------------------------------------------------


def test_the_api_sets_and_reads_a_profile(client, ctx):
    load_campaign(ctx)
    secret = key_for(ctx, "manager")
    url = f"/api/v1/creditors/{quote(NW)}"
    assert client.get(url, headers=auth(secret)).status_code == 404
    created = client.put(url, headers=auth(secret), json=GOOD)
    assert created.status_code == 201, created.get_json()
    conforms(created, "/creditors/{name}", "put")
    read = client.get(url, headers=auth(secret))
    conforms(read, "/creditors/{name}", "get")
    assert read.get_json()["iban"] == "GB29NWBK60161331926819"
    assert read.get_json()["address"] == ["1 Quay Street", "MANCHESTER", "M3 3JE"]
    listed = client.get("/api/v1/creditors", headers=auth(secret))
    conforms(listed, "/creditors", "get")
    assert [c["name"] for c in listed.get_json()["creditors"]] == [NW]

    refused = client.put(url, headers=auth(secret),
                         json={"iban": "GB00 0000", "phone": "+44 1", "fax": "x"})  # fmt: skip
    assert refused.status_code == 422
    conforms(refused, "/creditors/{name}", "put")
    problems = " | ".join(refused.get_json()["problems"])
    assert "IBAN 'GB000000'" in problems and "phone '+44 1'" in problems
    assert "unknown field 'fax'" in problems
    assert client.get(url, headers=auth(secret)).get_json()["phone"] == GOOD["phone"]
    assert client.put(url, headers=auth(secret), data="x").status_code == 400

    viewer = key_for(ctx, "viewer")
    assert client.get(url, headers=auth(viewer)).status_code == 200
    assert client.put(url, headers=auth(viewer), json={"phone": ""}).status_code == 403


def test_a_scoped_key_reaches_only_its_campaigns_creditors(client, ctx):
    load_campaign(ctx, "alpha")  # the sample portfolio names Stadtwerke, Northern Water, Acqua
    with ctx.db.session() as session:
        other = Campaign(slug="beta", name="Beta", default_locale="de-DE", creditor="Beta Gas AG")
        session.add(other)
        session.scalar(select(Campaign).where(Campaign.slug == "alpha")).creditor = SW
        set_creditor(session, "Beta Gas AG", {"phone": "+49 40 1234567"})
    only_alpha = key(ctx, "a@example.org", "manager", Scope(campaigns=frozenset({"alpha"})))
    url = f"/api/v1/creditors/{quote('Beta Gas AG')}"
    assert client.get(url, headers=only_alpha).status_code == 404
    assert client.put(url, headers=only_alpha, json={"phone": ""}).status_code == 404
    names = [c["name"] for c in client.get("/api/v1/creditors", headers=only_alpha).get_json()[
        "creditors"]]  # fmt: skip
    assert names == []  # Beta Gas AG exists but is not theirs; theirs have no profile yet
    mine = f"/api/v1/creditors/{quote(NW)}"
    assert client.put(mine, headers=only_alpha, json=GOOD).status_code == 201
    # a creditor a campaign out of reach names as well is shown but not changed
    with ctx.db.session() as session:
        session.scalar(select(Campaign).where(Campaign.slug == "beta")).creditor = NW
    assert client.get(mine, headers=only_alpha).status_code == 200
    assert client.put(mine, headers=only_alpha, json={"phone": ""}).status_code == 403
    assert stored(ctx, "Beta Gas AG")["phone"] == "+49 40 1234567"
    assert stored(ctx, NW)["phone"] == GOOD["phone"]


# ---- the dashboard -----------------------------------------------------------------------


def test_the_dashboard_lists_each_creditor_with_what_it_lacks_and_edits_it(client, ctx):
    load_campaign(ctx)
    with ctx.db.session() as session:
        set_creditor(session, SW, PROFILES[SW])
    make_user(ctx)
    assert sign_in(client).status_code == 303
    page = client.get("/admin/creditors").get_data(as_text=True)
    rows = dict(
        re.findall(r'<th scope="row">(.*?)</th>.*?<td class="missing">(.*?)</td>', page, re.S)
    )
    assert rows[SW] == "nothing"
    assert rows[NW] == (
        "creditor address; whom to contact: phone or email; IBAN for letters and bank transfers"
    )
    assert "Acqua Roma S.p.A." in rows

    form = f"/admin/creditors/edit?name={quote(NW)}"
    token = csrf_of(client, form)
    data = {"csrf_token": token, "name": NW, **GOOD, "iban": "GB29 NWBK 6016 1331 9268 18"}
    refused = client.post("/admin/creditors/edit", data=data)
    assert refused.status_code == 422
    assert "fails its checksum" in refused.get_data(as_text=True)
    assert stored(ctx, NW) is None
    # without the CSRF token nothing is saved either
    forged = {key: value for key, value in data.items() if key != "csrf_token"}
    assert client.post("/admin/creditors/edit", data={**forged, **GOOD}).status_code == 400
    assert stored(ctx, NW) is None
    saved = client.post("/admin/creditors/edit", data={**data, "iban": GOOD["iban"]})
    assert saved.status_code == 303
    assert stored(ctx, NW)["iban"] == "GB29NWBK60161331926819"
    page = client.get("/admin/creditors").get_data(as_text=True)
    rows = dict(
        re.findall(r'<th scope="row">(.*?)</th>.*?<td class="missing">(.*?)</td>', page, re.S)
    )
    assert rows[NW] == "nothing"


def test_a_viewer_reads_the_list_but_gets_no_form(app, ctx):
    load_campaign(ctx)
    viewer = signed_in(app, ctx, "v@example.org", "viewer", None)
    assert viewer.get("/admin/creditors").status_code == 200
    assert viewer.get(f"/admin/creditors/edit?name={quote(NW)}").status_code == 403


def test_a_scoped_manager_sees_only_the_creditors_of_their_campaigns(app, ctx):
    load_campaign(ctx, "alpha")
    with ctx.db.session() as session:
        session.add(Campaign(slug="beta", name="Beta", default_locale="de-DE",
                             creditor="Beta Gas AG"))  # fmt: skip
    manager = signed_in(app, ctx, "m@example.org", "manager", Scope(campaigns=frozenset({"alpha"})))
    page = manager.get("/admin/creditors").get_data(as_text=True)
    assert NW in page and "Beta Gas AG" not in page
    assert manager.get(f"/admin/creditors/edit?name={quote('Beta Gas AG')}").status_code == 404
    token = csrf_of(manager, f"/admin/creditors/edit?name={quote(NW)}")
    posted = manager.post("/admin/creditors/edit",
                          data={"csrf_token": token, "name": "Beta Gas AG", **GOOD})  # fmt: skip
    assert posted.status_code == 404
    with ctx.db.session() as session:
        assert session.scalars(select(Creditor.name)).all() == []
