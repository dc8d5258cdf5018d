"""The backup's manifest: what it holds, each file's size and SHA-256, and where it came from.

The manifest is written last, so a backup without one is incomplete. Its checksums find a
truncated, corrupted or edited file before anything is restored; they are not a signature
(whoever can write the backup can rewrite the manifest too): keep backups where only the
operators write.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kindly.errors import KindlyError
from kindly.infra.storage import KEY

FORMAT = "kindly-backup"
VERSION = 1
"""Raised when the layout changes; restore refuses versions it does not know."""
NAME = "manifest.json"
OBJECTS = "objects"
"""The folder of the backup that holds the stored objects, each under its own key."""
CHUNK = 1 << 20


class BackupError(KindlyError):
    """A backup cannot be taken or restored; the message says why and what to do."""


@dataclass(frozen=True)
class Entry:
    """One file of the backup: a stored object (by its key) or the database dump."""

    name: str  # the path inside the backup
    size: int
    sha256: str
    key: str = ""  # the storage key, for objects
    content_type: str = ""


@dataclass
class Manifest:
    """Everything restore needs to know before it writes."""

    created_at: str
    kindly_version: str
    alembic_revision: str | None
    database: dict[str, Any]  # engine, file, size, sha256, server and tool versions
    objects: list[Entry] = field(default_factory=list)
    rendered_included: bool = False
    rendered_skipped: int = 0
    secret_fingerprint: str = ""
    format: str = FORMAT
    version: int = VERSION

    def to_json(self) -> bytes:
        """The manifest as written into the backup."""
        data = asdict(self)
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Read a manifest, or BackupError saying what is wrong with it."""
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            msg = f"{NAME} is not valid JSON ({exc}): the backup is damaged"
            raise BackupError(msg) from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise BackupError(f"{NAME} is not a Kindly backup manifest")
        if raw.get("version") != VERSION:
            raise BackupError(
                f"backup format version {raw.get('version')!r} is not one this Kindly reads "
                f"({VERSION}): restore it with the Kindly version that took it"
            )
        try:
            objects = [Entry(**item) for item in raw.pop("objects")]
            manifest = cls(**raw, objects=objects)
            database = Entry(**{k: manifest.database[k] for k in ("name", "size", "sha256")})
        except (KeyError, TypeError) as exc:
            raise BackupError(f"{NAME} is incomplete or malformed ({exc})") from None
        for entry in [database, *manifest.objects]:
            _check_name(entry.name)
        for entry in manifest.objects:
            if entry.name != f"{OBJECTS}/{entry.key}":
                raise BackupError(f"{NAME} names object {entry.key!r} at another path")
        return manifest

    def database_entry(self) -> Entry:
        """The dump as an entry, to verify like the objects."""
        return Entry(self.database["name"], self.database["size"], self.database["sha256"])


def _check_name(name: str) -> None:
    """A manifest names files inside the backup only: no absolute path, no `..`."""
    if not isinstance(name, str) or not KEY.match(name) or ".." in name.split("/"):
        raise BackupError(f"{NAME} names a file outside the backup: {name!r}")


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def mismatch(entry: Entry, path: Path | None) -> str | None:
    """Why this file does not match its entry, or None when it does."""
    if path is None or not path.is_file():
        return f"{entry.name}: missing"
    size = path.stat().st_size
    if size != entry.size:
        return f"{entry.name}: {size} bytes, the manifest says {entry.size}"
    if sha256_of(path) != entry.sha256:
        return f"{entry.name}: SHA-256 differs from the manifest's"
    return None


def secret_fingerprint(secret_key: str) -> str:
    """A short fingerprint of KINDLY_SECRET_KEY: restore can tell a different key (signed
    unsubscribe links would stop working) without the backup holding the key."""
    mac = hmac.new(secret_key.encode(), b"kindly backup: secret key fingerprint", "sha256")
    return mac.hexdigest()[:16]
