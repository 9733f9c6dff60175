"""The Web-Mercator copy without PROJ's datum search (issue 18 §1: one registration).

`parcel.geom_web` was `ST_Transform(geom, 3857)`: CGCS2000 (EPSG:4490) to WGS 84 / Pseudo-
Mercator.  PROJ looks for a transformation between the two datums each time PostGIS builds a
transformation, and PostGIS keeps it only for the statement that asked: every single-row
INSERT (a registration, an amendment, each part of a split) paid ~0.77 ms for it, against
~0.035 ms for the same polygon from EPSG:4326 (measured on the bench register, 2026-11-30) —
the largest single part of a registration's time in the database.

PROJ knows no transformation between CGCS2000 and WGS 84 other than the identity ("ballpark"),
so reading the stored coordinates as WGS 84 gives the same Web-Mercator coordinates, bit for
bit: checked on the 29,372 parcels of the bench register (ST_AsBinary equal for all), and by
tests/test_geom_web.py on every parcel of the test register and on generated polygons across
China.  Tiles and their ETags are unchanged.

PostgreSQL 15 cannot change a generated column's expression in place: the column is dropped
and added again in one ALTER TABLE (one rewrite of `parcel` under an ACCESS EXCLUSIVE lock,
its GiST index built anew) — minutes at 10⁷ parcels: a maintenance window's work.  History is
not touched: the column is derived from `geom`, and no row's recorded values change.

Revision ID: 0056_geom_web_fast
Revises: 0055_import_num_bounded
"""
from alembic import op

revision = "0056_geom_web_fast"
down_revision = "0055_import_num_bounded"
branch_labels = None
depends_on = None

FAST = "ST_Transform(ST_SetSRID(geom, 4326), 3857)"
SEARCHED = "ST_Transform(geom, 3857)"


def _generate(expression: str) -> None:
    op.execute("ALTER TABLE parcel DROP COLUMN geom_web, ADD COLUMN geom_web "
               f"geometry(MultiPolygon, 3857) GENERATED ALWAYS AS ({expression}) STORED")
    op.execute("CREATE INDEX idx_parcel_geom_web ON parcel USING gist (geom_web)")


def upgrade():
    _generate(FAST)


def downgrade():
    _generate(SEARCHED)
