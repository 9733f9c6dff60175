"""What 0036_citus's county-scoped keys let through (tests/test_citus_attacks.py).

1. The id alone is no longer unique: the primary keys of land_right, land_right_parcel,
   certificate, household_member, membership and charter_clause became (id, county_code), so
   an INSERT naming an id that another county's row already has was accepted, and every
   `WHERE id = …` (the ORM's identity map, the guards, county_code_from_right(), the
   certificate's cancellation UPDATE) then reached two rows.  The id now always comes from the
   table's own sequence (a BEFORE INSERT trigger takes the next value, whatever the insert
   named, as the county triggers do with county_code) and is never changed by an UPDATE:
   unique by construction, with no unique index without the distribution column (Citus: a
   sequence is cluster-wide).

2. A right's county is the first six digits of fbfbm, else of the household's code, else of
   the contract code; nothing required them to agree.  A homestead right of household H
   naming another county's collective sat in that county, so uq_land_right_one_homestead
   (holder_household_code, county_code) let H hold two current homesteads (一户一宅,
   土地管理法 art 62).  The codes a right names now agree on the county (NY/T 2539: each
   begins with the county's GB/T 2260 code), so each county-scoped unique index means what
   it meant before.

3. A right's uid alone is no longer unique among current versions either:
   uq_land_right_current_version became (uid, county_code), so a first version naming an
   existing right's uid with another county's codes was a second current version of that
   right.  A first version's uid now comes from land_right_uid_seq (the application never
   names it); a later version (its uid that of the version it follows, land_right_version_guard)
   stays in that version's county.

Revision ID: 0040_atk_db
Revises: 0036_citus
"""
from alembic import op

revision = "0040_atk_db"
down_revision = "0035_search"
branch_labels = None
depends_on = None

TABLES = ("land_right", "land_right_parcel", "certificate", "household_member", "membership",
          "charter_clause")

KEY_FN = """
CREATE OR REPLACE FUNCTION key_from_sequence() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  -- TG_ARGV[0]: the table's id sequence.  The key is (id, county_code); the id alone is
  -- unique only because it always comes from that sequence.
  IF TG_OP = 'INSERT' THEN
    NEW.id := nextval(TG_ARGV[0]::regclass);
  ELSIF NEW.id IS DISTINCT FROM OLD.id THEN
    RAISE EXCEPTION '%.id: a row''s id comes from its sequence and never changes', TG_TABLE_NAME
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
"""

UID_FN = """
CREATE OR REPLACE FUNCTION land_right_uid_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE prev_county text;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.uid IS DISTINCT FROM OLD.uid THEN
      RAISE EXCEPTION 'right.history: a right''s uid never changes'
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.version = 1 THEN
    NEW.uid := nextval('land_right_uid_seq');  -- a new right: a new uid, whatever was named
    RETURN NEW;
  END IF;
  SELECT county_code INTO prev_county FROM land_right
   WHERE uid = NEW.uid AND version = NEW.version - 1;
  IF prev_county IS DISTINCT FROM left(coalesce(NEW.fbfbm, NEW.holder_household_code,
                                                NEW.contract_code), 6) THEN
    RAISE EXCEPTION 'right.history: version % of right % stays in the county of the version it follows (%)',
      NEW.version, NEW.uid, prev_county USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
"""

CODES_AGREE = (
    "left(coalesce(holder_household_code, fbfbm, contract_code), 6) = "
    "left(coalesce(fbfbm, holder_household_code, contract_code), 6) AND "
    "left(coalesce(contract_code, fbfbm, holder_household_code), 6) = "
    "left(coalesce(fbfbm, holder_household_code, contract_code), 6)")


def upgrade():
    op.execute(KEY_FN)
    for t in TABLES:
        op.execute(f"CREATE TRIGGER {t}_key BEFORE INSERT OR UPDATE OF id ON {t} FOR EACH ROW "
                   f"EXECUTE FUNCTION key_from_sequence('{t}_id_seq')")
    op.execute(UID_FN)
    op.execute("CREATE TRIGGER land_right_uid BEFORE INSERT OR UPDATE OF uid ON land_right "
               "FOR EACH ROW EXECUTE FUNCTION land_right_uid_guard()")
    op.execute(f"ALTER TABLE land_right ADD CONSTRAINT ck_land_right_codes_one_county "
               f"CHECK ({CODES_AGREE}) NOT VALID")
    op.execute("ALTER TABLE land_right VALIDATE CONSTRAINT ck_land_right_codes_one_county")


def downgrade():
    op.execute("ALTER TABLE land_right DROP CONSTRAINT ck_land_right_codes_one_county")
    op.execute("DROP TRIGGER land_right_uid ON land_right")
    op.execute("DROP FUNCTION land_right_uid_guard()")
    for t in TABLES:
        op.execute(f"DROP TRIGGER {t}_key ON {t}")
    op.execute("DROP FUNCTION key_from_sequence()")
