"""`kindly worker` runs quick jobs in its own warm process and forks only for videos."""

from __future__ import annotations

import gc

from rq import SimpleWorker, Worker

import renderer.site
from workers import queues
from workers.worker import preload, worker_class


def test_quick_queues_run_in_the_worker_and_video_forks():
    assert worker_class([queues.RENDER, queues.SEND, queues.DEFAULT]) is SimpleWorker
    assert worker_class([queues.VIDEO]) is Worker
    assert worker_class([queues.RENDER, queues.VIDEO]) is Worker  # a video in the same process


def test_preload_renders_a_letter_and_freezes_what_it_loaded(monkeypatch):
    from renderer.letter import LetterRenderer

    letters: list[bytes] = []
    render = LetterRenderer.render
    monkeypatch.setattr(
        LetterRenderer,
        "render",
        lambda self, view: letters.append(render(self, view)) or letters[-1],
    )
    gc.unfreeze()  # whatever an earlier test froze: start from nothing
    try:
        preload([queues.RENDER])
        assert len(letters) == 1 and letters[0].startswith(b"%PDF")  # a whole sample letter
        # what it loaded (the pages' Jinja environment among it) is out of every collection,
        # so a collection in a forked horse does not touch its copy-on-write pages
        loaded, later = renderer.site.environment(), [[]]
        collected = gc.get_objects()  # what a collection walks; frozen objects are not in it
        assert not any(o is loaded for o in collected)
        assert any(o is later for o in collected)
    finally:
        gc.unfreeze()
