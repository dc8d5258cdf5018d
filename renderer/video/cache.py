"""The segment cache: encoded invariant scenes and audio tracks, kept under a hash of their inputs.

The renderer takes any object with `get(key) -> bytes | None` and `put(key, data)`. Two are here:
a folder on the local disk, and an adapter over a key-value store with the `Storage` shape
(`exists`, `get`, `put(key, data, content_type)`), so the renderer never imports `core`.
`TieredSegmentCache` puts a local folder in front of a shared store: a warm worker reads a
segment from storage once, then from its own disk.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

from kindly.infra.files import write_atomically

_KEY_RE = re.compile(r"^[a-z0-9-]+/[0-9a-f]{64}\.(mp4|m4a)$")


class SegmentCache(Protocol):
    """Where encoded segments live between renders."""

    def get(self, key: str) -> bytes | None: ...
    def put(self, key: str, data: bytes) -> None: ...


def check_key(key: str) -> str:
    """Keys are `<kind>/<sha256>.<ext>`: nothing a path or a store could misread."""
    if not _KEY_RE.match(key):
        raise ValueError(f"bad segment key {key!r}")
    return key


class LocalSegmentCache:
    """Segments as files under one folder; writes are atomic, so parallel workers may share it."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The file a key is (or would be) stored in."""
        return self.root / check_key(key)

    def get(self, key: str) -> bytes | None:
        """The segment's bytes, or None."""
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        """Store a segment (atomically: readers see all of it or nothing)."""
        write_atomically(self.path(key), data)


class StoreSegmentCache:
    """Segments in an object store with the `Storage` shape, under `prefix` (`video-segments/…`)."""

    def __init__(self, store: Any, prefix: str = "video-segments/"):
        self.store = store
        self.prefix = prefix

    def get(self, key: str) -> bytes | None:
        """The segment's bytes, or None when the store has no such object."""
        full = self.prefix + check_key(key)
        try:
            return self.store.get(full)
        except KeyError:
            return None

    def put(self, key: str, data: bytes) -> None:
        """Store a segment."""
        kind = key.rsplit(".", 1)[-1]
        content_type = "audio/mp4" if kind == "m4a" else "video/mp4"
        self.store.put(self.prefix + check_key(key), data, content_type)


class TieredSegmentCache:
    """A fast local cache in front of a shared one: read-through, write-both."""

    def __init__(self, local: SegmentCache, shared: SegmentCache):
        self.local = local
        self.shared = shared

    def get(self, key: str) -> bytes | None:
        """From the local cache, else from the shared one (and keep a local copy)."""
        data = self.local.get(key)
        if data is None:
            data = self.shared.get(key)
            if data is not None:
                self.local.put(key, data)
        return data

    def put(self, key: str, data: bytes) -> None:
        """Store in both."""
        self.shared.put(key, data)
        self.local.put(key, data)


def default_cache() -> LocalSegmentCache:
    """A per-user folder in the temp directory: what `render_video` uses when given no cache."""
    return LocalSegmentCache(Path(tempfile.gettempdir()) / f"kindly-video-segments-{os.getuid()}")
