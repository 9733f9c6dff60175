"""staging speed: the CGCS2000 geometry is staged beside the delivered one; the spatial index
on staged geometries is built per batch after loading (partial index), not maintained row by row

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("import_feature", sa.Column(
        "geom_stored", Geometry(srid=4490, spatial_index=False, from_text="ST_GeomFromEWKT",
                                name="geometry"), nullable=True))
    op.execute("DROP INDEX IF EXISTS ix_import_feature_geom")


def downgrade():
    op.execute("CREATE INDEX IF NOT EXISTS ix_import_feature_geom ON import_feature "
               "USING gist (geom)")
    op.drop_column("import_feature", "geom_stored")
