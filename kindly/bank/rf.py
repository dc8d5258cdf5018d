"""ISO 11649 structured creditor references ('RF' + two check digits + up to 21 characters).

Kindly gives each debtor one, derived from the campaign's slug and the debtor's reference so
it stays the same across re-imports. Its body uses digits and the letters a reader cannot
mistake for one (no I, L, O, U), and python-stdnum checks the digits.
"""

from __future__ import annotations

import hashlib
import re

from stdnum import iso11649
from stdnum.exceptions import ValidationError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""32 symbols: the digits and the letters without I, L, O and U."""
BODY = 13
"""Body characters of a generated reference: 65 bits, printed as 'RFkk XXXX XXXX XXXX X'."""

_CANDIDATE = re.compile(
    r"(?<![0-9A-Za-z])RF[ \t-]?[0-9]{2}"
    r"(?:[ \t-]?(?!RF[ \t-]?[0-9]{2}[ \t-]?[0-9A-Za-z])[0-9A-Za-z]){1,21}",
    re.I,
)
"""'RF', the check digits and up to 21 characters, never running into the next reference."""


def rf_for(campaign_slug: str, reference: str) -> str:
    """The debtor's stable RF reference, compact ('RF47K3X92M4Q7B1ZD')."""
    digest = hashlib.sha256(f"kindly-rf\x1f{campaign_slug}\x1f{reference}".encode()).digest()
    number = int.from_bytes(digest[:9], "big")
    body = ""
    for _ in range(BODY):
        number, digit = divmod(number, 32)
        body += ALPHABET[digit]
    return with_check_digits(body)


def item_rf_for(campaign_slug: str, reference: str, item_id: str) -> str:
    """An item's stable RF reference: like the case's, from the case and the item's own id."""
    return rf_for(campaign_slug, f"{reference}\x1fitem\x1f{item_id}")


def with_check_digits(body: str) -> str:
    """'RF' + the check digits that make body a valid reference."""
    body = compact(body)
    if not body or len(body) > 21 or not body.isalnum():
        raise ValueError(f"a creditor reference body has 1 to 21 letters or digits, not {body!r}")
    digits = 98 - int("".join(str(int(char, 36)) for char in body + "RF00")) % 97
    return f"RF{digits:02d}{body}"


def compact(text: str) -> str:
    """Upper case without spaces or hyphens."""
    return re.sub(r"[\s-]", "", text).upper()


def is_valid(text: str) -> bool:
    """Whether text (any case, spaces allowed) is a valid RF reference."""
    value = compact(text)
    if not value.startswith("RF"):
        return False
    try:
        iso11649.validate(value)
    except ValidationError:
        return False
    return True


def normalise(text: str) -> str:
    """The compact form of a valid reference; ValueError for an invalid one."""
    if not is_valid(text):
        raise ValueError(f"{text!r} is not a valid ISO 11649 creditor reference")
    return compact(text)


def printed(text: str) -> str:
    """A reference in groups of four for letters and pages ('RF47 K3X9 2M4Q 7B1Z D')."""
    return iso11649.format(normalise(text))


def find(text: str) -> list[str]:
    """Every valid RF reference written in free text, compact, longest candidate first.

    People type references in any case and with spaces or hyphens wherever they like, and a
    reference may run into the next word ("rf18 5390 0754 7034 Rechnung"). The characters
    after 'RF' are read group by group up to 21, stopping at a group of more than four letters
    and no digit (a word, not a part of a reference); every group end where the check digits
    hold is a candidate, for a matcher to look up.
    """
    found: list[str] = []
    for match in _CANDIDATE.finditer(text or ""):
        groups = re.split(r"[ \t-]+", match.group(0))
        head, rest = groups[0], groups[1:]
        if len(head) == 2:  # 'RF 18 …': the check digits stand alone
            head, rest = head + rest[0], rest[1:]
        candidates = [head]
        for group in rest:
            if len(group) > 4 and group.isalpha():
                break
            candidates.append(candidates[-1] + group)
        for candidate in reversed(candidates):
            value = candidate.upper()
            if 4 < len(value) <= 25 and is_valid(value) and value not in found:
                found.append(value)
    return found
