"""A debtor's reference as one URL path segment, and back.

References hold `/` (2024/00123), which no `<reference>` route matches, and `%2F` does not help:
the server decodes it into `/` before routing. So `/` is written `~2F` and `~` itself `~7E`,
then the rest is percent-encoded; the way back is unambiguous. A plain reference (no `/` or
`~`) keeps the URL it always had.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_ESCAPED = re.compile(r"~(2F|7E)")
_CHARS = {"2F": "/", "7E": "~"}


def segment(reference: str) -> str:
    """The reference as a URL path segment (percent-encoded, no `/`)."""
    return quote(reference.replace("~", "~7E").replace("/", "~2F"), safe="~")


def reference(segment_text: str) -> str:
    """The reference a route's (already percent-decoded) segment names."""
    return _ESCAPED.sub(lambda match: _CHARS[match.group(1)], segment_text)
