"""Moves that cannot break silently: the hashes that say "the renderer changed" cover every file.

A cached video segment is keyed by a hash of the video package's code, and a stored letter,
page or video by a hash of the renderer and its templates. Both walk their folders rather than
list file names, so a module added or moved by a later split is hashed too. These tests edit a
copy of the code, never the code itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import renderer
from kindly.infra.paths import ROOT, TEMPLATES
from kindly.site.artifacts import renderer_folders, renderer_version, tree_version
from renderer.video import segments

RENDERER = Path(renderer.__file__).resolve().parent
VIDEO = RENDERER / "video"
VIDEO_MODULES = sorted(p.relative_to(VIDEO).as_posix() for p in VIDEO.rglob("*.py"))


@pytest.fixture
def copy(tmp_path) -> Path:
    """A copy of the renderer package and the video templates, laid out as in the repository."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(RENDERER, tmp_path / "renderer", ignore=ignore)
    shutil.copytree(TEMPLATES / "video", tmp_path / "templates" / "video", ignore=ignore)
    return tmp_path


def touch(path: Path) -> None:
    """Append a comment: the code does the same, its bytes do not."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n# edited\n")


# --------------------------------------------------------------------------- video segments


def test_the_video_code_id_is_the_hash_of_the_package_it_lives_in(copy):
    assert segments.code_id() == segments.code_hash(VIDEO)
    assert segments.code_hash(copy / "renderer" / "video") == segments.code_hash(VIDEO)


def test_the_video_package_is_found_by_walking_its_folder():
    assert {"render.py", "scenes.py", "segments.py", "typeset.py", "encode.py"} <= set(
        VIDEO_MODULES
    )


@pytest.mark.parametrize("module", VIDEO_MODULES)
def test_editing_any_module_of_the_video_package_renews_the_segments(copy, module):
    package = copy / "renderer" / "video"
    before = segments.code_hash(package)
    touch(package / module)
    assert segments.code_hash(package) != before


def test_a_new_video_module_or_an_edited_qr_renews_the_segments(copy):
    package = copy / "renderer" / "video"
    before = segments.code_hash(package)
    (package / "later_split.py").write_text('"""A module nobody listed anywhere."""\n')
    added = segments.code_hash(package)
    assert added != before
    touch(copy / "renderer" / "qr.py")
    assert segments.code_hash(package) != added


# --------------------------------------------------------------------------- stored artifacts


def test_the_renderer_version_is_the_hash_of_its_folders(copy):
    assert renderer_version("video") == tree_version(renderer_folders("video"), ROOT)
    copied = [copy / "templates" / "video", copy / "renderer"]
    assert tree_version(copied, copy) == renderer_version("video")


@pytest.mark.parametrize(
    "edited", ["renderer/video/scenes.py", "renderer/qr.py", "templates/video/reminder.json"]
)
def test_editing_the_renderer_or_a_template_makes_artifacts_stale(copy, edited):
    copied = [copy / "templates" / "video", copy / "renderer"]
    before = tree_version(copied, copy)
    touch(copy / edited)
    assert tree_version(copied, copy) != before


def test_a_module_moved_inside_the_renderer_makes_artifacts_stale(copy):
    copied = [copy / "renderer"]
    before = tree_version(copied, copy)
    (copy / "renderer" / "video" / "palette.py").rename(copy / "renderer" / "palette.py")
    assert tree_version(copied, copy) != before
