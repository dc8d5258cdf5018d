"""The page's beacon: its script reports a view or video progress, proof of a person."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from flask import Response, abort, request

from web.debtor.common import bp
from web.debtor.hits import hit, judge, record_hit, tracked
from web.security import csrf_exempt

BEACON_TYPES = {
    "view": "viewed",
    "video_play": "video_play",
    "video_progress": "video_progress",
    "video_complete": "video_complete",
}
BEACON_MAX = 2000
"""Characters of a beacon's body that are read."""
BEACON_PAGE = re.compile(r"[A-Za-z0-9-]{8,64}")


@bp.post("/s/<token>/e")
@csrf_exempt
def beacon(token: str):
    """The page's script reports a view or video progress: proof that a person is there.

    Each page load sends its own random id, so a repeated beacon is one event.
    """
    try:
        payload = json.loads(request.get_data(cache=False, as_text=True)[:BEACON_MAX] or "{}")
    except ValueError:
        abort(400)
    report = read_beacon(payload)
    if report is None:
        abort(400)
    debtor = tracked(token)
    kind, data, key = report.event(debtor.id)
    record_hit(None, debtor, kind, channel="web", agent=judge(None, debtor, hit()), data=data,
               key=key)  # fmt: skip
    return Response(status=204)


@dataclass(frozen=True)
class Beacon:
    """What a page's beacon reports: the event type, the page load's id, a video's progress."""

    kind: str
    page: str
    pct: int | None

    def event(self, debtor_id: int) -> tuple[str, dict[str, str], str]:
        """The event's type, data and idempotency key (one per page load and report)."""
        data = {"via": "beacon"} | ({"pct": str(self.pct)} if self.pct else {})
        return self.kind, data, f"{self.kind}:{debtor_id}:{self.page}:{self.pct or ''}"


def read_beacon(payload: object) -> Beacon | None:
    """The beacon a parsed JSON body reports, or None for anything malformed."""
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return None
    kind = BEACON_TYPES.get(payload["type"])
    page = str(payload.get("id", ""))[:64]
    if not kind or not BEACON_PAGE.fullmatch(page):
        return None
    pct = payload.get("pct")
    if kind != "video_progress":
        return Beacon(kind, page, None)
    if isinstance(pct, bool) or pct not in (25, 50, 75):
        return None
    return Beacon(kind, page, pct)
