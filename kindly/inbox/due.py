"""When an answer is due: the page promises one within two working days.

Working days are Monday to Friday except the nationwide public holidays of the campaign's
country (kindly.messaging.respect); the day a message arrives does not count, and the answer
is due at the end of the second working day after it, in the campaign's time zone.
"""

from __future__ import annotations

import datetime as dt

from kindly.messaging.respect import holidays, zone_for

WORKING_DAYS = 2
"""The page's promise: "we will answer within two working days"."""
END_OF_DAY = dt.time(18, 0)
"""When a working day ends for the people answering."""


def country_of(locale: str | None) -> str | None:
    """The region of a BCP 47 locale ('de-DE' → 'DE'), or None."""
    parts = (locale or "").replace("_", "-").split("-")
    return parts[1].upper() if len(parts) > 1 and len(parts[1]) == 2 else None


def is_working_day(day: dt.date, country: str | None) -> bool:
    """Monday to Friday and not a public holiday of the country."""
    return day.weekday() < 5 and not (country and day in holidays(country, day.year))


def working_days_after(day: dt.date, count: int, country: str | None) -> dt.date:
    """The `count`-th working day after `day` (`day` itself never counts)."""
    while count > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day, country):
            count -= 1
    return day


def due_at(arrived: dt.datetime, locale: str | None, timezone: str | None = None) -> dt.datetime:
    """When the answer to a message that arrived at `arrived` is due (timezone-aware, UTC)."""
    if arrived.tzinfo is None:
        arrived = arrived.replace(tzinfo=dt.UTC)  # SQLite drops the zone; we store UTC
    country = country_of(locale)
    zone = zone_for(timezone, country, "Europe/Berlin")
    local = arrived.astimezone(zone)
    day = working_days_after(local.date(), WORKING_DAYS, country)
    return dt.datetime.combine(day, END_OF_DAY, tzinfo=zone).astimezone(dt.UTC)
