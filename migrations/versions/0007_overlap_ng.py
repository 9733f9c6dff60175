"""overlap_m2_ng: the overlap area without an exception block, for set-wise checks

overlap_m2 catches GEOS exceptions, and each call of a PL/pgSQL block with EXCEPTION opens a
subtransaction; past 64 in one transaction PostgreSQL's snapshots overflow and every query
slows down badly.  Set-wise checks (import validation, rights from a delivery) call this
variant instead: a snap-rounded overlay (OverlayNG with a grid), which does not raise on
nearly coincident edges (even ST_Intersects can, through GEOS's relate).

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(r"""
CREATE OR REPLACE FUNCTION overlap_m2_ng(a geometry, b geometry, srid int) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT ST_Area(ST_Transform(ST_Intersection(a, b,
           CASE WHEN ST_SRID(a) IN (4326, 4490) THEN 1e-9 ELSE 1e-4 END), srid))
$$;
""")


def downgrade():
    op.execute("DROP FUNCTION IF EXISTS overlap_m2_ng")
