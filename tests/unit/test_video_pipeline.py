"""The segment-cached video as a viewer and a player get it: de, en and it debtors, awkward names.

What is checked is what someone would notice: stream facts from ffprobe, no jumps at the joins,
playback starting before the download ends, a QR code a phone can read, captions in the
debtor's language, and names from any script on screen.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from dataclasses import replace
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from renderer import video
from renderer.video import encode as video_encode
from renderer.video import scenes, segments, typeset
from renderer.video.cache import LocalSegmentCache, StoreSegmentCache
from renderer.video.template import TemplateError, load_template, video_ctas
from tests.support.views import english_view, make_view
from tests.unit.test_video import FFMPEG, frame_at, parse_vtt, top_level_boxes

FFPROBE = shutil.which("ffprobe")
ZBARIMG = shutil.which("zbarimg")
pytestmark = pytest.mark.skipif(not FFPROBE, reason="needs ffprobe")

MONO_8K = ("-ac", "1", "-ar", "8000")
AWKWARD_NAME = "Łukasz O'Neil: 100% \\ Ζωή Жанна"


def italian_view():
    """An Italian debtor with an apostrophe."""
    return make_view(
        locale="it-IT",
        lang="it",
        first_name="Giulia",
        last_name="D'Angelo",
        full_name="Giulia D'Angelo",
        amount="42,00\xa0€",
        due_date="10 gennaio 2027",
        creditor="Acqua Roma S.p.A.",
    )


def awkward_view():
    """Every character a filter graph or a shell would trip over, and three scripts."""
    return replace(english_view(), first_name=AWKWARD_NAME, full_name=AWKWARD_NAME)


VIEWS = {"de": make_view, "en": english_view, "it": italian_view, "awkward": awkward_view}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> LocalSegmentCache:
    return LocalSegmentCache(tmp_path_factory.mktemp("segments"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory, cache) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("videos")
    paths = {}
    for name, factory in VIEWS.items():
        paths[name] = out / f"{name}.mp4"
        video.render_video(factory(), paths[name], cache=cache)
    return paths


def ffprobe(path: Path, *args: str) -> dict:
    raw = subprocess.run(
        [FFPROBE, "-v", "error", *args, "-of", "json", str(path)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return json.loads(raw)


def packet_ticks(path: Path, stream: str) -> list[int]:
    """Presentation timestamps in the stream's own time base (exact integers)."""
    data = ffprobe(path, "-select_streams", stream, "-show_entries", "packet=pts")
    return sorted(int(p["pts"]) for p in data["packets"])


# --------------------------------------------------------------------------- stream facts


@pytest.mark.slow
@pytest.mark.parametrize("name", ["de", "en", "it"])
def test_h264_and_aac_720p_25fps_of_the_templates_length(videos, name):
    data = ffprobe(videos[name], "-show_streams", "-show_format")
    streams = {s["codec_type"]: s for s in data["streams"]}
    assert sorted(streams) == ["audio", "video"]
    v, a = streams["video"], streams["audio"]
    assert (v["codec_name"], v["width"], v["height"], v["pix_fmt"]) == (
        "h264",
        1280,
        720,
        "yuv420p",
    )
    assert Fraction(v["avg_frame_rate"]) == 25 and Fraction(v["r_frame_rate"]) == 25
    assert a["codec_name"] == "aac"
    expected = load_template("reminder", VIEWS[name]().lang).duration
    frame = 1 / 25
    assert abs(float(data["format"]["duration"]) - expected) <= frame
    assert abs(float(v["duration"]) - expected) <= frame
    assert abs(float(a["duration"]) - expected) <= frame
    assert int(v["nb_frames"]) == round(expected * 25)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["de", "it"])
def test_frames_are_evenly_spaced_with_no_gap_or_jump_at_the_joins(videos, name):
    ticks = packet_ticks(videos[name], "v:0")  # time base 1/12800: a frame is 512 ticks
    assert {b - a for a, b in pairwise(ticks)} == {video_encode.TIMESCALE // 25}
    assert ticks[0] <= 0
    audio = packet_ticks(videos[name], "a:0")  # time base 1/44100: an AAC frame is 1024
    assert {b - a for a, b in pairwise(audio)} == {1024}


@pytest.mark.slow
def test_moov_comes_before_mdat(videos):
    for path in videos.values():
        boxes = dict(top_level_boxes(path))
        assert boxes["moov"] < boxes["mdat"]


@pytest.mark.slow
def test_the_music_is_heard_and_fades_out(videos, tmp_path):
    pcm = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(videos["en"]), *MONO_8K, "-f", "s16le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    samples = np.frombuffer(pcm, dtype="<i2").astype(float)
    second = 8000
    middle = np.sqrt(np.mean(samples[7 * second : 8 * second] ** 2))
    last = np.sqrt(np.mean(samples[-second // 10 :] ** 2))
    assert middle > 500  # audible, not silence
    assert last < middle / 4  # faded out, not cut


# --------------------------------------------------------------------------- what is on screen


def decode_qr(png: Path) -> list[str]:
    if ZBARIMG:
        out = subprocess.run(
            [ZBARIMG, "--raw", "-q", str(png)], capture_output=True, text=True, check=False
        ).stdout
        return [line for line in out.splitlines() if line]
    from pyzbar.pyzbar import decode

    return [code.data.decode() for code in decode(Image.open(png))]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["de", "en", "it", "awkward"])
def test_the_end_card_qr_code_opens_the_debtors_link(videos, name, tmp_path):
    png = tmp_path / "end.png"
    frame_at(videos[name], png, seconds=13.0)
    assert decode_qr(png) == [VIEWS[name]().site_url]


@pytest.mark.slow
def test_an_awkward_name_is_drawn_as_it_is(videos, tmp_path):
    """`:`, `%`, `'`, `\\`, Ł, Greek and Cyrillic reach the screen unchanged (never a filter)."""
    frame = np.asarray(frame_at(videos["awkward"], tmp_path / "g.png", seconds=1.0), dtype=float)
    view = awkward_view()
    template = scenes.template_for(view)
    expected = np.asarray(scenes.draw_scene(view, 0, template), dtype=float)
    other = np.asarray(
        scenes.draw_scene(replace(view, first_name="Lukasz ONeil 100 Zoe Zhanna"), 0, template),
        dtype=float,
    )
    assert np.abs(frame - expected).mean() < 3
    assert np.abs(frame - other).mean() > np.abs(frame - expected).mean() + 0.5
    font = typeset.load_font(typeset.BOLD_FONT, 76)
    for ch in "Ł\\%:'ΖωήЖанна":
        assert font.getmask(ch).getbbox() is not None, f"no glyph for {ch!r}"


@pytest.mark.slow
def test_names_never_reach_the_command_line(monkeypatch, tmp_path, cache):
    seen: list[str] = []
    real = video_encode.run_ffmpeg

    def spy(args):
        seen.extend(args)
        real(args)

    monkeypatch.setattr(video_encode, "run_ffmpeg", spy)
    video.render_video(awkward_view(), tmp_path / "v.mp4", cache=cache)
    assert seen
    joined = "\n".join(seen)
    for part in ("Łukasz", "O'Neil", "100%", "Ζωή", "Жанна"):
        assert part not in joined


# --------------------------------------------------------------------------- captions


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "phrase"),
    [("de", "Offen ist ein Betrag von"), ("en", "An open amount of"), ("it", "Risulta aperto")],
)
def test_captions_are_webvtt_in_the_debtors_language_and_match_the_video(videos, name, phrase):
    view = VIEWS[name]()
    data = video.render_captions(view)
    text = data.decode("utf-8")
    assert text.startswith("WEBVTT\n")
    assert f"Language: {view.lang}" in text.split("\n\n")[0]
    cues = parse_vtt(data)
    assert phrase in cues[1][2]
    assert view.first_name in cues[0][2]
    for (_, end, _), (start, _, _) in pairwise(cues):
        assert end == start  # no gap, no overlap
    duration = float(ffprobe(videos[name], "-show_format")["format"]["duration"])
    assert abs(cues[-1][1] - duration) <= 1 / 25


# --------------------------------------------------------------------------- the segment cache


@pytest.mark.slow
def test_invariant_scenes_are_encoded_once_and_reused(tmp_path):
    cache = LocalSegmentCache(tmp_path / "cache")
    video.render_video(make_view(first_name="Anna"), tmp_path / "a.mp4", cache=cache)
    stored = sorted(p.relative_to(cache.root) for p in cache.root.rglob("*.m*"))
    assert len([p for p in stored if p.parts[0] == "scene"]) == 2  # options, steps
    assert len([p for p in stored if p.parts[0] == "audio"]) == 1
    before = {p: (cache.root / p).stat().st_mtime_ns for p in stored}
    video.render_video(make_view(first_name="Bruno"), tmp_path / "b.mp4", cache=cache)
    after = {p.relative_to(cache.root): p.stat().st_mtime_ns for p in cache.root.rglob("*.m*")}
    assert after == before  # nothing new, nothing rewritten
    # another campaign's creditor is another picture: its own segments
    video.render_video(make_view(creditor="Andere GmbH"), tmp_path / "c.mp4", cache=cache)
    assert len(list((cache.root / "scene").iterdir())) == 4


@pytest.mark.slow
def test_a_shared_store_cache_works_through_the_storage_shape(tmp_path):
    class Store:  # the `Storage` shape: KeyError when missing
        def __init__(self):
            self.objects: dict[str, tuple[bytes, str]] = {}

        def get(self, key):
            return self.objects[key][0]

        def put(self, key, data, content_type):
            self.objects[key] = (data, content_type)

    store = Store()
    video.render_video(english_view(), tmp_path / "v.mp4", cache=StoreSegmentCache(store))
    kinds = {key.split("/")[1]: ctype for key, (_, ctype) in store.objects.items()}
    assert kinds == {"scene": "video/mp4", "audio": "audio/mp4"}
    assert all(key.startswith("video-segments/") for key in store.objects)


def test_a_scene_marked_invariant_may_not_show_the_debtors_name(tmp_path, monkeypatch):
    from renderer.video import template as video_template

    raw = json.loads((video_template.TEMPLATE_DIR / "reminder.json").read_text())
    raw["scenes"][0]["personal"] = False  # the greeting shows {full_name}
    (tmp_path / "leaky.json").write_text(json.dumps(raw))
    (tmp_path / "texts.json").write_text(
        (video_template.TEMPLATE_DIR / "texts.json").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    monkeypatch.setattr(video_template, "TEMPLATE_DIR", tmp_path)
    video_template.clear_cache()
    try:
        with pytest.raises(TemplateError, match="full_name"):
            load_template("leaky", "de")
    finally:
        video_template.clear_cache()


@pytest.mark.slow
def test_segments_from_other_encoder_settings_are_refused(tmp_path):
    still = segments.still(make_view(), scenes.template_for(make_view()), 2)
    (good,) = video_encode.encode_stills([still], tmp_path, pieces=False, prefix="good")
    other = tmp_path / "other.mp4"
    main_profile = ["-c:v", "libx264", "-profile:v", "main"]
    timescale = ["-video_track_timescale", str(video_encode.TIMESCALE)]
    subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(good), *main_profile, *timescale, str(other)], check=True
    )
    video_encode.check_joinable([good, good])
    with pytest.raises(video_encode.EncodeError, match="other settings"):
        video_encode.check_joinable([good, other])


# --------------------------------------------------------------------------- for the player


def test_cta_times_come_from_the_template_and_fall_inside_the_video():
    ctas = video_ctas("reminder")
    assert {c["cta"] for c in ctas} == {"pay", "plan"}
    duration = load_template("reminder").duration
    assert all(0 <= c["from"] < c["to"] <= duration for c in ctas)


def test_the_creditors_logo_is_on_every_scene(tmp_path):
    logo = io.BytesIO()
    Image.new("RGB", (200, 56), (230, 30, 30)).save(logo, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(logo.getvalue()).decode()
    view = replace(make_view(), logo=uri)  # the picture itself: the renderer reads no paths
    template = scenes.template_for(view)
    for index in range(len(template.scenes)):
        corner = np.asarray(scenes.draw_scene(view, index, template))[40:90, 100:290]
        red = (corner[..., 0] > 200) & (corner[..., 1] < 60) & (corner[..., 2] < 60)
        assert red.mean() > 0.9
