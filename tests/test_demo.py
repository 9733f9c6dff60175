"""The demo county generator: realistic, coded, non-overlapping parcels that scale."""
from decimal import Decimal

import numpy as np
import shapely
from sqlalchemy import text

from app.demo import operations as demo
from gis import synth
from gis.area import gk3_zone_srid, mu


def test_village_layout_has_no_overlaps_or_slivers_and_is_not_a_grid():
    rng = np.random.default_rng(3)
    v = synth.village(rng, 1500, (425000, 4005000))
    polys = np.array([shapely.Polygon(s.ring) for s in v.fields] + list(v.homesteads))
    assert len(polys) > 1300
    assert shapely.is_valid(polys).all()
    tree = shapely.STRtree(polys)
    a, b = tree.query(polys, predicate="overlaps")
    assert (a < b).sum() == 0
    # Neighbours share their boundaries: the union's area equals the sum of areas.
    assert abs(shapely.union_all(polys).area - shapely.area(polys).sum()) < 1e-3
    # Not a square grid: strips of many shapes, at an angle, of realistic size.
    areas = shapely.area(polys[: len(v.fields)])
    assert 200 < np.median(areas) < 8000 and areas.std() > 500
    assert len({round(float(shapely.Polygon(s.ring).minimum_rotated_rectangle.length)) for s in
                v.fields[:50]}) > 20


def test_generated_county_in_the_database(dbs):
    row = dbs.execute(text("""
        SELECT count(*) AS n,
               bool_and(ST_IsValid(geom)) AS valid,
               bool_and(ST_SRID(geom) = 4490) AS srid,
               max(abs(scmj - ST_Area(ST_Transform(geom, survey_srid)))) AS area_err,
               bool_and(scmjm = round(scmj * 0.0015, 2)) AS mu_ok,
               bool_and((kind = 'contract' AND code LIKE
                        (SELECT fbfbm FROM collective c WHERE c.id = collective_id) || '%')
                        OR (kind = 'homestead' AND substr(code, 13, 2) = 'JC')) AS codes
        FROM parcel""")).one()
    assert row.n > 1500 and row.valid and row.srid and row.mu_ok and row.codes
    assert row.area_err < 0.02  # m², after the round trip to CGCS2000 and back
    overlaps = dbs.execute(text("""
        SELECT count(*) FROM parcel a JOIN parcel b ON a.geom && b.geom
        AND (a.id + 0) < (b.id + 0) AND ST_Relate(a.geom, b.geom, '2********')""")).scalar()
    assert overlaps == 0
    hh = dbs.execute(text("""SELECT count(*) FROM (SELECT household_code FROM parcel
        WHERE kind='homestead' GROUP BY household_code HAVING count(*) > 1) x""")).scalar()
    assert hh == 0  # one household, one homestead


def test_generator_scales_by_parameter_and_reports_progress(dbs):
    before = dbs.execute(text("SELECT count(*) FROM parcel")).scalar()
    seen = []
    totals = demo.generate(2500, seed=11, progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    after = dbs.execute(text("SELECT count(*) FROM parcel")).scalar()
    assert after - before == totals["parcels"] + totals["homesteads"]
    assert 2000 < after - before < 3200
    assert demo.plan(1_000_000).villages == 1000


def test_area_helpers():
    assert mu(666.67) == Decimal('1.00') and mu(3.0) == Decimal('0.00')
    assert mu(10.0) == Decimal('0.02')  # 0.015 rounds half up
    assert gk3_zone_srid(113.1) == 4547 and gk3_zone_srid(111.8) == 4546
    assert gk3_zone_srid(113.1, prefixed=True) == 4526
