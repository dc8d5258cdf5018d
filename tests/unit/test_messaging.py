"""Messaging rules a debtor notices: SMS length, quiet hours where they live, caps, opt-outs."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from kindly.messaging import bounces, sms
from kindly.messaging.respect import easter, held_by_clock, holidays
from kindly.rules.document import BUILTIN_QUIET_HOURS

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
ALL_DAYS = {"start": "00:00", "end": "23:59"}


@pytest.mark.parametrize(
    ("text", "encoding", "units", "parts"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # the euro sign costs two septets
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 152 + "€", "GSM-7", 154, 1),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),  # an escape pair is never split
        ("Grüße aus München", "GSM-7", 17, 1),  # ü and ä are in the GSM alphabet
        ("ç" * 70, "UCS-2", 70, 1),  # ç (lower case) is not
        ("ç" * 71, "UCS-2", 71, 2),
        ("Ł" * 134, "UCS-2", 134, 2),
        ("Ł" * 135, "UCS-2", 135, 3),
        ("🙂" * 35, "UCS-2", 70, 1),  # an emoji is two UTF-16 units
    ],
)
def test_sms_segments(text, encoding, units, parts):
    assert sms.count(text) == sms.SmsCount(encoding, units, parts)


def test_typography_is_made_gsm_friendly():
    assert sms.count(sms.plain("1.234,56\u00a0€ – bitte")).encoding == "GSM-7"


def at(zone: ZoneInfo, *args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=zone).astimezone(dt.UTC)


def test_quiet_hours_are_the_debtors_own():
    # 15:00 in Berlin is 09:00 in New York: both may be contacted
    moment = at(BERLIN, 2026, 12, 1, 15, 0)
    assert held_by_clock(moment, BERLIN, "DE", BUILTIN_QUIET_HOURS, ALL_DAYS) is None
    assert held_by_clock(moment, NEW_YORK, "US", BUILTIN_QUIET_HOURS, ALL_DAYS) is None
    # 10:00 in Berlin is 04:00 in New York
    moment = at(BERLIN, 2026, 12, 1, 10, 0)
    assert held_by_clock(moment, BERLIN, "DE", BUILTIN_QUIET_HOURS, ALL_DAYS) is None
    assert held_by_clock(moment, NEW_YORK, "US", BUILTIN_QUIET_HOURS, ALL_DAYS) == "quiet_hours"
    # 21:00 in Berlin is 15:00 in New York
    moment = at(BERLIN, 2026, 12, 1, 21, 0)
    assert held_by_clock(moment, BERLIN, "DE", BUILTIN_QUIET_HOURS, ALL_DAYS) == "quiet_hours"
    assert held_by_clock(moment, NEW_YORK, "US", BUILTIN_QUIET_HOURS, ALL_DAYS) is None
    # 20:00 sharp is already quiet; 08:00 sharp is not
    assert held_by_clock(at(BERLIN, 2026, 12, 1, 20, 0), BERLIN, "DE", BUILTIN_QUIET_HOURS,
                         ALL_DAYS) == "quiet_hours"  # fmt: skip
    assert held_by_clock(at(BERLIN, 2026, 12, 1, 8, 0), BERLIN, "DE", BUILTIN_QUIET_HOURS,
                         ALL_DAYS) is None  # fmt: skip


def test_sundays_holidays_and_send_windows():
    sunday = at(BERLIN, 2026, 12, 6, 12, 0)
    assert held_by_clock(sunday, BERLIN, "DE", BUILTIN_QUIET_HOURS, ALL_DAYS) == "sunday"
    unity_day = at(BERLIN, 2026, 10, 3, 12, 0)  # a Saturday and a German holiday
    assert held_by_clock(unity_day, BERLIN, "DE", BUILTIN_QUIET_HOURS, ALL_DAYS) == "holiday"
    assert held_by_clock(unity_day, BERLIN, "FR", BUILTIN_QUIET_HOURS, ALL_DAYS) is None
    window = {"start": "17:00", "end": "19:30", "days": ["mon", "tue", "wed", "thu", "fri"]}
    assert held_by_clock(at(BERLIN, 2026, 12, 1, 12, 0), BERLIN, "DE", BUILTIN_QUIET_HOURS,
                         window) == "send_window"  # fmt: skip
    assert held_by_clock(at(BERLIN, 2026, 12, 1, 18, 0), BERLIN, "DE", BUILTIN_QUIET_HOURS,
                         window) is None  # fmt: skip
    with pytest.raises(ValueError, match="timezone-aware"):
        held_by_clock(dt.datetime(2026, 12, 1, 12), BERLIN, "DE", BUILTIN_QUIET_HOURS, window)


def test_easter_and_movable_holidays():
    assert easter(2026) == dt.date(2026, 4, 5)
    assert easter(2027) == dt.date(2027, 3, 28)
    assert dt.date(2026, 4, 3) in holidays("DE", 2026)  # Good Friday
    assert dt.date(2026, 4, 6) in holidays("GB", 2026)  # Easter Monday
    assert dt.date(2026, 7, 4) in holidays("US", 2026)


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        ("5.1.1", "550 5.1.1 user unknown", "hard"),
        ("5.1.2", "bad destination system", "hard"),
        ("5.1.6", "mailbox moved", "hard"),
        ("4.2.2", "mailbox full", "soft"),
        ("5.2.2", "552 5.2.2 mailbox full", "soft"),
        ("4.4.1", "connection timed out", "soft"),
        ("5.7.1", "message rejected as spam", "sender"),
        ("2.0.0", "ok", "delivered"),
    ],
)
def test_bounce_classification(status, text, kind):
    assert bounces.classify_status(status, text) == kind


DSN = b"""From: MAILER-DAEMON@mx.example.org
To: no-reply@kindly.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

The mail could not be delivered.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; Anna@Example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <anna@example.org>: Recipient address rejected

--B
Content-Type: text/rfc822-headers

Message-ID: <abc.123@kindly.example>
Subject: Your open amount

--B--
"""


def test_dsn_is_parsed_per_recipient():
    [bounce] = bounces.parse_dsn(DSN)
    assert bounce.recipient == "anna@example.org"
    assert (bounce.status, bounce.action, bounce.kind) == ("5.1.1", "failed", "hard")
    assert bounce.message_id == "<abc.123@kindly.example>"
