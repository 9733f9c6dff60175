"""Resident ID numbers (GB 11643-1999): structure, check digit, birth date, sex, masking."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")


class IdNumberError(ValueError):
    """`reason` is one of: shape, birth_date, check_digit."""

    def __init__(self, reason: str, number: str, expected: str | None = None):
        self.reason = reason
        self.number = number
        self.expected = expected
        super().__init__(f"{reason}: {number}")


@dataclass(frozen=True)
class IdInfo:
    number: str
    division: str
    birth_date: dt.date
    sex: str  # "1" male, "2" female (GB/T 2261.1)


def check_digit(first17: str) -> str:
    return CHECK[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def normalise(number: str) -> str:
    return (number or "").strip().upper()


def parse(number: str) -> IdInfo:
    """Validate and decode; raise IdNumberError naming what is wrong."""
    n = normalise(number)
    if not _SHAPE.match(n):
        raise IdNumberError("shape", n)
    try:
        born = dt.date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
    except ValueError:
        raise IdNumberError("birth_date", n) from None
    if born.year < 1850 or born > dt.date.today():
        raise IdNumberError("birth_date", n)
    expected = check_digit(n[:17])
    if n[17] != expected:
        raise IdNumberError("check_digit", n, expected)
    return IdInfo(n, n[:6], born, "1" if int(n[16]) % 2 else "2")


def is_valid(number: str) -> bool:
    try:
        parse(number)
    except IdNumberError:
        return False
    return True


def mask(number: str | None) -> str:
    """140404**********1X — the region and the last two characters (sex digit and check digit)
    kept; the birth date and the rest of the sequence hidden.  Pages that show a masked number
    show at most the birth *year* beside it; even the full birth date beside this mask leaves
    about ten candidates (two hidden sequence digits, one check digit), so no shown field
    completes it."""
    if not number:
        return ""
    n = normalise(number)
    if len(n) <= 10:
        return "*" * len(n)
    return n[:6] + "*" * (len(n) - 8) + n[-2:]


def mask_phone(phone: str | None) -> str:
    if not phone:
        return ""
    p = phone.strip()
    return p[:3] + "****" + p[-4:] if len(p) >= 11 else "*" * len(p)


def mask_name(name: str | None) -> str:
    """谭* / 欧阳** — the family name kept, the given name hidden (public pages)."""
    if not name:
        return ""
    n = name.strip()
    keep = 2 if len(n) >= 4 else 1
    return n[:keep] + "*" * (len(n) - keep)
