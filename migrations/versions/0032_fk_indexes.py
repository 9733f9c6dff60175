"""Index every self-referencing foreign key (issue 18's bench found the staging ones).

Deleting a staged batch (`housekeeping()`, a failed job's clean-up, the bench between runs)
checks, for every deleted row, the rows that reference it through import_feature.corrected_from_id
and import_fault.cause_id; without an index each check scans the table, so the delete of a
100,000-feature batch was quadratic (15 minutes and stopped).

Revision ID: 0032_fk_indexes
Revises: 0029_api_attacks
"""
from alembic import op

revision = "0032_fk_indexes"
down_revision = "0029_api_attacks"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_import_feature_corrected_from_id", "import_feature",
                    ["corrected_from_id"])
    op.create_index("ix_import_fault_cause_id", "import_fault", ["cause_id"])
    # the other self-references, for the same reason (a row's delete or key change checks them)
    op.create_index("ix_certificate_replaces_id", "certificate", ["replaces_id"])
    op.create_index("ix_division_successor_code", "division", ["successor_code"])
    op.create_index("ix_share_holding_inherited_from_id", "share_holding", ["inherited_from_id"])


def downgrade():
    op.drop_index("ix_share_holding_inherited_from_id", table_name="share_holding")
    op.drop_index("ix_division_successor_code", table_name="division")
    op.drop_index("ix_certificate_replaces_id", table_name="certificate")
    op.drop_index("ix_import_fault_cause_id", table_name="import_fault")
    op.drop_index("ix_import_feature_corrected_from_id", table_name="import_feature")
