"""Jobs: plain functions that take ids, reload what they need, and are safe to re-run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from kindly import context
from kindly.campaigns.models import Debtor
from kindly.errors import NotFound
from kindly.infra import logs, metrics, tracing
from kindly.infra.db import utcnow
from kindly.payments import ledger
from kindly.site import artifacts, links
from kindly.site.personalise import build_view

KINDS = ("site", "letter", "video")


def render_debtor(debtor_id: int, kinds: list[str], force: bool = False) -> dict[str, str]:
    """Render the given kinds for one debtor and store them; returns kind -> sha256.

    A letter or video whose stored inputs (view, templates, renderer) are today's is left
    alone unless `force`; the page costs a fraction of a millisecond and is always rebuilt
    (storage is written only when its bytes changed). What it checked or rebuilt loses the
    stale mark of a change made before it began (kindly.site.artifacts.mark_fresh).
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown artifact kinds: {sorted(unknown)}")
    ctx = context.current()
    done: dict[str, str] = {}
    began = utcnow()  # a change marked stale after this is not in what we read
    with ctx.db.session() as session:
        debtor = session.get(Debtor, debtor_id)
        if debtor is None:
            raise NotFound(f"debtor {debtor_id} does not exist")
        logs.note_campaign(debtor.campaign.slug)
        view = build_view(
            debtor,
            debtor.campaign,
            base_url=ctx.settings.base_url,
            paid_minor=ledger.paid_minor(session, debtor),
            storage=ctx.storage,
        )
        inputs = {kind: artifacts.inputs_for(view, kind) for kind in kinds if kind != "site"}
        stored = artifacts.by_kind(session, debtor)
        artifacts.relocate(session, ctx.storage, debtor, stored)  # keys of an older scheme
        stale = [
            kind
            for kind, fingerprint in inputs.items()
            if force or kind not in stored or stored[kind].inputs != fingerprint
        ]
        for kind, data in _render(view, stale):
            made_by = "video" if kind in ("poster", "captions") else kind  # made with the video
            done[kind] = artifacts.save(
                session, ctx.storage, debtor, kind, data, inputs=inputs[made_by], known=stored
            ).sha256
        # The page links the letter and shows the video only once they exist. Site and video
        # jobs run on different queues in no fixed order, so a finished video re-renders the
        # page (a fraction of a millisecond) when the page was rendered before it. Read again
        # after rendering: the other job may have stored its artifact in the meantime.
        if stale:
            stored = artifacts.by_kind(session, debtor)
        has_site = "site" in stored
        if "site" in kinds or (has_site and ("video" in kinds or "letter" in kinds)):
            from renderer.site import render_site

            has_video, has_letter = "video" in stored, "letter" in stored
            overrides = (debtor.campaign.settings or {}).get("texts")
            online = ctx.settings.payments_online
            with metrics.render_timer("site"), tracing.span("render site"):
                html = render_site(
                    view,
                    has_video=has_video,
                    video_ctas=_video_ctas() if has_video else None,
                    has_letter=has_letter,
                    overrides=overrides,
                    online=online,
                )
            inputs["site"] = artifacts.site_inputs(
                view, has_video=has_video, has_letter=has_letter, overrides=overrides,
                online=online,
            )  # fmt: skip
            site = artifacts.save(
                session, ctx.storage, debtor, "site", html, inputs=inputs["site"], known=stored
            )
            done["site"] = site.sha256
            links.save(
                ctx.storage, debtor, site.key, view.lang
            )  # the way in while PostgreSQL is down
        artifacts.mark_fresh(session, debtor, inputs, began)  # checked or rebuilt just now
    return done


def _video_ctas() -> list[dict]:
    """The buttons the video template overlays on the player, with their times."""
    from renderer.video.template import video_ctas

    return video_ctas()


def _render(view, kinds: list[str]):
    """Yield (artifact kind, bytes) for each requested kind other than the page."""
    if "letter" in kinds:
        from renderer.letter import render_letter

        with metrics.render_timer("letter"), tracing.span("render letter"):
            letter = render_letter(view)
        yield "letter", letter
    if "video" in kinds:
        from renderer.video import render_captions, render_poster, render_video
        from renderer.video.cache import (
            LocalSegmentCache,
            StoreSegmentCache,
            TieredSegmentCache,
        )

        ctx = context.current()
        # invariant scenes and the audio track: shared in storage, kept on this worker's disk
        segments = TieredSegmentCache(
            LocalSegmentCache(ctx.settings.data_dir / "cache" / "video-segments"),
            StoreSegmentCache(ctx.storage, "video-segments/"),
        )
        with tempfile.TemporaryDirectory(prefix="kindly-video-") as folder:
            path = Path(folder) / "video.mp4"
            with metrics.render_timer("video"), tracing.span("render video"):
                render_video(view, path, cache=segments)
            yield "video", path.read_bytes()
        yield "poster", render_poster(view)
        yield "captions", render_captions(view)
