"""parcel.geom_web reads the stored CGCS2000 coordinates as WGS 84 (migration 0056): PROJ's only
operation between the two datums is the identity, so the Web-Mercator copy is the one the
searched transformation (`ST_Transform(geom, 3857)`) gives, bit for bit — without the search
on every single-row insert.  Shown on every parcel of the test register, on parcels registered
here through the operation, and on generated polygons anywhere in China's extent."""
from __future__ import annotations

import random

import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from app.parcels import operations as ops

SAME = """SELECT count(*) AS n, count(*) FILTER (WHERE ST_AsBinary(geom_web)
                  = ST_AsBinary(ST_Transform(geom, 3857))) AS same FROM parcel"""


def test_every_parcel_has_the_searched_transformations_web_copy(dbs):
    col = dbs.execute(text("SELECT id, fbfbm FROM collective ORDER BY id LIMIT 1")).one()
    rnd = random.Random(53)
    x0 = rnd.uniform(600000, 800000)  # EPSG:4547 (3-degree zone, CM 114 E), away from villages
    y0 = rnd.uniform(3000000, 4500000)
    for i in range(5):
        ring = [(x0 + i * 60 + rnd.uniform(0, 5), y0 + rnd.uniform(0, 5)),
                (x0 + i * 60 + 50, y0 + rnd.uniform(0, 5)),
                (x0 + i * 60 + 50 + rnd.uniform(0, 5), y0 + 40),
                (x0 + i * 60, y0 + 40 + rnd.uniform(0, 5))]
        ops.register("bureau", "contract", f"{col.fbfbm}7{i:04d}", col.id,
                     shapely.Polygon(ring).wkt, 4547, "测试")
    dbs.flush()
    row = dbs.execute(text(SAME)).one()
    assert row.n >= 5 and row.same == row.n


def test_the_generation_expression_is_the_fast_one(dbs):
    expr = dbs.scalar(text("""
        SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
        JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
        WHERE d.adrelid = 'parcel'::regclass AND a.attname = 'geom_web'"""))
    assert "4326" in expr and "st_transform" in expr.lower(), expr


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(73.5, 135.0), st.floats(18.0, 53.5),
                          st.floats(1e-5, 0.05), st.floats(1e-5, 0.05)),
                min_size=1, max_size=20))
def test_generated_polygons_map_alike_either_way(dbs, boxes):
    wkts = [shapely.box(lon, lat, lon + w, lat + h).wkt for lon, lat, w, h in boxes]
    differ = dbs.execute(text("""
        SELECT count(*) FROM unnest(CAST(:w AS text[])) w
        WHERE ST_AsBinary(ST_Transform(ST_GeomFromText(w, 4490), 3857))
           <> ST_AsBinary(ST_Transform(ST_SetSRID(ST_GeomFromText(w, 4490), 4326), 3857))"""),
        {"w": wkts}).scalar()
    assert differ == 0
