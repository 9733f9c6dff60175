"""Scale (issue 18): fresh statistics for the staged ownership tables.

The import staged a complete delivery's tables (CBF, CBF_JTCY, CBHT, CBDKXX …) into
import_record but only ever analysed import_feature: the planner met each new batch's
thousands of rows with the statistics of the batch before (or of an empty table), and chose
nested loops over them — the check that one parcel is contracted to one household took 37–43 s
for a delivery of 3,000 parcels (bench/, a complete delivery) and grew with the square of its
size.  refresh_statistics() now accepts import_record too; the app calls it after staging.

With fresh statistics the planner chose parallel plans for the field checks of a large
batch, and met functions that catch exceptions (a subtransaction) but were marked PARALLEL
SAFE: "cannot start subtransactions during a parallel operation" (bench, 32,000 parcels).
They are PARALLEL RESTRICTED now (run by the leader; the rest of the plan may still be
parallel); tests/test_scale.py checks that no function of ours with an exception block is
parallel safe.

Citus-ready (issue 18 §3, docs/scaling.md): the county code (the future distribution column)
is carried by the register's big coded tables as a stored generated column — the first six
digits of the parcel code (DKBM / 不动产单元代码), of the household code (CBFBM) and of the
issuing party's code (FBFBM) are the county's (GB/T 2260; NY/T 2539).  Derived, so it can
never disagree with the code.  tests/test_citus_ready.py states the whole target; what is not
met yet is marked there (xfail strict) and listed in docs/scaling.md.

Revision ID: 0026_scale
Revises: 0020_market_attacks
"""
from alembic import op

revision = "0026_scale"
down_revision = "0022_membership"
branch_labels = None
depends_on = None

REFRESH = """
CREATE OR REPLACE FUNCTION refresh_statistics(t text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF t NOT IN ({tables}) THEN
    RAISE EXCEPTION 'refresh_statistics: % is not on the list', t;
  END IF;
  EXECUTE format('ANALYZE %I', t);
END $$;
"""


CATCHING = ("gb11643_valid(text)", "overlap_m2(geometry, geometry, integer)", "import_date(text)")


COUNTY = {"parcel": "code", "household": "cbfbm", "collective": "fbfbm"}


def upgrade():
    op.execute(REFRESH.format(tables="'parcel', 'import_feature', 'import_record'"))
    for table, col in COUNTY.items():
        op.execute(f"ALTER TABLE {table} ADD COLUMN county_code varchar(6) NOT NULL "
                   f"GENERATED ALWAYS AS (left({col}, 6)) STORED")
    for f in CATCHING:
        op.execute(f"ALTER FUNCTION {f} PARALLEL RESTRICTED")


def downgrade():
    for table in COUNTY:
        op.execute(f"ALTER TABLE {table} DROP COLUMN county_code")
    for f in CATCHING:
        op.execute(f"ALTER FUNCTION {f} PARALLEL SAFE")
    op.execute(REFRESH.format(tables="'parcel', 'import_feature'"))
