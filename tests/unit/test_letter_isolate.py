"""Names are bidi-isolated where that can change anything, and only there."""

from __future__ import annotations

from renderer.letter import LetterRenderer
from tests.support.views import make_view, rtl_emoji_view


def test_right_to_left_names_are_isolated_and_latin_ones_need_no_box():
    renderer = LetterRenderer()
    arabic = renderer.html(rtl_emoji_view())
    assert "<bdi>Dear ليلى حداد 🌟,</bdi>" in arabic  # the greeting
    latin = renderer.html(make_view())
    assert "<bdi>" not in latin
    assert "Jürgen Müller-Lüdenscheidt" in latin


def test_bidi_controls_and_markup_in_a_name_are_still_isolated_and_escaped():
    view = make_view(greeting="Dear \u202eevil<b>,", address_lines=("<script>x</script>",))
    html = LetterRenderer().html(view)
    assert "<bdi>Dear \u202eevil&lt;b&gt;,</bdi>" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
