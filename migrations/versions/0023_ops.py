"""Operations that survive faults (issue 18 part 4).

1. `job.heartbeat_at`: the process that owns a queued or running job touches it every few
   seconds; a job whose heartbeat is stale (its process was killed, its database connection
   lost) is marked failed by the reaper (`flask jobs reap`, and every worker loop) and can be
   re-run (`job.rerun_of` names the job it repeats).
2. `register_version`: one row whose counter moves with every statement that changes `parcel`
   (a statement-level trigger, in the changing transaction: a tile read before the commit still
   sees the old version).  Vector tiles carry it as their ETag and answer 304 on revalidation.
   The app role only reads it; the trigger runs as the owner (SECURITY DEFINER, search_path
   pinned).
3. `discard_failed_staging(batch)`: the staged rows and faults of a batch whose import job
   failed before its checks completed go (the app role deletes no staging row itself; the
   function refuses any batch that is not `failed`).

Revision ID: 0023_ops
Revises: 0020_market_attacks
"""
import os

import sqlalchemy as sa
from alembic import op

revision = "0023_ops"
down_revision = "0021_house"
branch_labels = None
depends_on = None

APP_ROLE = os.environ.get("SANQUAN_APP_ROLE", "sanquan_app")


def upgrade():
    op.add_column("job", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("job", sa.Column("rerun_of", sa.Integer(), nullable=True))
    op.create_index("ix_job_live", "job", ["heartbeat_at"],
                    postgresql_where=sa.text("status IN ('queued', 'running')"))
    op.create_table(
        "register_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("now()")),
        sa.CheckConstraint("id = 1", name="one_row"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_register_version")),
    )
    op.execute("INSERT INTO register_version (id) VALUES (1)")
    op.execute("""
CREATE OR REPLACE FUNCTION register_version_bump() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  UPDATE register_version SET version = version + 1, changed_at = clock_timestamp() WHERE id = 1;
  RETURN NULL;
END $$""")
    op.execute("REVOKE ALL ON FUNCTION register_version_bump() FROM PUBLIC")
    op.execute("""
CREATE TRIGGER parcel_register_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON parcel
FOR EACH STATEMENT EXECUTE FUNCTION register_version_bump()""")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON register_version FROM {APP_ROLE}")
    op.execute(f"GRANT SELECT ON register_version TO {APP_ROLE}")
    op.execute("""
CREATE OR REPLACE FUNCTION discard_failed_staging(b integer) RETURNS integer LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE n integer; m integer;
BEGIN
  IF (SELECT status FROM import_batch WHERE id = b) IS DISTINCT FROM 'failed' THEN
    RAISE EXCEPTION 'import.staging_kept: only a failed batch''s staging is discarded';
  END IF;
  UPDATE import_fault SET cause_id = NULL WHERE batch_id = b AND cause_id IS NOT NULL;
  DELETE FROM import_fault WHERE batch_id = b;
  GET DIAGNOSTICS n = ROW_COUNT;
  UPDATE import_feature SET corrected_from_id = NULL WHERE batch_id = b
    AND corrected_from_id IS NOT NULL;
  DELETE FROM import_feature WHERE batch_id = b;
  GET DIAGNOSTICS m = ROW_COUNT;
  n := n + m;
  DELETE FROM import_record WHERE batch_id = b;
  GET DIAGNOSTICS m = ROW_COUNT;
  RETURN n + m;
END $$""")
    op.execute("REVOKE ALL ON FUNCTION discard_failed_staging(integer) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION discard_failed_staging(integer) TO {APP_ROLE}")


def downgrade():
    op.execute("DROP FUNCTION IF EXISTS discard_failed_staging(integer)")
    op.execute("DROP TRIGGER IF EXISTS parcel_register_version ON parcel")
    op.execute("DROP FUNCTION IF EXISTS register_version_bump()")
    op.drop_table("register_version")
    op.drop_index("ix_job_live", table_name="job")
    op.drop_column("job", "rerun_of")
    op.drop_column("job", "heartbeat_at")
