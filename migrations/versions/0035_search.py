"""The staff search by index at any size (issue 18 §2).

`/parcels/search` matched `code LIKE 'q%' OR household_code LIKE 'q%' OR household.name LIKE
'%q%'` over an outer join: one OR over three tables cannot use any index, and the cluster's
collation (C.UTF-8, not "C") makes `LIKE 'q%'` unindexable on an ordinary btree anyway, so
every search scanned the register (281 ms at 100k parcels, 5.8 s at 1M).  The search is now a
UNION of three indexable branches (app/parcels/queries.py), each served by one index here:

- the current parcels' code and household code in byte order (`COLLATE "C"`), so that a prefix
  is a range `>= q AND < q || U+10FFFF` under any database collation and the code branch reads
  its first rows in order; the household code's index also serves the holder branch's join
  (a holder's parcels by household code, with their codes, from the index alone);
- the holder's name by trigrams (pg_trgm, a trusted extension: the database's owner may create
  it) for `name LIKE '%q%'`; Chinese characters are word characters for pg_trgm under C.UTF-8.

Revision ID: 0035_search
Revises: 0032_fk_indexes
"""
from alembic import op

revision = "0035_search"
down_revision = "0036_citus"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # INCLUDE: each branch finds its ids (and the household branches their codes, to order
    # them) in the index alone, without visiting the table's rows
    op.execute('CREATE INDEX ix_parcel_current_code_c ON parcel ((code COLLATE "C")) '
               "INCLUDE (id) WHERE end_lifespan IS NULL")
    op.execute('CREATE INDEX ix_parcel_current_household_code_c ON parcel '
               '((household_code COLLATE "C")) INCLUDE (code, id) WHERE end_lifespan IS NULL')
    op.execute("CREATE INDEX ix_household_name_trgm ON household USING gin (name gin_trgm_ops)")


def downgrade():
    op.execute("DROP INDEX ix_household_name_trgm")
    op.execute("DROP INDEX ix_parcel_current_household_code_c")
    op.execute("DROP INDEX ix_parcel_current_code_c")
    # pg_trgm stays: dropping an extension another object may have come to use is not ours to do
