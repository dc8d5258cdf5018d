"""The debtor's microsite: one mobile-first HTML page per debtor."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from kindly.infra.paths import TEMPLATES
from renderer.texts import load_texts, one_stop
from renderer.transfer import bank_transfer
from renderer.view import DebtorView

STATUS_MARKER = "<!--kindly:status-->"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """One Jinja environment for every page of a batch (autoescaping everything)."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_site(
    view: DebtorView,
    *,
    has_video: bool = True,
    has_letter: bool = True,
    overrides: dict | None = None,
    video_ctas: list[dict] | None = None,
    online: bool = True,
) -> bytes:
    """The microsite as UTF-8 HTML; the front fills in live state at STATUS_MARKER.

    `overrides` are the campaign's own texts: {tone or "*": {lang: {key: text}}};
    `video_ctas` the video template's buttons and when they show: [{"cta", "from", "to"}];
    `online` False (KINDLY_PAYMENTS=none): bank details and a GiroCode instead of pay-now.
    """
    template = environment().get_template("site/site.html")
    ctas = ("pay", "plan") if online else ("plan",)
    path = urlsplit(view.site_url).path
    html = template.render(
        v=view,
        t=one_stop(
            load_texts("site").for_lang(view.lang, view.tone, overrides), creditor=view.creditor
        ),
        lang=view.lang,
        direction="ltr",
        brand_color=view.brand_color,
        path=path,
        beacon=f"{path}/e",
        has_video=has_video,
        has_letter=has_letter,
        video_ctas=[c for c in video_ctas or () if c.get("cta") in ctas],
        transfer=None if online else bank_transfer(view, view.amount_minor, view.amount),
    )
    return html.encode("utf-8")
