"""Import fault texts written before this revision carried full resident ID numbers (the ID
checks and duplicate member keys); the auditor reads them.  Mask them as the validation now
writes them: the region and the last two characters.  Not reversible (nothing to restore).

Revision ID: 0019_security_attacks
Revises: 0018_guard_attacks
"""
from alembic import op

revision = "0019_security_attacks"
down_revision = "0018_guard_attacks"
branch_labels = None
depends_on = None

ID_RULES = "('id_length', 'id_region', 'id_birth_date', 'bad_id_checksum')"


def upgrade():
    op.execute(rf"""
        UPDATE import_fault
           SET detail = regexp_replace(
                 regexp_replace(detail, 'birth date [0-9]{{8}} is not a real past date',
                                'characters 7-14 (the birth date) are not a real past date'),
                 '([0-9]{{6}})[0-9]{{6,12}}([0-9Xx]{{2}})', '\1**********\2', 'g')
         WHERE rule IN {ID_RULES}
            OR (rule = 'duplicate_key' AND detail LIKE 'CBF\_JTCY.%')""")
    op.execute(r"""
        UPDATE import_fault
           SET code = regexp_replace(code, '^([0-9]{6})[0-9]{6,12}([0-9Xx]{2})$', '\1**********\2')
         WHERE rule = 'duplicate_key' AND detail LIKE 'CBF\_JTCY.%'""")


def downgrade():
    pass  # the full numbers are not kept anywhere to put back
