"""The survey import survives real deliveries: knock-on faults linked to their cause, the
upload kept with its batch, longer table names (the other NY/T 2539 tables), and SQL helpers
for set-wise field checks (a date test that never raises, the ID number taken apart).

The app's role owns nothing (0012_guard_structural), so dropping a finished batch's staging
index is an owner-run function, as 0012's staging_batch_index() creates it.

Revision ID: 0011_import_robust
Revises: 0012_guard_structural
"""
import os

import sqlalchemy as sa
from alembic import op

revision = "0011_import_robust"
down_revision = "0012_guard_structural"
branch_labels = None
depends_on = None

UP = r"""
-- A real calendar date from a delivered text ('YYYY-MM-DD', 'YYYYMMDD', 'YYYY/MM/DD'), or NULL.
CREATE OR REPLACE FUNCTION import_date(v text) RETURNS date
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE d text := regexp_replace(coalesce(v, ''), '[-/.]', '', 'g');
        r date;
BEGIN
  IF d !~ '^[0-9]{8}$' THEN RETURN NULL; END IF;
  BEGIN
    r := to_date(d, 'YYYYMMDD');
  EXCEPTION WHEN others THEN RETURN NULL;
  END;
  IF to_char(r, 'YYYYMMDD') <> d THEN RETURN NULL; END IF;
  RETURN r;
END $$;

-- A delivered number, or NULL when the text is not one.
CREATE OR REPLACE FUNCTION import_num(v text) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN btrim(v) ~ '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]{1,2})?$'
              THEN btrim(v)::float8 END
$$;

-- What is wrong with a resident ID number (GB 11643-1999), or NULL when nothing is:
-- 'length', 'region', 'birth_date' or 'check_digit' — the first fault found, in that order.
CREATE OR REPLACE FUNCTION gb11643_fault(n text, today date) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE b date;
BEGIN
  IF n IS NULL OR n !~ '^[0-9]{17}[0-9X]$' THEN RETURN 'length'; END IF;
  -- Province codes of GB/T 2260 (11–15, 21–23, 31–37, 41–46, 50–54, 61–65, 71, 81, 82).
  IF substr(n, 1, 2) NOT IN ('11','12','13','14','15','21','22','23','31','32','33','34','35',
     '36','37','41','42','43','44','45','46','50','51','52','53','54','61','62','63','64','65',
     '71','81','82') OR substr(n, 3, 4) = '0000' THEN
    RETURN 'region';
  END IF;
  b := import_date(substr(n, 7, 8));
  IF b IS NULL OR b < DATE '1880-01-01' OR b > today THEN RETURN 'birth_date'; END IF;
  IF NOT gb11643_valid(n) THEN RETURN 'check_digit'; END IF;
  RETURN NULL;
END $$;
"""

DROP_INDEX = """
CREATE OR REPLACE FUNCTION drop_staging_batch_index(b integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  EXECUTE format('DROP INDEX IF EXISTS import_feature_geom_b%s', b);
END $$;
REVOKE ALL ON FUNCTION drop_staging_batch_index(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drop_staging_batch_index(integer) TO {app};
"""

DOWN = """
DROP FUNCTION IF EXISTS drop_staging_batch_index(integer);
DROP FUNCTION IF EXISTS gb11643_fault(text, date);
DROP FUNCTION IF EXISTS import_date(text);
DROP FUNCTION IF EXISTS import_num(text);
"""


def upgrade():
    op.execute(UP)
    op.execute(DROP_INDEX.format(app=os.environ.get("SANQUAN_APP_ROLE", "sanquan_app")))
    op.alter_column("import_record", "tbl", type_=sa.String(20), existing_nullable=False)
    op.add_column("import_fault", sa.Column("cause_id", sa.Integer(),
                                            sa.ForeignKey("import_fault.id",
                                                          name="fk_import_fault_cause_id"),
                                            nullable=True))
    op.create_index("ix_import_fault_record_id", "import_fault", ["record_id"])
    op.add_column("import_batch", sa.Column("upload_path", sa.Text(), nullable=True))
    op.add_column("import_batch", sa.Column("upload_removed_at",
                                            sa.DateTime(timezone=True), nullable=True))
    op.add_column("import_batch", sa.Column("finished_at", sa.DateTime(timezone=True),
                                            nullable=True))


def downgrade():
    op.drop_column("import_batch", "finished_at")
    op.drop_column("import_batch", "upload_removed_at")
    op.drop_column("import_batch", "upload_path")
    op.drop_index("ix_import_fault_record_id", table_name="import_fault")
    op.drop_constraint("fk_import_fault_cause_id", "import_fault", type_="foreignkey")
    op.drop_column("import_fault", "cause_id")
    op.execute("UPDATE import_record SET tbl = left(tbl, 10) WHERE length(tbl) > 10")
    op.alter_column("import_record", "tbl", type_=sa.String(10), existing_nullable=False)
    op.execute(DOWN)
