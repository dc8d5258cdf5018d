"""The doctor's font check: can every character of the debtors' names and addresses be drawn?

Letters are set by WeasyPrint, which falls back through fontconfig's fonts; the video's
stills are drawn with the fonts Kindly ships (assets/fonts) and its list of system fallbacks
(renderer.video.typeset). A character no font has prints as an empty box.
"""

from __future__ import annotations

import bisect
import shutil
import subprocess
import sys
import unicodedata
from typing import TYPE_CHECKING

from sqlalchemy import inspect, select

from kindly.doctor import ERROR, OK, SKIPPED, WARNING, Finding

if TYPE_CHECKING:
    from kindly.doctor import Installation

FIX = (
    "install fonts covering {scripts} (Debian/Ubuntu: apt-get install fonts-noto-core "
    "fonts-noto-extra fonts-noto-cjk, then fc-cache -f) on every render and video worker"
)
NOT_NAMES = ("CAPITAL", "SMALL", "LETTER", "SYLLABLE", "IDEOGRAPH", "SIGN", "DIGIT", "VOWEL",
             "CHARACTER", "MARK", "COMMA", "FULL", "NUMBER")  # fmt: skip
"""Words that end the script's part of a character's Unicode name (ARABIC LETTER ALEF)."""


def fonts(installation: Installation) -> Finding:
    """Every character in the debtors' names and addresses against the fonts that draw them."""
    db = installation.database()
    if db is None:
        return Finding("fonts", SKIPPED, "not checked: the database is unreachable")
    if not inspect(db.engine).has_table("debtor"):
        return Finding("fonts", SKIPPED, "not checked: the schema has no debtor table yet")
    used = _characters(db)
    if not used:
        return Finding("fonts", OK, "no debtors yet: nothing to draw")
    from renderer.video.typeset import REGULAR_FONT, coverage, fallbacks

    shipped = coverage(REGULAR_FONT)
    video = set(shipped).union(*(coverage(path) for path in fallbacks(False)))
    beyond = {ch for ch in used if ord(ch) not in shipped}
    system = _fontconfig_coverage() if beyond else []
    if system is None:
        return Finding(
            "fonts", WARNING,
            f"fontconfig (fc-list) is missing: cannot tell which fonts draw {_scripts(beyond)}",
            "install fontconfig (WeasyPrint needs it too)",
        )  # fmt: skip
    letters = sorted(ch for ch in beyond if not _within(ord(ch), system))
    videos = sorted(ch for ch in beyond if ord(ch) not in video and ch not in letters)
    if letters:
        return Finding(
            "fonts", ERROR,
            f"no installed font draws {_scripts(letters)} found in debtors' names or addresses "
            f"({len(letters)} character(s), e.g. U+{ord(letters[0]):04X}): letters show boxes",
            FIX.format(scripts=_scripts(letters)),
        )  # fmt: skip
    if videos:
        return Finding(
            "fonts", WARNING,
            f"letters draw every character, but the video's fonts lack {_scripts(videos)} "
            f"(e.g. U+{ord(videos[0]):04X})",
            FIX.format(scripts=_scripts(videos))
            + " (the video looks in /usr/share/fonts/truetype/noto and droid)",
        )  # fmt: skip
    scripts = _scripts(ch for ch in used if unicodedata.category(ch)[0] == "L")
    return Finding("fonts", OK, f"{len(used)} characters in debtors' names, scripts: {scripts}")


def _characters(db) -> set[str]:
    """The printable characters of every name and address on a letter, read once."""
    from kindly.campaigns.models import Debtor

    columns = (Debtor.salutation, Debtor.first_name, Debtor.last_name, Debtor.street,
               Debtor.postal_code, Debtor.city, Debtor.creditor)  # fmt: skip
    seen: set[str] = set()
    with db.engine.connect() as conn:
        rows = conn.execution_options(yield_per=5000).execute(select(*columns).distinct())
        for row in rows:
            for value in row:
                if value:
                    seen.update(value)
    return {ch for ch in seen if unicodedata.category(ch)[0] not in "ZC"}


def _fontconfig_coverage() -> list[tuple[int, int]] | None:
    """The code point ranges some font fontconfig knows has glyphs for, merged and sorted
    (None without fc-list)."""
    exe = shutil.which("fc-list")
    if not exe:
        return None
    listing = subprocess.run(
        [exe, "--format", "%{charset}\n"], capture_output=True, text=True, timeout=60, check=True
    )
    spans = []
    for line in listing.stdout.splitlines():
        for span in line.split():
            first, _, last = span.partition("-")
            spans.append((int(first, 16), int(last or first, 16)))
    merged: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _within(code: int, ranges: list[tuple[int, int]]) -> bool:
    """Whether the code point lies in one of the sorted, merged ranges."""
    index = bisect.bisect_right(ranges, (code, sys.maxsize)) - 1
    return index >= 0 and ranges[index][0] <= code <= ranges[index][1]


def _scripts(characters) -> str:
    """The scripts the characters belong to, from their Unicode names (LATIN, ARABIC…)."""
    found = set()
    for ch in characters:
        words = unicodedata.name(ch, "UNKNOWN").split()
        script = []
        for word in words:
            if word in NOT_NAMES or word.startswith("IDEOGRAPH"):
                break
            script.append(word)
        found.add(" ".join(script) or words[0])
    return ", ".join(sorted(found))
