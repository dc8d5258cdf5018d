"""Respect for the debtor's time: time zones, quiet hours, Sundays and public holidays."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kindly.rules.document import DAYS

COUNTRY_ZONES = {
    "DE": "Europe/Berlin", "AT": "Europe/Vienna", "CH": "Europe/Zurich", "GB": "Europe/London",
    "IE": "Europe/Dublin", "FR": "Europe/Paris", "BE": "Europe/Brussels", "NL": "Europe/Amsterdam",
    "LU": "Europe/Luxembourg", "IT": "Europe/Rome", "ES": "Europe/Madrid", "PT": "Europe/Lisbon",
    "PL": "Europe/Warsaw", "CZ": "Europe/Prague", "DK": "Europe/Copenhagen",
    "SE": "Europe/Stockholm", "NO": "Europe/Oslo", "FI": "Europe/Helsinki", "GR": "Europe/Athens",
    "US": "America/New_York", "CA": "America/Toronto",
}  # fmt: skip
"""The zone of a country's capital, used when a debtor has no `timezone` column."""

# Nationwide public holidays: fixed (month, day) and offsets from Easter Sunday. Regional
# holidays are left out: where they matter, give debtors a `timezone` and a suppression rule.
_FIXED = {
    "DE": [(1, 1), (5, 1), (10, 3), (12, 25), (12, 26)],
    "AT": [(1, 1), (1, 6), (5, 1), (8, 15), (10, 26), (11, 1), (12, 8), (12, 25), (12, 26)],
    "FR": [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)],
    "IT": [(1, 1), (1, 6), (4, 25), (5, 1), (6, 2), (8, 15), (11, 1), (12, 8), (12, 25), (12, 26)],
    "ES": [(1, 1), (1, 6), (5, 1), (8, 15), (10, 12), (11, 1), (12, 6), (12, 8), (12, 25)],
    "GB": [(1, 1), (12, 25), (12, 26)],
    "US": [(1, 1), (6, 19), (7, 4), (11, 11), (12, 25)],
}
_EASTER = {
    "DE": [-2, 1, 39, 50], "AT": [1, 39, 50, 60], "FR": [1, 39, 50], "IT": [1],
    "ES": [-2], "GB": [-2, 1],
}  # fmt: skip


def easter(year: int) -> dt.date:
    """Easter Sunday (Gregorian; the anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


@lru_cache(maxsize=256)
def holidays(country: str, year: int) -> frozenset[dt.date]:
    """The nationwide public holidays Kindly knows for a country and year (may be empty)."""
    days = {dt.date(year, month, day) for month, day in _FIXED.get(country, [])}
    sunday = easter(year)
    days |= {sunday + dt.timedelta(days=offset) for offset in _EASTER.get(country, [])}
    return frozenset(days)


def zone_for(timezone: str | None, country: str | None, fallback: str) -> ZoneInfo:
    """The debtor's own zone, else their country's, else the campaign's."""
    for name in (timezone, COUNTRY_ZONES.get(country or ""), fallback):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def held_by_clock(
    at: dt.datetime,
    zone: ZoneInfo,
    country: str | None,
    quiet_hours: dict,
    send_window: dict,
) -> str | None:
    """Why no message may go out at `at` in this zone ("quiet_hours", "sunday", "holiday",
    "send_window"), or None when it may."""
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    local = at.astimezone(zone)
    clock = local.strftime("%H:%M")
    if not quiet_hours["start"] <= clock < quiet_hours["end"]:
        return "quiet_hours"
    if local.weekday() == 6 and not quiet_hours.get("sundays", False):
        return "sunday"
    if (
        country
        and not quiet_hours.get("holidays", False)
        and local.date() in holidays(country, local.year)
    ):
        return "holiday"
    days = send_window.get("days", list(DAYS))
    start, end = send_window.get("start", "00:00"), send_window.get("end", "23:59")
    if DAYS[local.weekday()] not in days or not start <= clock < end:
        return "send_window"
    return None


def next_allowed(
    at: dt.datetime,
    zone: ZoneInfo,
    country: str | None,
    quiet_hours: dict,
    send_window: dict,
    *,
    horizon: dt.timedelta = dt.timedelta(days=14),
) -> dt.datetime | None:
    """The first quarter hour from `at` on at which a message may go out (None: not within
    the horizon, e.g. a send window with no days)."""
    when = at.replace(second=0, microsecond=0)
    when += dt.timedelta(minutes=(15 - when.minute % 15) % 15)
    end = at + horizon
    while when <= end:
        if held_by_clock(when, zone, country, quiet_hours, send_window) is None:
            return when
        when += dt.timedelta(minutes=15)
    return None
