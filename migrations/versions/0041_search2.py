"""The holder-name search flat with the register's size (issue 18 §2, what 0035 left).

0035_search found a holder's name by trigrams (GIN): every household whose name contains the
query, all of them, then their parcels sorted by code — so the work grew with the number of
holders of the name (10× as many at 10M parcels as at 1M: 3.27× the time).  The name branch
now stops after the first `n` households in household-code order (app/parcels/queries.py):

- holders named exactly so come from this btree in household-code order, `n` of them read
  and no more (the index is `COLLATE "C"` on both columns: byte order, as the code branches);
- other names containing the query (trigrams, 0035's GIN index, for 3 characters or more) or,
  for 1–2 characters, which have no trigram, starting with it (a range on this same btree) —
  only when fewer than `n` exact holders were found, and only up to a cap of candidates.

No SQL function is defined or redefined here; 0035's indexes stay as they are.

Revision ID: 0041_search2
Revises: 0042_bulk_ids
"""
from alembic import op

revision = "0041_search2"
down_revision = "0042_bulk_ids"
branch_labels = None
depends_on = None


def upgrade():
    op.execute('CREATE INDEX ix_household_name_code_c ON household '
               '((name COLLATE "C"), (cbfbm COLLATE "C"))')


def downgrade():
    op.execute("DROP INDEX ix_household_name_code_c")
