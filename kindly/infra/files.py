"""Small file helpers shared by core and the renderers (which may not import core)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def make_private_dir(path: Path) -> None:
    """Create a folder and any missing parents readable by this user only (0700).

    The data folder holds the SQLite database, the generated secret key, stored letters and
    the outbox: nobody else on the machine may list or read them. Folders that already
    exist keep their mode (an operator's volume is the operator's choice).
    """
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        # mode is masked by the umask, which can only take bits away from 0700
        folder.mkdir(mode=0o700, exist_ok=True)


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file so readers see the old content or the new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
