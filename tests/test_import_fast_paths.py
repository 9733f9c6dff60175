"""The validation's fast paths (issue 18) say exactly what the exact functions say.

The field, term and ID checks no longer call import_date() and gb11643_fault() for every value:
an inline expression first decides that a value is certainly fine, and only the others go to
the function.  Here both are run side by side on generated values — valid ones, and each kind
of damage (every character position, leap days, month ends, separators, spaces, years before
1880 and after today) — and must agree on every one."""
from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import text

from app.extensions import db
from app.imports import validation as v

pytestmark = pytest.mark.usefixtures("dbs")


def _check_char(body: str) -> str:
    s = sum(int(c) * w for c, w in zip(body, v.ID_WEIGHTS, strict=True))
    return "10X98765432"[s % 11]


def _dates(rnd: random.Random, n: int) -> list[str]:
    out = ["", " ", "2000-02-29", "1900-02-29", "2100-02-28", "2024-02-29", "2023-02-29",
           "0000-01-01", "0001-01-01", "1879-12-31", "1880-01-01", "9999-12-31", "2020-13-01",
           "2020-00-10", "2020-04-31", "2020-06-30", "2020-12-31", "1999-12-00", " 2020-01-01",
           "2020-01-01 ", "2020/01/01", "2020.01.01", "20200101", "2020-0101", "2020-1-01",
           "２０２０-01-01", "2020--01-01", "2020-01-01x", "abcd-ef-gh"]
    today = dt.date.today()
    for _ in range(n):
        d = dt.date(1850, 1, 1) + dt.timedelta(days=rnd.randint(0, 200 * 365))
        sep = rnd.choice(["-", "/", ".", ""])
        s = d.strftime(f"%Y{sep}%m{sep}%d")
        r = rnd.random()
        if r < 0.15:  # a day past the month's end
            s = f"{d.year:04d}{sep}{d.month:02d}{sep}{rnd.choice([29, 30, 31, 32]):02d}"
        elif r < 0.2:
            s = s.replace("0", "O", 1)
        out.append(s)
    out += [(today + dt.timedelta(days=k)).isoformat() for k in (-1, 0, 1, 2)]
    return out


def _ids(rnd: random.Random, n: int) -> list[str]:
    out = ["", "X", "11010519491231002", "110105194912310021", "11010519491231002x"]
    today = dt.date.today()
    for _ in range(n):
        prov = rnd.choice(v.PROVINCES + ("10", "99", "00", "16"))
        region = prov + rnd.choice(["0000", "0102", f"{rnd.randint(0, 9999):04d}"])
        birth = dt.date(1870, 1, 1) + dt.timedelta(days=rnd.randint(0, 160 * 365))
        ymd = birth.strftime("%Y%m%d")
        r = rnd.random()
        if r < 0.1:
            ymd = f"{birth.year:04d}{birth.month:02d}{rnd.choice([29, 30, 31, 32]):02d}"
        elif r < 0.13:
            ymd = (today + dt.timedelta(days=rnd.randint(-1, 2))).strftime("%Y%m%d")
        body = region + ymd + f"{rnd.randint(0, 999):03d}"
        num = body + _check_char(body)
        r = rnd.random()
        if r < 0.2:  # a wrong check character
            num = body + rnd.choice("0123456789X")
        elif r < 0.3:  # a character changed anywhere
            i = rnd.randrange(18)
            num = num[:i] + rnd.choice("0123456789Xx ") + num[i + 1:]
        elif r < 0.35:
            num = num[:rnd.randrange(18)]
        out.append(num)
    return out


def test_date_fast_path_agrees_with_import_date():
    values = _dates(random.Random(11), 3000)
    x = "x.v"
    rows = db.session.execute(text(f"""
        SELECT x.v, import_date(x.v) AS exact, {v.date_sql(x)} AS fast,
               {v.sure_date_sql(x, False)} AS sure, {v.sure_date_sql(x, True)} AS sure_past
        FROM unnest(CAST(:vals AS text[])) AS x(v)"""), {"vals": values}).all()
    today = db.session.scalar(text("SELECT current_date"))
    assert len(rows) == len(values)
    for r in rows:
        assert r.fast == r.exact, r.v
        if r.sure:  # certainly fine: a real date, not before 1880
            assert r.exact is not None and r.exact >= dt.date(1880, 1, 1), r.v
        if r.sure_past:
            assert r.exact is not None and dt.date(1880, 1, 1) <= r.exact <= today, r.v
    # The fast path decides most well-formed dates itself (else it would be no fast path).
    assert sum(bool(r.sure) for r in rows) > len(rows) // 2


def test_id_fast_path_agrees_with_gb11643_fault():
    values = _ids(random.Random(12), 4000)
    n = "x.v"
    rows = db.session.execute(text(f"""
        SELECT x.v, gb11643_fault(x.v, current_date) AS exact, {v.id_fault_sql(n)} AS fast,
               {v.sure_id_sql(n)} AS sure
        FROM unnest(CAST(:vals AS text[])) AS x(v)"""), {"vals": values}).all()
    assert len(rows) == len(values)
    faults = {}
    for r in rows:
        assert r.fast == r.exact, r.v
        if r.sure:
            assert r.exact is None, r.v
        faults[r.exact] = faults.get(r.exact, 0) + 1
    # Every kind of fault was generated, and valid numbers too.
    assert {None, "length", "region", "birth_date", "check_digit"} <= set(faults), faults
    # A valid number born on 29 February goes the slow way; nearly all others do not.
    assert sum(bool(r.sure) for r in rows) > 0.9 * faults[None]


def _dict_reader_rows(text: str) -> list[dict]:
    """The tables as csv.DictReader reads them (read_table's general way)."""
    import csv
    import io

    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        extra = r.pop(None, None)
        row = {str(k).strip(): val for k, val in r.items() if k is not None}
        if extra:
            row["_extra"] = extra
        rows.append(row)
    return rows


def test_table_reader_agrees_with_dict_reader(tmp_path):
    """Short and long rows, blank lines, quoted commas and quotes, spaces, duplicate and
    padded header names: the reader gives DictReader's rows (the header named as the standard
    spells it, a name given twice kept apart, extra cells under _extra, missing ones None)."""
    from gis import io as gio
    from tests.test_import_fast_path_attacks import _dict_reader_rows

    rnd = random.Random(13)
    cells = ["a", "b", '"x,y"', "", "c d", '"q""r"', " e ", "甲"]
    for _ in range(3000):
        lines = [",".join(rnd.choice(cells) for _ in range(rnd.randint(0, 5)))
                 for _ in range(rnd.randint(0, 6))]
        text_ = "\n".join(lines) + rnd.choice(["", "\n", "\r\n"])
        p = tmp_path / "t.csv"
        p.write_bytes(text_.encode())
        assert gio.read_table(p) == _dict_reader_rows(text_), text_
