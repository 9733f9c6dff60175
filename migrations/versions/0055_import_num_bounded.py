"""import_num reads a delivered number without ever raising: a number float8 cannot hold.

import_num(v) cast any text matching its pattern to float8; the pattern bounded the exponent
(two digits) but not the digits, so a delivered '9' × 400 (or '0.' + 400 zeros + '1') made
PostgreSQL raise "out of range for type double precision" — and the whole validation of the
delivery with it (the area check, the contract-area look-ups and the field check call it on
delivered texts).  Now such a text is not a number (NULL: the field check reports it as
bad_number): at most 308 digits before the point counting the exponent (so |v| < 1e308), at
most 200 after it (so |v| >= 1e-299 unless 0).

Revision ID: 0055_import_num_bounded
Revises: 0054_atk_0051_shares
"""
from alembic import op

revision = "0055_import_num_bounded"
down_revision = "0054_atk_0051_shares"
branch_labels = None
depends_on = None

UP = r"""
CREATE OR REPLACE FUNCTION import_num(v text) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = public, pg_temp AS $$
  -- nested CASEs: the digits are counted (and the exponent cast) only once the pattern holds
  SELECT CASE WHEN btrim(v) ~ '^-?[0-9]+(\.[0-9]{1,200})?([eE][-+]?[0-9]{1,2})?$' THEN
           CASE WHEN length(substring(btrim(v) FROM '^-?0*([0-9]*)'))
                     + coalesce(substring(btrim(v) FROM '[eE]([-+]?[0-9]+)$')::int, 0) <= 308
                THEN btrim(v)::float8 END
         END
$$;
"""

DOWN = r"""
CREATE OR REPLACE FUNCTION import_num(v text) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = public, pg_temp AS $$
  SELECT CASE WHEN btrim(v) ~ '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]{1,2})?$'
              THEN btrim(v)::float8 END
$$;
"""


def upgrade():
    op.execute(UP)


def downgrade():
    op.execute(DOWN)
