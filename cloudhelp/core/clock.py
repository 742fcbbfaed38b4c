"""The district's clock: its time zone, the local day of an instant, and the instants that
bound local days.

Everything is stored in UTC; a *day* (ticket numbers, due dates, reports, warnings) is always
the calendar day in the district, Asia/Shanghai, whatever zone the server runs in.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    """Now, as an aware UTC instant (what the database stores)."""
    return datetime.now(UTC)


def local_date(at: datetime) -> date:
    """The calendar day in the district at the instant ``at``."""
    return at.astimezone(LOCAL_TZ).date()


def local_day(at: datetime) -> str:
    """The district's calendar day as ``2026-11-27`` (ticket numbers restart at local
    midnight)."""
    return local_date(at).isoformat()


def today(now: datetime | None = None) -> date:
    """The district's calendar day now (or at ``now``)."""
    return local_date(now or utcnow())


def day_start(day: date) -> datetime:
    """The instant local midnight opens ``day``."""
    return datetime.combine(day, time(), LOCAL_TZ)


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """The instants that open ``first`` and close ``last``, local time: a range of days is
    ``start <= at < end``."""
    return day_start(first), day_start(last + timedelta(days=1))


def local_minute(at: datetime) -> str:
    """An instant as the district's wall-clock time to the minute: ``2026-11-28 00:13``."""
    return at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def iso(value: date | None) -> str | None:
    """An instant or a day in ISO 8601 for JSON, or None."""
    return value.isoformat() if value else None
