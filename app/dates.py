"""Calendar arithmetic shared by every feature (infrastructure: imports nothing from app).

One definition per rule: "six months after X" (settlement's residence period, withdrawal's notice
to the contract-issuing party, 农村土地承包法 art 30) is `add_months`, here and nowhere else."""
from __future__ import annotations

import calendar
import datetime as dt


def add_months(d: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months later, clamped to the month's last day
    (31 Aug + 6 months = 28/29 Feb)."""
    y, m = divmod(d.month - 1 + months, 12)
    year = d.year + y
    return dt.date(year, m + 1, min(d.day, calendar.monthrange(year, m + 1)[1]))
