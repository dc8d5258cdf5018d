"""`make bench` must not break silently: every benchmark imports, and what the baselines
call from the product still exists (the naive video baseline composites scene layers)."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from renderer.video import scenes
from tests.support.views import make_view

BENCHES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "bench").glob("bench_*.py"))


@pytest.mark.parametrize("name", BENCHES)
def test_every_benchmark_imports_and_offers_run(name):
    module = importlib.import_module(f"bench.{name}")
    inspect.signature(module.run).bind()  # `python -m bench` calls run() with no arguments
    assert module.__doc__ and module.__doc__.strip()  # says what it measures


def test_the_naive_video_baseline_gets_each_scene_as_background_and_text_layer():
    view = make_view()
    template = scenes.template_for(view, "reminder")
    for index in range(len(template.scenes)):
        background, layer = scenes.scene_layers(view, template, index)
        assert background.size == layer.size == (scenes.WIDTH, scenes.HEIGHT)
        assert layer.mode == "RGBA"
        alpha = layer.getchannel("A")
        assert alpha.getextrema() == (0, 255)  # text drawn on a clear layer


def test_running_some_benchmarks_replaces_only_their_sections():
    from bench.__main__ import merge

    document = (
        "# Benchmarks\n\nMeasured then.\n\n## Letters\n\nold letters\n\n## Video\n\nold video\n"
    )
    merged = merge(document, ["## Video\n\nnew video\n", "## Campaign\n\nnew\n"],
                   ["bench_video", "bench_campaign"], "2026-11-29 10:00 UTC")  # fmt: skip
    assert "old letters" in merged and "new video" in merged and "old video" not in merged
    assert merged.index("## Letters") < merged.index("## Video") < merged.index("## Campaign")
    line = "Re-measured alone since: bench_video, bench_campaign 2026-11-29 10:00 UTC."
    assert line in merged
    # a later run of one of them leaves the other on the earlier line
    again = merge(merged, ["## Video\n\nnewer\n"], ["bench_video"], "2026-11-29 11:00 UTC")
    assert "Re-measured alone since: bench_campaign 2026-11-29 10:00 UTC." in again
    assert "Re-measured alone since: bench_video 2026-11-29 11:00 UTC." in again
    assert again.count("Re-measured") == 2 and "newer" in again
