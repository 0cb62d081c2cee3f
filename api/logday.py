"""The log day an observation belongs to, in the stint's own timezone."""

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def valid_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}; use an IANA name such as Asia/Shanghai") from None
    return name


def log_day(moment: datetime, timezone: str) -> date:
    """The calendar day of ``moment`` in ``timezone``. An instant at the very edge of the calendar
    (year 1 or 9999, stored before ``observed_at`` was range-checked) whose local time falls outside
    it gets the calendar's first or last day: re-filing observations never fails on such a row."""
    try:
        return moment.astimezone(ZoneInfo(timezone)).date()
    except OverflowError:
        return date.min if moment.year < 5000 else date.max
