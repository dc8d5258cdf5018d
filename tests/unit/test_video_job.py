"""The video job as the worker runs it: artifacts stored, invariant segments shared in storage."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from kindly.campaigns.models import Debtor
from tests.support.app import load_campaign
from tests.unit.test_video import parse_vtt, top_level_boxes
from workers import jobs


@pytest.mark.slow
def test_the_video_job_stores_video_poster_captions_and_shares_segments(ctx, tmp_path):
    load_campaign(ctx)
    with ctx.db.session() as session:
        ids = {d.reference: d.id for d in session.query(Debtor)}
    done = jobs.render_debtor(ids["A-3"], ["video"])  # Giulia, it-IT
    assert set(done) == {"video", "poster", "captions"}
    root = ctx.settings.data_dir
    stored = sorted(p for p in root.rglob("*") if p.is_file())
    mp4 = next(p for p in stored if p.name == "video.mp4")
    boxes = dict(top_level_boxes(mp4))
    assert boxes["moov"] < boxes["mdat"]
    poster = next(p for p in stored if p.name == "poster.jpg")
    assert Image.open(io.BytesIO(poster.read_bytes())).size == (1280, 720)
    captions = next(p for p in stored if p.name == "captions.vtt").read_bytes()
    assert "Giulia" in parse_vtt(captions)[0][2]
    assert "Language: it" in captions.decode()
    shared = [p for p in stored if "video-segments" in p.parts and "cache" not in p.parts]
    assert {p.parent.name for p in shared} == {"scene", "audio"}

    # rendering again (a retry, or the next debtor of this campaign) reuses them untouched
    before = {p: p.stat().st_mtime_ns for p in shared}
    jobs.render_debtor(ids["A-3"], ["video"], force=True)
    after = [p for p in root.rglob("*") if p.is_file() and "video-segments" in p.parts]
    assert {p: p.stat().st_mtime_ns for p in after if "cache" not in p.parts} == before
