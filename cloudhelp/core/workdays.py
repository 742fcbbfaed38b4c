"""Working days on China's calendar: statutory holidays and adjusted working days.

The official calendar is published year by year by the State Council. The district keeps it in
the database (``cloudhelp/domain/workcalendar.py``: seeded from the ``chinesecalendar`` package,
imported from a file for each new year, edited from the command line); this module does the
arithmetic on the copy of it that the process loaded last (``install``), so a due date costs no
query and the results are cached until the calendar changes.

A year the calendar does not hold falls back to Monday–Friday without the holidays fixed by date
(``FIXED_DATE_HOLIDAYS``) and says so (``estimated``), so a due date is never silently wrong.
Until a calendar is installed every year is estimated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

# The statutory holidays that fall on the same date every year (全国年节及纪念日放假办法, as amended
# in 2024, from 2025): 元旦 1 January, 劳动节 1-2 May, 国庆节 1-3 October. A year without its
# official calendar is estimated without them; the lunar holidays (春节, 清明, 端午, 中秋) and the
# weekends swapped around them (调休) come only with the State Council's calendar.
FIXED_DATE_HOLIDAYS = frozenset({(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)})


@dataclass(frozen=True)
class Calendar:
    """The official years: the days that differ from Monday–Friday, and which years are known.

    ``exceptions`` maps a holiday to False and an adjusted working day (调休上班) to True; any
    other day of a known year is a working day exactly when it is Monday to Friday. A day of
    another year is estimated: Monday to Friday, but for ``FIXED_DATE_HOLIDAYS``.
    """

    years: frozenset[int] = frozenset()
    exceptions: dict[date, bool] = field(default_factory=dict)
    revision: object = None  # what the database said when this copy was read

    def is_working_day(self, day: date) -> tuple[bool, bool]:
        if day.year not in self.years:
            return day.weekday() < 5 and (day.month, day.day) not in FIXED_DATE_HOLIDAYS, True
        return self.exceptions.get(day, day.weekday() < 5), False


_current = Calendar()


def current() -> Calendar:
    """The calendar this process computes with."""
    return _current


def install(calendar: Calendar) -> None:
    """Compute with ``calendar`` from now on (and forget results cached for the previous one)."""
    global _current
    _current = calendar
    is_working_day.cache_clear()
    add_working_days.cache_clear()
    working_days_between.cache_clear()


@lru_cache(maxsize=4096)
def is_working_day(day: date) -> tuple[bool, bool]:
    """(working?, estimated?) — estimated when the year is not in the calendar."""
    return _current.is_working_day(day)


def is_official_working_day(day: date) -> bool:
    """A working day by the official calendar: False on a holiday, a rest day, and any day of
    a year the calendar does not hold (nothing is planned on a day that may turn out a
    holiday)."""
    working, estimated = is_working_day(day)
    return working and not estimated


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


# ------------------------------------------------------------------ the package's years

# chinesecalendar names its holidays in English; the official calendar's names.
HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


@dataclass(frozen=True)
class Entry:
    """One day of the official calendar that differs from Monday–Friday."""

    day: date
    kind: str  # "holiday" or "workday"
    name: str


def package_entries() -> list[Entry]:
    """Every holiday and adjusted working day the installed chinesecalendar knows."""
    import chinese_calendar

    entries = [
        Entry(day, "holiday", HOLIDAY_NAMES.get(str(name), str(name)))
        for day, name in chinese_calendar.holidays.items()
    ] + [
        Entry(day, "workday", HOLIDAY_NAMES.get(str(name), str(name)))
        for day, name in chinese_calendar.workdays.items()
    ]
    return sorted(entries, key=lambda e: e.day)
