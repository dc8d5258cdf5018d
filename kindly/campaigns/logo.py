"""A campaign's letter logo: uploaded, checked by content, re-encoded and kept in storage.

The campaign's settings hold the logo's storage key (`campaigns/<slug>/logo/<sha256>.png`),
never a path on the server; the renderers get the picture as a data: URI. A value saved by
older versions (a file path) is ignored: such a campaign has no logo until one is uploaded.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from functools import lru_cache

from PIL import Image

from kindly.infra.storage import Storage, StorageError

#: A logo stored here (campaigns/<slug>/logo/<sha256>.png); nothing else is one.
LOGO_KEY = re.compile(r"campaigns/[^/]+/logo/[0-9a-f]{64}\.png")

MAX_BYTES = 2 * 1024 * 1024
"""The largest upload accepted."""
MAX_PIXELS = 25_000_000
"""Larger pictures are refused before they are decoded (a small file can unpack to gigabytes)."""
MAX_SIDE = 1200
"""Stored logos are scaled down to fit this many pixels each way: a letter prints it at 5 cm."""
FORMATS = ("PNG", "JPEG")


class LogoError(ValueError):
    """An upload that is not a usable logo, with the reason."""


def prepare(data: bytes) -> bytes:
    """The upload as a clean PNG when it is a PNG or JPEG picture; `LogoError` otherwise."""
    if len(data) > MAX_BYTES:
        raise LogoError(f"logo: at most {MAX_BYTES // (1024 * 1024)} MiB (this file has "
                        f"{len(data) / (1024 * 1024):.1f} MiB)")  # fmt: skip
    if not data:
        raise LogoError("logo: the file is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except Exception:  # a parser of untrusted bytes: whatever it raises, this is no picture
        raise LogoError("logo: not a PNG or JPEG picture") from None
    try:
        # verify() checks a PNG's chunks: load() alone fills in a cut-off file, as WeasyPrint
        # switches Pillow's LOAD_TRUNCATED_IMAGES on for the whole process
        Image.open(io.BytesIO(data), formats=list(FORMATS)).verify()
    except Exception:
        raise LogoError("logo: the picture is damaged") from None
    with image:
        if image.width * image.height > MAX_PIXELS:
            raise LogoError(f"logo: {image.width}×{image.height} pixels is too large")
        try:
            image.load()
            picture = image.convert("RGBA")
        except Exception:
            raise LogoError("logo: the picture is damaged") from None
    picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, "PNG", optimize=True)  # only the pixels survive: no metadata, no tricks
    return out.getvalue()


def save(storage: Storage, slug: str, png: bytes) -> str:
    """Keep a logo made by `prepare` under the campaign's prefix; its key for the settings."""
    key = f"campaigns/{slug}/logo/{hashlib.sha256(png).hexdigest()}.png"
    storage.put(key, png, "image/png")
    return key


def stored_key(value: object, slug: str) -> str | None:
    """The value when it is a logo stored for this campaign, else None (e.g. an old path)."""
    if not isinstance(value, str) or not LOGO_KEY.fullmatch(value):
        return None
    return value if value.startswith(f"campaigns/{slug}/logo/") else None


def data_uri(storage: Storage, key: str) -> str:
    """The stored logo as a data: URI, or "" when it cannot be read now."""
    try:
        return _cached(storage, key)
    except (KeyError, StorageError):
        return ""


@lru_cache(maxsize=8)
def _cached(storage: Storage, key: str) -> str:
    # keys name their content, so a cached picture is never stale
    return "data:image/png;base64," + base64.b64encode(storage.get(key)).decode("ascii")
