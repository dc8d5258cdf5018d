"""The letter logo is an uploaded picture kept in storage, never a path on the server: a
manager can neither embed the server's files in letters nor probe which of them exist."""

from __future__ import annotations

import io
import re

import pytest
from click.testing import CliRunner
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from kindly.campaigns import logo
from kindly.campaigns.models import Campaign, Debtor
from kindly.cli import cli
from kindly.site.models import Artifact
from tests.support.app import load_campaign
from tests.unit.test_admin import csrf_of, make_user, sign_in
from tests.unit.test_admin_settings import GOOD, URL, stored
from workers.jobs import render_debtor

RED = (230, 30, 30)


@pytest.fixture
def manager(client, ctx):
    make_user(ctx)
    assert sign_in(client).status_code == 303
    return client


def png(size=(300, 100), colour=RED, mode="RGB", fmt="PNG") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, fmt)
    return out.getvalue()


def save_settings(client, upload: tuple[bytes, str] | None = None, **changes):
    """The settings form as a browser sends it, with a file in the logo field if given."""
    data = {**GOOD, **changes, "csrf_token": csrf_of(client, URL)}
    if upload is not None:
        data["logo_file"] = (io.BytesIO(upload[0]), upload[1])
    return client.post(URL, data=data, content_type="multipart/form-data")


def letter_images(ctx, reference: str = "A-1") -> list[Image.Image]:
    """Render the debtor's letter as a worker does and return the pictures on its first page."""
    with ctx.db.session() as session:
        debtor_id = session.scalar(select(Debtor.id).where(Debtor.reference == reference))
    render_debtor(debtor_id, ["letter"], force=True)
    with ctx.db.session() as session:
        key = session.scalar(
            select(Artifact.key).where(Artifact.debtor_id == debtor_id, Artifact.kind == "letter")
        )
    page = PdfReader(io.BytesIO(ctx.storage.get(key))).pages[0]
    return [image.image for image in page.images]


def red_banners(images: list[Image.Image]) -> list[Image.Image]:
    """The 300×100 red pictures among them (the QR codes are black and white)."""
    return [i for i in images if i.size == (300, 100) and i.convert("RGB").getpixel((5, 5)) == RED]


def stored_logos(ctx) -> list[str]:
    folder = ctx.settings.data_dir / "storage" / "campaigns" / "winter" / "logo"
    return sorted(p.name for p in folder.glob("*")) if folder.exists() else []


def test_a_path_on_the_server_is_neither_saved_nor_probed(manager, ctx, tmp_path):
    load_campaign(ctx)
    on_server = tmp_path / "private.png"
    on_server.write_bytes(png())
    existing = save_settings(manager, logo=str(on_server))
    missing = save_settings(manager, logo=str(tmp_path / "nothing-here.png"))
    # the same answer whether the file exists or not, and nothing of it kept
    assert existing.status_code == missing.status_code == 303
    assert "logo" not in stored(ctx).settings
    assert red_banners(letter_images(ctx)) == []


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        ((b"<svg xmlns='http://www.w3.org/2000/svg'/>", "logo.png"), "not a PNG or JPEG picture"),
        ((b"%PDF-1.7 not a picture", "logo.jpg"), "not a PNG or JPEG picture"),
        ((png(fmt="GIF", mode="P", colour=1), "logo.gif"), "not a PNG or JPEG picture"),
        ((png(size=(6000, 6000), mode="1", colour=0), "huge.png"), "pixels is too large"),
        ((png()[:60], "cut.png"), "the picture is damaged"),
    ],
)
def test_a_file_that_is_not_a_png_or_jpeg_picture_is_refused(manager, ctx, upload, message):
    load_campaign(ctx)
    response = save_settings(manager, upload)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert "logo" not in (stored(ctx).settings or {}) and stored_logos(ctx) == []


def test_a_file_over_2_mib_is_refused(manager, ctx):
    load_campaign(ctx)
    big = png() + b"\0" * (2 * 1024 * 1024)  # a valid picture with 2 MiB of trailing bytes
    response = save_settings(manager, (big, "big.png"))
    assert response.status_code == 422
    assert "at most 2 MiB" in response.get_data(as_text=True)
    assert "logo" not in (stored(ctx).settings or {}) and stored_logos(ctx) == []
    with pytest.raises(logo.LogoError, match="at most 2 MiB"):
        logo.prepare(big)


def test_a_logo_between_1_and_2_mib_is_accepted(manager, ctx):
    load_campaign(ctx)
    heavy = png() + b"\0" * (1536 * 1024)  # over the 1 MiB limit of ordinary forms
    assert save_settings(manager, (heavy, "heavy.png")).status_code == 303
    assert len(stored_logos(ctx)) == 1


def test_an_uploaded_png_is_stored_under_the_campaign_and_printed_on_the_letter(manager, ctx):
    load_campaign(ctx)
    assert red_banners(letter_images(ctx, "A-2")) == []
    # the form makes Northern Water the campaign's creditor: its letters carry the
    # campaign's logo, a Stadtwerke debtor's does not (kindly.creditors.profile)
    saved = save_settings(manager, (png(), "brand.png"))
    assert saved.status_code == 303
    key = stored(ctx).settings["logo"]
    assert re.fullmatch(r"campaigns/winter/logo/[0-9a-f]{64}\.png", key)
    assert Image.open(io.BytesIO(ctx.storage.get(key))).format == "PNG"
    assert "A logo is stored" in manager.get(URL).get_data(as_text=True)
    assert len(red_banners(letter_images(ctx, "A-2"))) == 1
    assert red_banners(letter_images(ctx, "A-1")) == []
    # saving again without a file keeps it; "remove" takes it off the letters
    assert save_settings(manager).status_code == 303 and stored(ctx).settings["logo"] == key
    assert save_settings(manager, logo_remove="1").status_code == 303
    assert "logo" not in stored(ctx).settings
    assert red_banners(letter_images(ctx, "A-2")) == []


def test_a_path_saved_by_an_older_version_is_ignored_and_the_manager_told(manager, ctx, tmp_path):
    load_campaign(ctx)
    on_server = tmp_path / "old.png"
    on_server.write_bytes(png())
    with ctx.db.session() as session:
        session.scalar(select(Campaign)).settings = {"logo": str(on_server)}
    assert red_banners(letter_images(ctx)) == []  # the file is not read
    page = manager.get(URL).get_data(as_text=True)
    assert "no longer read" in page and "upload the picture here" in page
    assert save_settings(manager).status_code == 303
    assert "logo" not in stored(ctx).settings


def test_the_command_line_uploads_the_file_it_is_given(ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("KINDLY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("KINDLY_SECRET_KEY", "test-secret-key-0123456789")
    load_campaign(ctx)
    with ctx.db.session() as session:  # the campaign's settings describe its own creditor
        session.scalar(select(Campaign)).creditor = "Stadtwerke Beispielstadt GmbH"
    (tmp_path / "brand.png").write_bytes(png())
    (tmp_path / "notes.txt").write_text("not a picture")
    runner = CliRunner()
    refused = runner.invoke(cli, ["letters", "winter", "--set", f"logo={tmp_path / 'notes.txt'}"])
    assert refused.exit_code != 0 and "not a PNG or JPEG picture" in refused.output
    done = runner.invoke(cli, ["letters", "winter", "--set", f"logo={tmp_path / 'brand.png'}"])
    assert done.exit_code == 0, done.output
    key = stored(ctx).settings["logo"]
    assert key.startswith("campaigns/winter/logo/") and len(stored_logos(ctx)) == 1
    assert len(red_banners(letter_images(ctx))) == 1
