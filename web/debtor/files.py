"""The debtor's files: the letter, the video, its poster and captions."""

from __future__ import annotations

from flask import abort, redirect, send_file

from kindly.site import artifacts
from web.context import context
from web.debtor.common import bp
from web.debtor.hits import count, find_debtor

FILES = {
    "letter.pdf": "letter",
    "video.mp4": "video",
    "poster.jpg": "poster",
    "captions.vtt": "captions",
}


@bp.get("/s/<token>/<name>")
def file(token: str, name: str):
    """The debtor's letter, video, poster or captions, streamed or via a short-lived URL."""
    kind = FILES.get(name)
    if kind is None:
        abort(404)
    ctx = context()
    with ctx.db.session() as session:
        debtor = find_debtor(session, token)
        artifact = artifacts.find(session, debtor, kind)
        if artifact is None:
            abort(404)
        if kind == "letter":
            count(session, debtor, "cta", cta="letter")
        key, mimetype = artifact.key, artifact.content_type
    path = ctx.storage.local_path(key)
    if path is not None:
        return send_file(path, mimetype=mimetype, conditional=True, max_age=0)
    url = ctx.storage.presigned_url(key, expires=600)
    if url is None:
        abort(404)
    return redirect(url, code=302)
