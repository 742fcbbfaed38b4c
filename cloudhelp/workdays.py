"""Working days on China's calendar: statutory holidays and adjusted working days.

The official calendar is published year by year (chinesecalendar ships each year once the
State Council announces it). For a day beyond the published years the calendar falls back to
Monday–Friday and says so (``estimated``), so a due date is never silently wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar


@lru_cache(maxsize=4096)
def is_working_day(day: date) -> tuple[bool, bool]:
    """(working?, estimated?) — estimated when the year is not yet published."""
    try:
        return bool(chinese_calendar.is_workday(day)), False
    except NotImplementedError:
        return day.weekday() < 5, True


@dataclass(frozen=True)
class DueDate:
    day: date
    estimated: bool


@lru_cache(maxsize=65536)  # many cases share an acceptance day and a limit
def add_working_days(start: date, days: float) -> DueDate:
    """The day on which ``days`` working days after ``start`` are complete.

    Counting starts the working day after ``start`` (the day of acceptance is not counted);
    half days round up to a whole day: a 0.5-day limit falls due the next working day.
    """
    remaining = math.ceil(days)
    day = start
    estimated = False
    while remaining > 0:
        day += timedelta(days=1)
        working, guessed = is_working_day(day)
        estimated = estimated or guessed
        if working:
            remaining -= 1
    return DueDate(day, estimated)


@lru_cache(maxsize=65536)
def working_days_between(first: date, last: date) -> int:
    """Working days in the half-open range (first, last]: how long a clock stood still."""
    count = 0
    day = first
    while day < last:
        day += timedelta(days=1)
        if is_working_day(day)[0]:
            count += 1
    return count
