"""Staging speed (issue 18 §1): what a delivery's COPY pays per row, without losing a guarantee.

- ix_import_record_batch_id goes: ix_import_record_tbl (batch_id, tbl) serves every lookup by
  batch (its leading column), and each staged row paid for both.
- ix_import_feature_corrected_from_id holds only the corrections (the rows that point at
  another): a delivered feature points at none, and every one of them was indexed as NULL.  The
  reverse lookup of the self-reference (`corrected_from_id = $1`) implies NOT NULL, so the
  partial index serves it (tests/test_migrations.py::test_every_self_reference_is_indexed).
- import_feature_parent_county fires only when there is a parcel (or a county) to set: a staged
  feature has neither, and called the PL/pgSQL function for nothing on every row.

Revision ID: 0052_staging_speed
Revises: 0051_atk_mutation
"""
from alembic import op

revision = "0052_staging_speed"
down_revision = "0051_atk_mutation"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("DROP INDEX ix_import_record_batch_id")
    op.execute("DROP INDEX ix_import_feature_corrected_from_id")
    op.execute("CREATE INDEX ix_import_feature_corrected_from_id ON import_feature "
               "(corrected_from_id) WHERE corrected_from_id IS NOT NULL")
    op.execute("DROP TRIGGER import_feature_parent_county ON import_feature")
    op.execute("CREATE TRIGGER import_feature_parent_county BEFORE INSERT OR UPDATE OF "
               "parcel_id, parcel_county_code ON import_feature FOR EACH ROW "
               "WHEN (NEW.parcel_id IS NOT NULL OR NEW.parcel_county_code IS NOT NULL) "
               "EXECUTE FUNCTION import_feature_parent_county()")


def downgrade():
    op.execute("DROP TRIGGER import_feature_parent_county ON import_feature")
    op.execute("CREATE TRIGGER import_feature_parent_county BEFORE INSERT OR UPDATE OF "
               "parcel_id, parcel_county_code ON import_feature FOR EACH ROW "
               "EXECUTE FUNCTION import_feature_parent_county()")
    op.execute("DROP INDEX ix_import_feature_corrected_from_id")
    op.execute("CREATE INDEX ix_import_feature_corrected_from_id ON import_feature "
               "(corrected_from_id)")
    op.execute("CREATE INDEX ix_import_record_batch_id ON import_record (batch_id)")
