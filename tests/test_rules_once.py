"""One definition per rule (issue 16, point 4): where a rule has a Python and a SQL form, they are
the same rule — checked here on generated inputs, not on one sample value."""
import datetime as dt
import math
import random

import numpy as np
import pytest
import shapely
import shapely.affinity
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app import codes
from app.campaigns import operations as campaigns
from app.campaigns.models import Campaign
from app.errors import DomainError
from app.people import operations as people
from gis import stored
from gis.area import overlap_m2
from gis.io import to_cgcs2000
from tests.test_campaigns import campaign  # noqa: F401 (fixture)

# ------------------------------------------------------------------ the notice's last day

def test_notice_last_day_python_and_sql_agree(dbs):
    rng = random.Random(16)
    base = dt.date(2026, 1, 1)
    for _ in range(40):
        end = base + dt.timedelta(days=rng.randrange(0, 800))
        start = end - dt.timedelta(days=rng.randrange(1, 30))
        for today in (start, end - dt.timedelta(days=1), end, end + dt.timedelta(days=1),
                      end + dt.timedelta(days=rng.randrange(2, 60))):
            c = Campaign(fbfbm="x", status="notice", notice_start=start, notice_end=end)
            sql = dbs.execute(text("SELECT notice_has_run(:e, :t)"), {"e": end, "t": today}).scalar()
            assert campaigns.notice_has_run(c, today) is sql is (today > end)
            # objections and registration never share a day, and one of them is always possible
            # once the notice has started
            assert campaigns.notice_running(c, today) is (not sql)
    assert dbs.execute(text("SELECT notice_has_run(NULL, current_date)")).scalar() is False


def test_on_the_last_notice_day_objections_are_taken_and_registration_refused(campaign, dbs):  # noqa: F811
    """The boundary: the notice's last day is today. An objection is still accepted; registration
    is refused by the operation and by the database; both follow from notice_end alone."""
    days = campaigns.notice_days()
    # the database's day (its time zone may be ahead of the test process's): the guard uses it
    db_today = dbs.execute(text("SELECT current_date")).scalar()
    campaigns.publish_notice("bureau", campaign, start=db_today - dt.timedelta(days=days))
    last = campaign.notice_end
    assert last == db_today
    o = campaigns.lodge_objection("bureau", campaign, "boundary", "四至不对", "村民丁", today=last)
    campaigns.dismiss("bureau", o, "经核查四至无误")
    with pytest.raises(DomainError) as e:
        campaigns.register("bureau", campaign, today=last)
    assert e.value.code == "campaign.notice"
    state = dbs.execute(text(
        "SELECT status, notice_end, current_date AS today, notice_has_run(notice_end, current_date)"
        " AS over FROM campaign WHERE id = :i"), {"i": campaign.id}).one()
    assert (state.status, state.notice_end, state.over) == ("notice", last, False), state
    with pytest.raises(DBAPIError, match="campaign.notice"):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE campaign SET status = 'registered', registrar = 'x', "
                             "registered_at = now() WHERE id = :i"), {"i": campaign.id})
    # the day after the last day: no more objections
    with pytest.raises(DomainError) as e:
        campaigns.lodge_objection("bureau", campaign, "area", "x", "丙",
                                  today=last + dt.timedelta(days=1))
    assert e.value.code == "campaign.not_in_notice"
    # and the database lets registration through once the last day is yesterday
    with dbs.begin_nested():
        dbs.execute(text("UPDATE campaign SET notice_start = notice_start - 1, "
                         "notice_end = notice_end - 1 WHERE id = :i"), {"i": campaign.id})
        dbs.execute(text("UPDATE campaign SET status = 'registered', registrar = 'x', "
                         "registered_at = now() WHERE id = :i"), {"i": campaign.id})


# ------------------------------------------------------------------ the stored geometry

def _polygons(rng, n, srid):
    """Random polygons with repeated vertices (exact and within the tolerance) in `srid`."""
    out = []
    for _ in range(n):
        if srid in stored.GEOGRAPHIC_SRIDS:
            x0, y0, size, tol = 113 + rng.random(), 36 + rng.random(), 0.001, 1e-9
        else:
            x0, y0, size, tol = 38_500_000 + rng.random() * 1e4, 4_000_000 + rng.random() * 1e4, \
                50.0, 0.0004
        pts = []
        for k in range(rng.randrange(4, 9)):
            a = 6.283 * k / 8 + rng.random() * 0.3
            r = size * (0.6 + rng.random() * 0.4)
            p = (x0 + r * math.cos(a), y0 + r * math.sin(a))
            pts.append(p)
            if rng.random() < 0.4:  # a repeated vertex, exact or within the tolerance
                pts.append((p[0] + tol * rng.random(), p[1]))
        out.append(shapely.Polygon(pts))
    return out


@pytest.mark.parametrize("srid", [4490, 4526])
def test_stored_geometry_python_sql_text_and_sql_function_agree(dbs, srid):
    rng = random.Random(srid)
    polys = _polygons(rng, 12, srid)
    py = to_cgcs2000(np.array(polys, dtype=object), srid)
    for poly, mine in zip(polys, py, strict=True):
        row = dbs.execute(text(
            "SELECT ST_AsText(stored_geometry(g)) AS by_function, ST_AsText(" + stored.STORED.format(g="g")
            + ") AS by_text, ST_NPoints(stored_geometry(g)) AS npoints FROM (SELECT ST_GeomFromText(:w, :s) "
            "AS g) x"), {"w": poly.wkt, "s": srid}).one()
        assert row.by_function == row.by_text  # the SQL text the app uses is the database's function
        db_geom = shapely.from_wkt(row.by_function)
        assert row.npoints == shapely.get_num_coordinates(mine)  # same vertices dropped
        # same place: coordinates agree to far below a millimetre (PROJ in both)
        assert db_geom.hausdorff_distance(mine) < 1e-9


# ------------------------------------------------------------------ household-code ranges

def test_household_code_ranges_are_one_definition(dbs):
    """Python (people.check_cbfbm), the validation SQL condition and the table's CHECK agree on
    every type at each range's edges and beyond."""
    fbfbm = "14040410120101"
    for kind, (lo, hi) in codes.CBFBM_SEQUENCE.items():
        for seq in (lo - 1, lo, hi, hi + 1):
            if not 0 <= seq <= 9999:
                continue
            code = f"{fbfbm}{seq:04d}"
            try:
                people.check_cbfbm(code, fbfbm, kind)
                py = True
            except DomainError:
                py = False
            sql = dbs.execute(text("SELECT " + codes.cbfbm_sequence_sql(":c", ":k")),
                              {"c": code, "k": kind}).scalar()
            assert py is bool(sql) is (lo <= seq <= hi), (kind, seq)
    check = dbs.execute(text(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conname = 'ck_household_cbfbm_sequence_matches_type'")).scalar()
    for lo, hi in codes.CBFBM_SEQUENCE.values():
        assert f"'{lo:04d}'" in check and f"'{hi:04d}'" in check


# ------------------------------------------------------------------ the overlap area

def test_overlap_area_python_and_sql_agree(dbs):
    """gis.area.overlap_m2 (parcel split) and the database's overlap_area_m2 (the guard trigger
    through overlap_m2, the import checks) give the same area on generated overlapping pairs;
    overlap_m2 and overlap_m2_ng are the same function by their old names."""
    rng = random.Random(2539)
    srid = 4526
    for _ in range(25):
        x0, y0 = 38_500_000 + rng.random() * 1e4, 4_000_000 + rng.random() * 1e4
        a = shapely.Polygon([(x0 + 50 * math.cos(t / 7 * 6.283 + rng.random() * 0.2),
                              y0 + 50 * math.sin(t / 7 * 6.283 + rng.random() * 0.2))
                             for t in range(7)])
        b = shapely.affinity.translate(a, rng.uniform(-80, 80), rng.uniform(-80, 80))
        py = overlap_m2(a, b)
        row = dbs.execute(text(
            "SELECT overlap_area_m2(a, b, :s) AS one, overlap_m2(a, b, :s) AS guard, "
            "overlap_m2_ng(a, b, :s) AS ng FROM (SELECT ST_GeomFromText(:a, :s) AS a, "
            "ST_GeomFromText(:b, :s) AS b) x"), {"a": a.wkt, "b": b.wkt, "s": srid}).one()
        assert abs(row.one - py) < 1e-3, (row.one, py)
        assert row.guard == row.one == row.ng
        assert abs(py - a.intersection(b).area) < 1e-2  # and it is the overlap's area
