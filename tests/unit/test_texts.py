"""The message catalogues: complete in every language, and read through Babel."""

from __future__ import annotations

import pytest

from renderer.texts import load_texts

LANGUAGES = ["de", "en", "es", "fr", "it"]


@pytest.mark.parametrize("family", ["site", "pay", "email", "sms", "letter", "video"])
def test_every_language_has_every_text_english_has(family):
    texts = load_texts(family)
    assert texts.languages() == LANGUAGES
    english = set(load_texts(family)._by_lang["en"])
    for lang in LANGUAGES:
        assert set(texts._by_lang[lang]) == english, lang


def test_site_catalogues_carry_tones_as_context():
    site = load_texts("site")
    assert "noch nicht bezahlt" in site.for_lang("de", "firm")["intro"]
    assert "noch nicht bezahlt" not in site.for_lang("de", "friendly")["intro"]
    assert site.for_lang("it")["plan"] == "Paghi a rate"
