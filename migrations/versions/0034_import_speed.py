"""Import speed (issue 18): the staged tables' statistics without their attributes.

refresh_statistics() analysed the whole of import_feature and import_record after each
staging, the jsonb attributes too: sorting a sample of 30,000 jsonb documents for their
distinct values and most common values was about two thirds of the time (0.9 of 1.3 s and
0.9 of 1.35 s on the bench's 20,000-parcel delivery, machine under load) and no check's plan
uses them — the checks read attributes with ->>, whose selectivity the planner estimates
without column statistics.  The staging tables are now analysed on the columns the plans use:
keys, batch, layer or table, status, code, and the two geometries (their && estimates in the
overlap joins).  Row counts (what 0026 added this for) come with any ANALYZE.

Revision ID: 0034_import_speed
Revises: 0032_fk_indexes
"""
from alembic import op

revision = "0034_import_speed"
down_revision = "0032_fk_indexes"
branch_labels = None
depends_on = None

REFRESH = """
CREATE OR REPLACE FUNCTION refresh_statistics(t text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF t = 'import_feature' THEN
    ANALYZE import_feature (id, batch_id, layer, fid, code, status, corrected_from_id, geom,
                            geom_stored);
  ELSIF t = 'import_record' THEN
    ANALYZE import_record (id, batch_id, tbl, rownum, status);
  ELSIF t = 'parcel' THEN
    ANALYZE parcel;
  ELSE
    RAISE EXCEPTION 'refresh_statistics: % is not on the list', t;
  END IF;
END $$;
"""

# 0026's definition, restored on downgrade (its text, not a read of 0026's file).
REFRESH_0026 = """
CREATE OR REPLACE FUNCTION refresh_statistics(t text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF t NOT IN ('parcel', 'import_feature', 'import_record') THEN
    RAISE EXCEPTION 'refresh_statistics: % is not on the list', t;
  END IF;
  EXECUTE format('ANALYZE %I', t);
END $$;
"""


def upgrade():
    op.execute(REFRESH)


def downgrade():
    op.execute(REFRESH_0026)
