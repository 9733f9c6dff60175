"""parcel_guard() computes the overlap area only where the interiors meet (0034_import_speed):
a neighbour sharing only a boundary costs a relate, not an intersection.  The rule is unchanged:
touching parcels are registered, overlaps above the tolerance are refused with the parcel and
the area, and a registered parcel whose geometry is invalid (ST_Relate raises on it) is still
checked — overlap_m2 repairs it — instead of turning the registration into an error."""
from __future__ import annotations

import random

import pytest
import shapely
from sqlalchemy import text

from app.errors import DomainError
from app.parcels import operations as ops

X0, Y0 = 712000, 4003000  # EPSG:4547, away from the seeded villages


def _collective(dbs):
    return dbs.execute(text("SELECT id, fbfbm FROM collective ORDER BY id LIMIT 1")).one()


def _insert_raw(dbs, col, code, wkt):
    """A registered parcel written past the operation (as legacy data may be): the guard
    still runs, the operation's own geometry checks do not."""
    dbs.execute(text("""INSERT INTO parcel (kind, code, collective_id, scmj, scmjm, survey_srid,
        geom) SELECT 'contract', :c, :col, 100, 0.15, 4547,
        ST_Multi(ST_Transform(ST_GeomFromText(:w, 4547), 4490))"""),
                {"c": code, "col": col.id, "w": wkt})


def test_touching_neighbours_register_and_overlaps_are_refused(dbs):
    col = _collective(dbs)
    rnd = random.Random(21)
    w = 40.0
    # A row of fields sharing boundaries: each one registers (its neighbour only touches it).
    for i in range(6):
        box = shapely.box(X0 + i * w, Y0, X0 + (i + 1) * w, Y0 + 30)
        ops.register("bureau", "contract", f"{col.fbfbm}9{i:04d}", col.id, box.wkt, 4547, "测试")
    # Shifted onto its neighbours by a random amount above the tolerance: refused, with the
    # neighbour it overlaps and the area derived from the shift.
    for k in range(4):
        shift = rnd.uniform(0.5, 5.0)
        i = rnd.randrange(1, 6)
        box = shapely.box(X0 + i * w - shift, Y0 + 30 - 10, X0 + (i + 1) * w - shift, Y0 + 60)
        with pytest.raises(DomainError) as e:
            ops.register("bureau", "contract", f"{col.fbfbm}98{k:03d}", col.id, box.wkt, 4547,
                         "测试")
        assert e.value.code == "parcel.overlap"
        msg = e.value.message("en")
        area = float(msg.split(" by ")[1].split(" ")[0])
        # 10 m of the row's depth overlap, across the shift (into field i-1) or the rest
        assert area == pytest.approx(10 * shift, rel=0.02) or area == pytest.approx(
            10 * (w - shift), rel=0.02), msg


def test_invalid_registered_neighbour_is_still_checked(dbs):
    col = _collective(dbs)
    # A bow-tie (self-intersecting) registered parcel; ST_Relate raises on it.
    bow = (f"POLYGON(({X0} {Y0 + 100}, {X0 + 50} {Y0 + 150}, {X0 + 50} {Y0 + 100}, "
           f"{X0} {Y0 + 150}, {X0} {Y0 + 100}))")
    _insert_raw(dbs, col, f"{col.fbfbm}97500", bow)
    assert not dbs.scalar(text("SELECT ST_IsValid(geom) FROM parcel WHERE code = :c"),
                          {"c": f"{col.fbfbm}97500"})
    # A parcel over one of its triangles: refused for the overlap, not an error.
    over = shapely.box(X0 + 30, Y0 + 110, X0 + 50, Y0 + 140)
    with pytest.raises(DomainError) as e:
        ops.register("bureau", "contract", f"{col.fbfbm}97501", col.id, over.wkt, 4547, "测试")
    assert e.value.code == "parcel.overlap" and f"{col.fbfbm}97500" in e.value.message("en")
    # One beside it, its box touching the bow-tie's box only: registered.
    beside = shapely.box(X0 + 50, Y0 + 100, X0 + 80, Y0 + 150)
    p = ops.register("bureau", "contract", f"{col.fbfbm}97502", col.id, beside.wkt, 4547,
                     "测试")
    assert p.code == f"{col.fbfbm}97502"
