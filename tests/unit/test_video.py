"""The debtor's video as a viewer gets it: a playable MP4, a scannable QR, matching captions."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import subprocess
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image
from pyzbar.pyzbar import decode

from renderer import video
from renderer.errors import RenderError
from renderer.texts import load_texts
from renderer.video import render_captions, render_poster, render_video, scenes, typeset
from renderer.video.cache import LocalSegmentCache
from renderer.video.palette import contrast, palette
from renderer.video.template import load_template
from tests.support.views import english_view, hostile_view, make_view, rtl_emoji_view

FFMPEG = shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe()
FFPROBE = "/usr/bin/ffprobe" if Path("/usr/bin/ffprobe").exists() else shutil.which("ffprobe")

LONG_NAME = "Maximiliane Theodora Friederike von und zu Hohenzollern-Sigmaringen " * 4


def long_name_view():
    return replace(
        english_view(),
        first_name=LONG_NAME.strip(),
        full_name=LONG_NAME.strip(),
        creditor="Gemeinnützige Wohnungsbaugesellschaft " * 5,
    )


VIEWS = {
    "de": make_view,
    "hostile": hostile_view,
    "rtl_emoji": lambda: replace(rtl_emoji_view(), first_name="ليلى 🌟", text_direction="rtl"),
    "long": long_name_view,
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """Render a few videos once for the whole module."""
    out_dir = tmp_path_factory.mktemp("videos")
    cache = LocalSegmentCache(tmp_path_factory.mktemp("segments"))
    paths = {}
    for name, factory in VIEWS.items():
        path = out_dir / name / "video.mp4"  # the directory does not exist yet
        render_video(factory(), path, cache=cache)
        paths[name] = path
    return paths


def probe(path: Path) -> dict:
    """Codec, size, pixel format and duration of the first video stream, and the stream kinds."""
    if FFPROBE:
        raw = subprocess.run(
            [FFPROBE, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        data = json.loads(raw)
        stream = next(s for s in data["streams"] if s["codec_type"] == "video")
        return {
            "codec": stream["codec_name"],
            "width": stream["width"],
            "height": stream["height"],
            "pix_fmt": stream["pix_fmt"],
            "fps": stream["avg_frame_rate"],
            "duration": float(data["format"]["duration"]),
            "kinds": [s["codec_type"] for s in data["streams"]],
        }
    err = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    info = err.stderr
    match = re.search(r"Video: (\w+).*?, (\w+)\(?.*?, (\d+)x(\d+).*?, ([\d.]+) fps", info)
    hours, minutes, seconds = re.search(r"Duration: (\d+):(\d+):([\d.]+)", info).groups()
    assert match, info
    return {
        "codec": match.group(1),
        "pix_fmt": match.group(2),
        "width": int(match.group(3)),
        "height": int(match.group(4)),
        "fps": match.group(5) + "/1",
        "duration": int(hours) * 3600 + int(minutes) * 60 + float(seconds),
        "kinds": ["audio"] * info.count("Audio:") + ["video"] * info.count("Video:"),
    }


def top_level_boxes(path: Path) -> list[tuple[str, int]]:
    """The MP4's top-level boxes as (type, byte offset)."""
    boxes = []
    data = path.read_bytes()
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        boxes.append((kind.decode("latin-1"), offset))
        assert size >= 8, f"broken box at {offset}"
        offset += size
    return boxes


def frame_at(path: Path, out_png: Path, *, seconds: float | None = None) -> Image.Image:
    """One frame as a viewer would see it; `seconds=None` means half a second before the end."""
    seek = ["-sseof", "-0.5"] if seconds is None else ["-ss", str(seconds)]
    subprocess.run(
        [FFMPEG, "-v", "error", "-y", *seek, "-i", str(path), "-frames:v", "1", str(out_png)],
        check=True,
    )
    return Image.open(out_png).convert("RGB")


def parse_vtt(data: bytes) -> list[tuple[float, float, str]]:
    text = data.decode("utf-8")
    assert text.startswith("WEBVTT")

    def seconds(stamp: str) -> float:
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    cues = []
    for block in text.split("\n\n")[1:]:
        lines = [line for line in block.split("\n") if line]
        if not lines:
            continue
        timing = next(i for i, line in enumerate(lines) if "-->" in line)
        start, end = (part.strip() for part in lines[timing].split("-->"))
        assert re.fullmatch(r"\d{2}:\d{2}:\d{2}\.\d{3}", start)
        assert re.fullmatch(r"\d{2}:\d{2}:\d{2}\.\d{3}", end)
        cues.append((seconds(start), seconds(end), "\n".join(lines[timing + 1 :])))
    return cues


# --------------------------------------------------------------------------- the MP4 itself


@pytest.mark.slow
def test_video_is_720p_h264_yuv420p_of_the_right_length(videos):
    info = probe(videos["de"])
    assert info["codec"] == "h264"
    assert (info["width"], info["height"]) == (1280, 720)
    assert info["pix_fmt"] == "yuv420p"
    assert info["fps"] == "25/1"
    assert abs(info["duration"] - video.video_duration("reminder", "de")) <= 1 / 25
    assert sorted(info["kinds"]) == ["audio", "video"]


@pytest.mark.slow
def test_moov_atom_comes_before_media_data_so_playback_starts_at_once(videos):
    boxes = dict(top_level_boxes(videos["de"]))
    assert "moov" in boxes and "mdat" in boxes
    assert boxes["moov"] < boxes["mdat"]


@pytest.mark.slow
def test_last_frame_has_a_qr_code_that_opens_the_debtors_site(videos, tmp_path):
    frame = frame_at(videos["de"], tmp_path / "last.png")
    codes = decode(frame)
    assert [code.data.decode("utf-8") for code in codes] == [make_view().site_url]
    (code,) = codes
    assert code.rect.width >= 300 and code.rect.height >= 300  # scannable from a screen


def middles(lang: str) -> list[float]:
    """The middle of each scene, in seconds: far from any fade."""
    template = load_template("reminder", lang)
    return [
        start + template.scene_frames(scene) / template.fps / 2
        for scene, start in zip(template.scenes, template.starts(), strict=True)
    ]


@pytest.mark.slow
def test_greeting_in_the_video_looks_like_the_poster(videos, tmp_path):
    second = middles("de")[0]
    frame = np.asarray(frame_at(videos["de"], tmp_path / "first.png", seconds=second), dtype=float)
    poster = Image.open(io.BytesIO(render_poster(make_view())))
    assert poster.format == "JPEG" and poster.size == (1280, 720)
    assert np.abs(frame - np.asarray(poster.convert("RGB"), dtype=float)).mean() < 4


@pytest.mark.slow
def test_scenes_differ_from_each_other(videos, tmp_path):
    path = videos["de"]
    frames = [
        np.asarray(frame_at(path, tmp_path / f"{t}.png", seconds=t), dtype=float)
        for t in middles("de")
    ]
    for a, b in ((0, 1), (1, 2), (0, 2), (2, 3), (3, 4)):
        assert np.abs(frames[a] - frames[b]).mean() > 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hostile", "rtl_emoji", "long"])
def test_awkward_names_still_give_a_playable_video_with_a_working_qr(videos, name, tmp_path):
    info = probe(videos[name])
    assert (info["codec"], info["width"], info["height"]) == ("h264", 1280, 720)
    assert abs(info["duration"] - 15.0) <= 1 / 25
    codes = decode(frame_at(videos[name], tmp_path / "last.png"))
    assert [code.data.decode() for code in codes] == [VIEWS[name]().site_url]


@pytest.mark.slow
def test_no_temp_files_are_left_beside_the_video(videos):
    for path in videos.values():
        assert [p.name for p in path.parent.iterdir()] == ["video.mp4"]


# --------------------------------------------------------------------------- captions


@pytest.mark.slow
def test_captions_are_webvtt_matching_the_scenes(videos):
    view = make_view()
    cues = parse_vtt(render_captions(view))
    assert len(cues) == len(load_template("reminder", "de").scenes)
    assert cues[0][0] == 0
    for (start, end, _), (next_start, _, _) in pairwise(cues):
        assert start < end <= next_start
    assert abs(cues[-1][1] - probe(videos["de"])["duration"]) < 0.1
    assert view.first_name in cues[0][2]
    assert view.amount.replace("\xa0", " ") in cues[1][2].replace("\xa0", " ")
    assert view.short_url in cues[-1][2]


def test_captions_show_markup_in_names_as_text():
    data = render_captions(hostile_view()).decode("utf-8")
    assert "<script>" not in data
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in data


@pytest.mark.parametrize("lang", ["de", "en", "it", "es", "fr"])
def test_every_language_has_every_text(lang):
    texts = load_texts("video")
    assert set(texts.for_lang("en")) == set(texts._by_lang[lang])
    cues = parse_vtt(render_captions(make_view(lang=lang)))
    assert "Jürgen" in cues[0][2]
    assert all(cue[2] for cue in cues)


# --------------------------------------------------------------------------- drawing details


def test_missing_font_is_a_clear_error(monkeypatch, tmp_path):
    missing = tmp_path / "nope.ttf"
    monkeypatch.setattr(typeset, "REGULAR_FONT", missing)
    with pytest.raises(RenderError, match=f"font not found: {re.escape(str(missing))}"):
        render_poster(make_view())


def test_without_raqm_rtl_names_still_render(monkeypatch):
    monkeypatch.setattr(typeset, "HAS_RAQM", False)
    typeset.load_font.cache_clear()
    try:
        poster = render_poster(replace(rtl_emoji_view(), first_name="שרה 🌟‏"))
    finally:
        typeset.load_font.cache_clear()
    assert Image.open(io.BytesIO(poster)).size == (1280, 720)


def test_without_the_emoji_font_emoji_are_left_out_not_boxed(monkeypatch, tmp_path):
    monkeypatch.setattr(typeset, "EMOJI_FONT", tmp_path / "none.ttf")
    typeset.emoji_font.cache_clear()
    try:
        assert typeset.emoji_runs("Zoë 🌟 ❤️ Ölçer") == [("Zoë Ölçer", False)]
        render_poster(replace(english_view(), first_name="Zoë 👩‍👩‍👧"))
    finally:
        typeset.emoji_font.cache_clear()


@pytest.mark.skipif(not typeset.EMOJI_FONT.is_file(), reason="no Noto Color Emoji on this system")
def test_emoji_are_drawn_in_colour():
    image = scenes.draw_scene(replace(english_view(), first_name="Zoë 🍎🍎🍎🍎"), 0)
    pixels = np.asarray(image, dtype=int)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)
    assert red.sum() > 500  # red apples, on a blue background with white text


@pytest.mark.parametrize(
    "brand", ["#1f5f8b", "#ffd700", "#ffffff", "#000000", "#7fbf7f", "nonsense"]
)
def test_text_always_has_enough_contrast_with_the_background(brand):
    colours = palette(brand)
    assert contrast(colours.text, colours.background) >= 4.5
    assert contrast(colours.muted, colours.background) >= 4.5


def test_long_names_stay_inside_the_frame():
    image = scenes.draw_scene(long_name_view(), 0)
    pixels = np.asarray(image, dtype=int)
    background = np.array(palette(long_name_view().brand_color).background)
    text = np.abs(pixels - background).sum(axis=2) > 300  # white text on the brand colour
    columns = np.flatnonzero(text[100:560].any(axis=0))
    assert columns.min() >= scenes.MARGIN_X - 4
    assert columns.max() <= scenes.WIDTH - scenes.MARGIN_X + 4


def test_a_longish_name_is_shown_whole_in_smaller_type():
    style = typeset.STYLES["title"]
    name = "Hello Maria-Magdalena Wolkenstein-Trostburg de la Fuente"
    block = typeset.fit(name, style, scenes.WIDTH - 2 * scenes.MARGIN_X, 1.0, "ltr")
    assert block.typeset.size < style.size
    assert " ".join(block.lines) == name


def test_balanced_lines_never_cut_a_word_that_fits():
    """Italian "Scansioni il codice" beside the QR card once came out as "Scansion / i il codice"."""
    style = typeset.STYLES["title"]
    text = "Scansioni il codice"
    block = typeset.fit(text, style, 556, 1.0, "ltr")
    assert " ".join(block.lines).split() == text.split()


@pytest.mark.parametrize("name", ["王秀英", "अनीता", "สมชาย"])
def test_scripts_dejavu_lacks_are_drawn_with_real_glyphs_not_boxes(name):
    bold = typeset.BOLD_FONT
    fonts = {path for _, path in typeset.font_runs(name, bold, True)}
    if fonts == {bold}:
        pytest.skip("no fallback font for this script on this system (fonts-noto, fonts-droid)")
    setter = typeset.Typeset(bold, 76, "ltr")
    bitmaps = []
    for ch in name[:3]:
        image = Image.new("L", (120, 120), 0)
        setter.draw(image, 10, 90, ch, 255)
        bitmaps.append(np.asarray(image))
    assert all(b.sum() > 0 for b in bitmaps)
    for a, b in ((0, 1), (1, 2), (0, 2)):  # boxes ("tofu") would all look the same
        assert np.abs(bitmaps[a].astype(int) - bitmaps[b]).sum() > 0
