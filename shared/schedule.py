"""Time of day → instant, for ``start_time``."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

START_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_START_TIME = re.compile(START_TIME_PATTERN)


def parse_start_time(value: str) -> time:
    """``"HH:MM"`` (24 h, two digits each) → ``time``; ``ValueError`` otherwise."""
    if not _START_TIME.match(value):
        raise ValueError("must be HH:MM in 24-hour time, e.g. 09:30 or 21:05")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def next_occurrence(at: time, zone: ZoneInfo, now: datetime) -> datetime:
    """The next instant at which the wall clock in ``zone`` reads ``at``: today if that is still
    ahead of ``now``, else tomorrow. A time that a DST change skips resolves as the zone's rules
    shift it (02:30 on a spring-forward day runs at 03:30)."""
    local_now = now.astimezone(zone)
    day = local_now.date()
    for offset in (0, 1, 2):
        candidate = datetime.combine(day + timedelta(days=offset), at, tzinfo=zone)
        # Round-trip through UTC so a skipped wall time becomes the real instant it denotes.
        instant = candidate.astimezone(ZoneInfo("UTC")).astimezone(zone)
        if instant > local_now:
            return instant
    raise AssertionError("unreachable: some day within three has the time ahead")
