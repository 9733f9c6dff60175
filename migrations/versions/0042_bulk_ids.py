"""One id source for the tables whose id comes from a trigger (0040_atk_db).

0040_atk_db made the id of land_right, land_right_parcel, certificate, household_member,
membership and charter_clause come from the table's sequence by a BEFORE INSERT trigger
(key_from_sequence), whatever the insert named — but the column's default took a value from
the same sequence first, so ids advanced by two a row and the sequence was spent twice as fast.
The default goes: the trigger is the one source.  The application never names these ids; the
ORM leaves the column out of its INSERT and reads the id back by RETURNING (which returns the
row as the trigger left it); raw inserts without the column get it from the trigger (NOT NULL
is checked after BEFORE triggers).

Revision ID: 0042_bulk_ids
Revises: 0041_bulk
"""
from alembic import op

revision = "0042_bulk_ids"
down_revision = "0041_bulk"
branch_labels = None
depends_on = None

TABLES = ("land_right", "land_right_parcel", "certificate", "household_member", "membership",
          "charter_clause")


def upgrade():
    for t in TABLES:
        op.execute(f"ALTER TABLE {t} ALTER COLUMN id DROP DEFAULT")


def downgrade():
    for t in TABLES:
        op.execute(f"ALTER TABLE {t} ALTER COLUMN id SET DEFAULT nextval('{t}_id_seq'::regclass)")
