"""Short-lived links to a dispute's files for managers: S3 presigns its own; for the folder
store the cockpit's route takes a token signed with the secret key that names the file and
the moment it stops working."""

from __future__ import annotations

import hashlib
import hmac
import time

LINK_SECONDS = 300
"""How long a link to a dispute's file works (five minutes: long enough to open it, too
short to be worth forwarding)."""


def _mac(secret: str, file_id: int, expires: int) -> str:
    message = f"dispute-file:{file_id}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def sign(
    secret: str, file_id: int, *, now: float | None = None, seconds: int = LINK_SECONDS
) -> str:
    """A token for one file that the route accepts until `now + seconds`."""
    expires = int((time.time() if now is None else now) + seconds)
    return f"{int(file_id)}.{expires}.{_mac(secret, file_id, expires)}"


def verify(secret: str, token: str, *, now: float | None = None) -> int | None:
    """The file id a token names while it is valid; None when forged, altered or expired."""
    parts = (token or "").split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    file_id, expires = int(parts[0][:12]), int(parts[1][:12])
    if not hmac.compare_digest(parts[2], _mac(secret, file_id, expires)):
        return None
    if (time.time() if now is None else now) >= expires:
        return None
    return file_id
