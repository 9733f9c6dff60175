"""Citus-ready schema, the last table (issue 18 §3; docs/scaling.md §3): person, one row per
county, keyed by (id, county_code).

- person.county_code varchar(6) NOT NULL: the county of the roll that put the person there —
  their current household place (CBF_JTCY), else their latest one, else an active membership,
  else any membership, else a right they hold, else the household they head; a person on no
  roll takes the county of their hukou place, else (no hukou place either) the first six
  digits of their ID number.  Never the hukou place when a roll names one: settling in town
  moves the hukou and nothing else (domain.md rule 1), and never moves the county.
- A person on the rolls of two counties today (a household place, a membership, a right, a
  household's headship in a county other than the one chosen above) is split: one row per
  further county, with the same ID number and personal data, an id from the sequence, and
  that county's rows re-pointed at it.  Coordinator-local rows (accounts, settlements,
  consents, shares, payouts…) keep the row they named: the rules about the human read every
  row of the ID number (0044, app.people.operations.rows_of).
- Key (id, county_code); UNIQUE (id_number, county_code); the id always comes from
  person_id_seq (key_from_sequence(), 0040), so an id cannot be repeated in another county.
  A person inserted without a county takes that of their hukou place, else of their ID number
  (person_county()); the operation that places them then gives them their row in the roll's
  county.
- Placement: household_member, membership, land_right (holder) and household (head) point at
  the person's row *in their own county* — composite foreign keys (person_id, county_code).
  A BEFORE trigger re-points a person named from another county to their row in this one,
  made (from the sequence, a copy of the named row) if there is none: person_row_in().  The
  application's inserts are unchanged; a second county's row is made by the placement, never
  by settling in town.
- The 14 coordinator-local tables that reference a person carry `<ref>_county_code`, filled by
  a trigger from the person row they name (0041's pattern) and checked by a foreign key
  (id, county_code) MATCH FULL.

Revision ID: 0045_citus_person
Revises: 0044_person_rows
"""
from alembic import op

revision = "0045_citus_person"
down_revision = "0044_person_rows"
branch_labels = None
depends_on = None

# large tables: fk name -> (table, person column, expression of the row's county in a BEFORE
# trigger (generated columns are NULL there), trigger name)
LARGE = {
    "fk_household_member_person_id_person": (
        "household_member", "person_id", "NEW.county_code", "household_member_person"),
    "fk_membership_person_id_person": (
        "membership", "person_id", "NEW.county_code", "membership_person"),
    "fk_land_right_holder_person_id_person": (
        "land_right", "holder_person_id",
        "left(coalesce(NEW.fbfbm, NEW.holder_household_code, NEW.contract_code), 6)",
        "land_right_holder_person"),
    "fk_household_head_person_id_person": (
        "household", "head_person_id", "left(NEW.cbfbm, 6)", "household_head_person"),
}
# coordinator-local tables: fk name -> (table, person column, county column, NOT NULL)
LOCAL = {
    "fk_app_user_person_id_person": ("app_user", "person_id", "person_county_code", False),
    "fk_residence_permit_person_id_person": ("residence_permit", "person_id",
                                             "person_county_code", True),
    "fk_withdrawal_consent_person_id_person": ("withdrawal_consent", "person_id",
                                               "person_county_code", True),
    "fk_settlement_application_applicant_id_person": ("settlement_application", "applicant_id",
                                                      "applicant_county_code", True),
    "fk_hukou_move_person_id_person": ("hukou_move", "person_id", "person_county_code", True),
    "fk_settlement_member_person_id_person": ("settlement_member", "person_id",
                                              "person_county_code", True),
    "fk_market_application_member_person_id_person": ("market_application", "member_person_id",
                                                      "member_person_county_code", False),
    "fk_market_consent_person_id_person": ("market_consent", "person_id", "person_county_code",
                                           True),
    "market_contract_transferee_person_id_fkey": ("market_contract", "transferee_person_id",
                                                  "transferee_person_county_code", False),
    "membership_application_person_id_fkey": ("membership_application", "person_id",
                                              "person_county_code", True),
    "member_assembly_attendance_person_id_fkey": ("member_assembly_attendance", "person_id",
                                                  "person_county_code", True),
    "share_holding_person_id_fkey": ("share_holding", "person_id", "person_county_code", True),
    "member_bank_account_person_id_fkey": ("member_bank_account", "person_id",
                                           "person_county_code", True),
    "distribution_payout_person_id_fkey": ("distribution_payout", "person_id",
                                           "person_county_code", False),
}

# The county a person is first placed in: the roll that put them there (priority, then the
# current place first, then the latest).  One statement, set-wise.
ROLLS = """
  SELECT person_id, county_code, 1 AS pri, left_on IS NULL AS cur,
         coalesce(left_on, 'infinity'::date) AS d, id FROM household_member
  UNION ALL
  SELECT person_id, county_code, 2, status = 'active', coalesce(ended_on, 'infinity'::date), id
    FROM membership
  UNION ALL
  SELECT holder_person_id, county_code, 3, end_lifespan IS NULL, 'infinity'::date, id
    FROM land_right WHERE holder_person_id IS NOT NULL
  UNION ALL
  SELECT head_person_id, county_code, 4, ended_on IS NULL, 'infinity'::date, id
    FROM household WHERE head_person_id IS NOT NULL
"""

PERSON_COUNTY_FN = """
CREATE OR REPLACE FUNCTION person_county() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  -- a person inserted without a county (not yet on any roll): their hukou place's, else their
  -- ID number's; the placement gives them their row in the roll's county (person_row_in)
  IF NEW.county_code IS NULL THEN
    NEW.county_code := coalesce(left(NEW.hukou_division_code, 6), left(NEW.id_number, 6));
  END IF;
  RETURN NEW;
END $$;
"""

ROW_IN_FN = """
CREATE OR REPLACE FUNCTION person_row_in(pid integer, county text) RETURNS integer
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE r person; got integer;
BEGIN
  -- the row of person `pid` (any county's row of them) in `county`: that row itself, the
  -- same ID number's row there, or a new one (a copy, its id from the sequence)
  IF pid IS NULL OR county IS NULL THEN
    RETURN pid;
  END IF;
  SELECT * INTO r FROM person WHERE id = pid;
  IF NOT FOUND OR r.county_code = county THEN
    RETURN pid;  -- an unknown id is left to the foreign key to refuse
  END IF;
  SELECT id INTO got FROM person WHERE id_number = r.id_number AND county_code = county;
  IF got IS NULL THEN
    INSERT INTO person (id_number, name, sex, birth_date, hukou_division_code, hukou_address,
                        phone, county_code)
    VALUES (r.id_number, r.name, r.sex, r.birth_date, r.hukou_division_code, r.hukou_address,
            r.phone, county)
    ON CONFLICT (id_number, county_code) DO NOTHING RETURNING id INTO got;
    IF got IS NULL THEN  -- made meanwhile by a concurrent placement
      SELECT id INTO got FROM person WHERE id_number = r.id_number AND county_code = county;
    END IF;
  END IF;
  RETURN got;
END $$;
"""

PLACE_FN = """
CREATE OR REPLACE FUNCTION {trigger}() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  NEW.{col} := person_row_in(NEW.{col}, {county});
  RETURN NEW;
END $$;
"""

# 0041's coordinator-local fill, for the person a row names
LOCAL_FN = """
CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF NEW.{col} IS NULL THEN
    NEW.{cc} := NULL;
  ELSIF NEW.{cc} IS NULL OR (TG_OP = 'UPDATE' AND NEW.{col} IS DISTINCT FROM OLD.{col}
                             AND NEW.{cc} IS NOT DISTINCT FROM OLD.{cc}) THEN
    NEW.{cc} := (SELECT p.county_code FROM person p WHERE p.id = NEW.{col});
  END IF;
  RETURN NEW;
END $$;
"""


def _local_fn(table: str) -> str:
    return f"{table}_person_county"


def _fill_and_split() -> None:
    op.execute("ALTER TABLE person ADD COLUMN county_code varchar(6)")
    op.execute(f"""
        UPDATE person p SET county_code = f.county_code FROM (
          SELECT DISTINCT ON (person_id) person_id, county_code FROM ({ROLLS}) x
          ORDER BY person_id, pri, cur DESC, d DESC, id DESC) f
        WHERE f.person_id = p.id""")
    op.execute("UPDATE person SET county_code = coalesce(left(hukou_division_code, 6), "
               "left(id_number, 6)) WHERE county_code IS NULL")
    # a row per further county: (old id, county, new id from the sequence) — the sequence first
    # past every id a row already has (a bulk load may have named ids without it)
    op.execute("SELECT setval('person_id_seq', (SELECT max(id) FROM person)) "
               "WHERE (SELECT max(id) FROM person) > (SELECT last_value FROM person_id_seq)")
    op.execute(f"""
        CREATE TEMPORARY TABLE _person_split ON COMMIT DROP AS
        SELECT s.old_id, s.county_code, nextval('person_id_seq')::integer AS new_id FROM (
          SELECT DISTINCT x.person_id AS old_id, x.county_code FROM ({ROLLS}) x
          JOIN person p ON p.id = x.person_id WHERE x.county_code <> p.county_code) s""")
    op.execute("""
        INSERT INTO person (id, id_number, name, sex, birth_date, hukou_division_code,
                            hukou_address, phone, created_at, county_code)
        SELECT s.new_id, p.id_number, p.name, p.sex, p.birth_date, p.hukou_division_code,
               p.hukou_address, p.phone, p.created_at, s.county_code
        FROM _person_split s JOIN person p ON p.id = s.old_id""")
    for _name, (table, col, _county, _trigger) in LARGE.items():
        op.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")  # history guards
        op.execute(f"UPDATE {table} t SET {col} = s.new_id FROM _person_split s "
                   f"WHERE t.{col} = s.old_id AND t.county_code = s.county_code")
        op.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def upgrade():
    for name, (table, *_rest) in {**LARGE, **LOCAL}.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    op.execute("ALTER TABLE person DROP CONSTRAINT uq_person_id_number")
    _fill_and_split()
    op.execute("ALTER TABLE person ALTER COLUMN county_code SET NOT NULL, "
               "ADD CONSTRAINT ck_person_county_code_format CHECK (county_code ~ '^[0-9]{6}$')")
    op.execute("ALTER TABLE person DROP CONSTRAINT pk_person, "
               "ADD CONSTRAINT pk_person PRIMARY KEY (id, county_code)")
    op.execute("ALTER TABLE person ADD CONSTRAINT uq_person_id_number "
               "UNIQUE (id_number, county_code)")
    op.execute("CREATE TRIGGER person_key BEFORE INSERT OR UPDATE OF id ON person FOR EACH ROW "
               "EXECUTE FUNCTION key_from_sequence('person_id_seq')")
    op.execute(PERSON_COUNTY_FN)
    op.execute("CREATE TRIGGER person_county BEFORE INSERT ON person FOR EACH ROW "
               "EXECUTE FUNCTION person_county()")
    op.execute(ROW_IN_FN)
    for name, (table, col, county, trigger) in LARGE.items():
        op.execute(PLACE_FN.format(trigger=trigger, col=col, county=county))
        # after the table's own county trigger (`<table>_county_code`: triggers fire by name)
        op.execute(f"CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE OF {col} ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION {trigger}()")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}, county_code) "
                   f"REFERENCES person (id, county_code) NOT VALID")
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
    for name, (table, col, cc, not_null) in LOCAL.items():
        op.execute(f"ALTER TABLE {table} ADD COLUMN {cc} varchar(6)")
        op.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")  # append-only guards
        op.execute(f"UPDATE {table} t SET {cc} = p.county_code FROM person p "
                   f"WHERE p.id = t.{col}")
        op.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        if not_null:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {cc} SET NOT NULL")
        op.execute(LOCAL_FN.format(fn=_local_fn(table), col=col, cc=cc))
        op.execute(f"CREATE TRIGGER {table}_person_county BEFORE INSERT OR UPDATE OF {col}, {cc} "
                   f"ON {table} FOR EACH ROW EXECUTE FUNCTION {_local_fn(table)}()")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}, {cc}) "
                   f"REFERENCES person (id, county_code) MATCH FULL NOT VALID")
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")


def downgrade():
    """Back to one row per person: refused while any ID number has rows in two counties (the
    split cannot be undone without choosing whose rows to merge)."""
    op.execute("""
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM person GROUP BY id_number HAVING count(*) > 1) THEN
            RAISE EXCEPTION 'person: some ID numbers have rows in two counties; merge them first';
          END IF;
        END $$""")
    for name, (table, _col, cc, _nn) in LOCAL.items():
        op.execute(f"DROP TRIGGER {table}_person_county ON {table}")
        op.execute(f"DROP FUNCTION {_local_fn(table)}()")
        op.execute(f"ALTER TABLE {table} DROP COLUMN {cc}")  # drops its foreign key too
    for name, (table, _col, _county, trigger) in LARGE.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
        op.execute(f"DROP FUNCTION {trigger}()")
    op.execute("DROP FUNCTION person_row_in(integer, text)")
    op.execute("DROP TRIGGER person_county ON person")
    op.execute("DROP FUNCTION person_county()")
    op.execute("DROP TRIGGER person_key ON person")
    op.execute("ALTER TABLE person DROP CONSTRAINT uq_person_id_number, "
               "ADD CONSTRAINT uq_person_id_number UNIQUE (id_number)")
    op.execute("ALTER TABLE person DROP CONSTRAINT pk_person, "
               "ADD CONSTRAINT pk_person PRIMARY KEY (id)")
    op.execute("ALTER TABLE person DROP COLUMN county_code")
    for name, (table, col, *_rest) in {**LARGE, **LOCAL}.items():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}) "
                   f"REFERENCES person (id)")
