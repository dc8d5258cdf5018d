"""The microsite as a debtor's phone receives it."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from renderer.site import STATUS_MARKER, render_site
from tests.support.views import english_view, hostile_view, make_view, rtl_emoji_view


class Collector(HTMLParser):
    """Text, ctas and script tags of a page."""

    def __init__(self):
        super().__init__()
        self.text: list[str] = []
        self.ctas: dict[str, str] = {}
        self.scripts = 0
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if "data-cta" in attrs:
            self.ctas[attrs["data-cta"]] = attrs.get("href", "")
        for name in ("src", "href"):
            if attrs.get(name, "").startswith(("http://", "https://", "//")):
                self.external.append(attrs[name])

    def handle_data(self, data):
        self.text.append(data)


def parse(view, **kw) -> Collector:
    collector = Collector()
    collector.feed(render_site(view, **kw).decode("utf-8"))
    return collector


def test_german_page_shows_greeting_amount_due_date_and_reference():
    page = parse(make_view())
    text = " ".join(page.text)
    assert "Sehr geehrter Herr Müller-Lüdenscheidt," in text
    assert "1.234,56\xa0€" in text
    assert "15. Dezember 2026" in text
    assert "K-2026-000123" in text
    assert "Stadtwerke Beispielstadt GmbH" in text
    assert "In Raten zahlen" in text


def test_calls_to_action_point_at_the_debtors_own_pages():
    page = parse(make_view())
    base = "/s/Qm9ndXNUb2tlbkZvclRlc3RzT25seTEyMzQ1Ng"
    assert page.ctas == {
        "pay": f"{base}/pay",
        "plan": f"{base}/plan",
        "promise": f"{base}/promise",
        "contact": f"{base}/contact",
        "dispute": f"{base}/dispute",
        "breathing": f"{base}/breathing",
        "preferences": f"{base}/preferences",
        "faq": f"{base}/faq",
        "letter": f"{base}/letter.pdf",
    }


def test_nothing_is_loaded_from_another_origin_and_the_script_is_our_own():
    page = parse(english_view())
    assert page.external == []
    assert page.scripts == 1
    html = render_site(english_view()).decode()
    assert '<script src="/assets/js/site.js" defer></script>' in html
    assert 'data-beacon="/s/Qm9ndXNUb2tlbkZvclRlc3RzT25seTEyMzQ1Ng/e"' in html


def test_hostile_name_is_text_not_markup():
    html = render_site(hostile_view()).decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Smith &amp; Sons" in html


def test_right_to_left_names_and_emoji_survive():
    html = render_site(rtl_emoji_view()).decode()
    assert "ليلى حداد 🌟" in html
    assert re.search(r'<h1 dir="auto">', html)


def test_page_has_a_language_and_a_place_for_live_state():
    html = render_site(make_view(lang="it", locale="it-IT")).decode()
    assert '<html lang="it"' in html
    assert STATUS_MARKER in html
    assert "Paghi a rate" in html


def test_breakdown_only_when_given():
    assert "How the amount is made up" not in render_site(english_view()).decode()
    assert "So setzt sich der Betrag zusammen" in render_site(make_view()).decode()


def test_tone_changes_the_words_and_a_campaign_can_override_them():
    firm = render_site(make_view(tone="firm")).decode()
    assert "noch nicht bezahlt" in firm and "zusätzliche Kosten" in firm
    friendly = render_site(make_view()).decode()
    assert "noch nicht bezahlt" not in friendly and "zusätzliche Kosten" not in friendly
    own = {"firm": {"de": {"intro": "Eigener Text von {creditor}."}}}
    assert (
        "Eigener Text von Stadtwerke" in render_site(make_view(tone="firm"), overrides=own).decode()
    )
