"""A Content-Disposition header that no file name can break or rename (RFC 6266)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

UNSAFE = re.compile(r"[^\w.-]+|\.{2,}")
NOT_ASCII_SAFE = re.compile(r"[^A-Za-z0-9.-]+")


def attachment(stem: str, extension: str) -> str:
    """`attachment` with an ASCII `filename` and the UTF-8 `filename*`, both ending in the
    extension: a debtor's reference may hold quotes, semicolons or any script."""
    name = UNSAFE.sub("_", stem).strip("._") or "download"
    ascii_stem = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = NOT_ASCII_SAFE.sub("_", ascii_stem).strip("._") or "download"
    return (
        f'attachment; filename="{fallback[:100]}.{extension}"; '
        f"filename*=UTF-8''{quote(name[:100], safe='')}.{extension}"
    )
