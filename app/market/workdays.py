"""Working days on the Chinese public-holiday calendar, with its adjusted working weekends
(调休).

Source: `chinesecalendar`, which carries the State Council's published calendar (holidays and
the weekends worked in exchange) year by year.  It knows a year only once the State Council has
published it (around November of the year before) and raises `NotImplementedError` beyond.

Fallback for a year it does not know: the `holidays` package's China calendar (statutory
holidays computed by rule, lunar dates included, and any adjusted working weekends it knows)
with Saturdays and Sundays as rest days.  A window computed that way says so (`estimated`
is True, and the note names the years) so that the operator can check it once the official
calendar appears.  Nothing here is a hand-written list of dates.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache

import chinese_calendar
import holidays


@lru_cache(maxsize=16)
def _fallback(year: int):
    return holidays.China(years=year)


def is_working_day(day: dt.date) -> tuple[bool, bool]:
    """(is it a working day, was the fallback used)."""
    try:
        return chinese_calendar.is_workday(day), False
    except NotImplementedError:
        cal = _fallback(day.year)
        if day in getattr(cal, "weekend_workdays", set()):
            return True, True
        return day.weekday() < 5 and day not in cal, True


@dataclass
class Window:
    start: dt.date
    end: dt.date
    days: int
    estimated_years: list[int] = field(default_factory=list)

    @property
    def estimated(self) -> bool:
        return bool(self.estimated_years)


def announcement_window(start: dt.date, working_days: int) -> Window:
    """The window that runs `working_days` working days counting the first working day on or
    after `start` as day one; it ends on the last of them."""
    if working_days < 1:
        raise ValueError("working_days must be at least 1")
    day, counted, first, estimated = start, 0, None, set()
    while True:
        ok, fallback = is_working_day(day)
        if fallback:
            estimated.add(day.year)
        if ok:
            counted += 1
            first = first or day
            if counted == working_days:
                return Window(first, day, working_days, sorted(estimated))
        day += dt.timedelta(days=1)


def working_days_between(start: dt.date, end: dt.date) -> int:
    n, day = 0, start
    while day <= end:
        n += is_working_day(day)[0]
        day += dt.timedelta(days=1)
    return n
