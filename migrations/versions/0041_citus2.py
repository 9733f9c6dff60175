"""Citus-ready schema, the next part (issue 18 §3; docs/scaling.md §3): parcel, parcel_mutation,
household, collective and right_encumbrance keyed by (id, county_code).

- parcel_mutation gains county_code: the county of the parcels it changes, named by the
  operation that records it (app/parcels/operations.py `_mutation`: the parcel's county), checked
  by the database through parcel_lineage's composite foreign keys — a mutation, its parent
  versions and its child versions are in one county.  Existing rows take their lineage's county.
- parcel, parcel_mutation, household, collective, right_encumbrance: primary key (id,
  county_code); the id always comes from the table's sequence (key_from_sequence(), 0040: a
  BEFORE INSERT trigger takes nextval whatever was named; an UPDATE of id is refused), so the id
  alone stays unique by construction with no unique index without the distribution column.  The
  ORM keeps `id` as identity.  household and collective drop their UNIQUE (id, county_code)
  (0036): the primary key is now that.
- Unique indexes gain county_code last: the current parcel code, the household code (CBFBM),
  the collective code (FBFBM).  county_code is the code's prefix (generated), so each means what
  it meant.  The import's ON CONFLICT targets name (cbfbm, county_code) / (fbfbm, county_code).
- Foreign keys between large tables become composite: parcel and household → collective,
  parcel_lineage → parcel (parent and child) and → parcel_mutation.
- The coordinator-local tables that point at one of these by id alone now carry the parent's
  county in a column of their own (`<parent>_county_code`) and point at (id, county_code)
  MATCH FULL: import_feature, objection → parcel; membership_charter_rule,
  membership_application, member_assembly, roll_notice, share_quantification, distribution →
  collective; share_holding, distribution_payout → household; market_encumbrance_consent →
  right_encumbrance.  A BEFORE INSERT/UPDATE trigger fills the column from the parent when the
  statement left it out (NULL) or changed the parent id without it, so the application's
  inserts are unchanged; a county the statement names is checked by the composite foreign key
  (ids are unique, so only the parent's true county passes).  A bulk writer (the import's
  UPDATE of import_feature.parcel_id) names it and pays no lookup.

person is not changed here (docs/scaling.md §3: its county and what a move across counties
means are decided there; still xfail in tests/test_citus_ready.py).

Revision ID: 0041_citus2
Revises: 0040_atk_db
"""
from alembic import op

revision = "0041_citus2"
down_revision = "0040_atk_db"
branch_labels = None
depends_on = None

KEYED = ("parcel", "parcel_mutation", "household", "collective", "right_encumbrance")

# foreign keys by id alone that point at a KEYED table or at 0036's UNIQUE (id, county_code)
# of household/collective: name -> (table, columns, referred table, referred columns)
PLAIN_FKS = {
    "fk_household_collective_id_collective": ("household", "collective_id", "collective", "id"),
    "fk_parcel_collective_id_collective": ("parcel", "collective_id", "collective", "id"),
    "fk_parcel_lineage_child_id_parcel": ("parcel_lineage", "child_id", "parcel", "id"),
    "fk_parcel_lineage_parent_id_parcel": ("parcel_lineage", "parent_id", "parcel", "id"),
    "fk_parcel_lineage_mutation_id_parcel_mutation": ("parcel_lineage", "mutation_id",
                                                      "parcel_mutation", "id"),
    "fk_import_feature_parcel_id_parcel": ("import_feature", "parcel_id", "parcel", "id"),
    "fk_objection_correction_parcel_id_parcel": ("objection", "correction_parcel_id", "parcel",
                                                 "id"),
    "membership_charter_rule_collective_id_fkey": ("membership_charter_rule", "collective_id",
                                                   "collective", "id"),
    "membership_application_collective_id_fkey": ("membership_application", "collective_id",
                                                  "collective", "id"),
    "member_assembly_collective_id_fkey": ("member_assembly", "collective_id", "collective", "id"),
    "roll_notice_collective_id_fkey": ("roll_notice", "collective_id", "collective", "id"),
    "share_quantification_collective_id_fkey": ("share_quantification", "collective_id",
                                                "collective", "id"),
    "distribution_collective_id_fkey": ("distribution", "collective_id", "collective", "id"),
    "share_holding_household_id_fkey": ("share_holding", "household_id", "household", "id"),
    "distribution_payout_household_id_fkey": ("distribution_payout", "household_id", "household",
                                              "id"),
    "fk_market_encumbrance_consent_encumbrance_id_right_encumbrance": (
        "market_encumbrance_consent", "encumbrance_id", "right_encumbrance", "id"),
}
# 0036's composite foreign keys onto household/collective's UNIQUE (id, county_code): dropped
# and added again onto the new primary key
COMPOSITE_FKS = {
    "fk_household_member_household_id_household": ("household_member", "household_id",
                                                   "household"),
    "fk_membership_collective_id_collective": ("membership", "collective_id", "collective"),
    "fk_charter_clause_collective_id_collective": ("charter_clause", "collective_id",
                                                   "collective"),
}
# large tables whose own county_code is the parent's: fk name -> (table, column, parent)
LARGE_FKS = {
    "fk_household_collective_id_collective": ("household", "collective_id", "collective"),
    "fk_parcel_collective_id_collective": ("parcel", "collective_id", "collective"),
    "fk_parcel_lineage_child_id_parcel": ("parcel_lineage", "child_id", "parcel"),
    "fk_parcel_lineage_parent_id_parcel": ("parcel_lineage", "parent_id", "parcel"),
    "fk_parcel_lineage_mutation_id_parcel_mutation": ("parcel_lineage", "mutation_id",
                                                      "parcel_mutation"),
}
# coordinator-local tables: (table, id column) -> (county column, parent, NOT NULL)
LOCAL_REFS = {
    ("import_feature", "parcel_id"): ("parcel_county_code", "parcel", False),
    ("objection", "correction_parcel_id"): ("correction_parcel_county_code", "parcel", False),
    ("membership_charter_rule", "collective_id"): ("collective_county_code", "collective", True),
    ("membership_application", "collective_id"): ("collective_county_code", "collective", True),
    ("member_assembly", "collective_id"): ("collective_county_code", "collective", True),
    ("roll_notice", "collective_id"): ("collective_county_code", "collective", True),
    ("share_quantification", "collective_id"): ("collective_county_code", "collective", True),
    ("distribution", "collective_id"): ("collective_county_code", "collective", True),
    ("share_holding", "household_id"): ("household_county_code", "household", False),
    ("distribution_payout", "household_id"): ("household_county_code", "household", False),
    ("market_encumbrance_consent", "encumbrance_id"): ("encumbrance_county_code",
                                                       "right_encumbrance", True),
}
# unique indexes/constraints that gain county_code: name -> (table, columns, predicate or None)
UNIQUES = {
    "uq_parcel_current_code": ("parcel", "code", "end_lifespan IS NULL"),
    "uq_household_cbfbm": ("household", "cbfbm", None),
    "uq_collective_fbfbm": ("collective", "fbfbm", None),
}

# The parent's county for a coordinator-local reference: one function per (table, column),
# static SQL (no per-row EXECUTE).  Filled when the statement left it NULL, or changed the
# parent id and not the county; otherwise the composite foreign key checks what was named.
LOCAL_FN = """
CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF NEW.{col} IS NULL THEN
    NEW.{cc} := NULL;
  ELSIF NEW.{cc} IS NULL OR (TG_OP = 'UPDATE' AND NEW.{col} IS DISTINCT FROM OLD.{col}
                             AND NEW.{cc} IS NOT DISTINCT FROM OLD.{cc}) THEN
    NEW.{cc} := (SELECT p.county_code FROM {parent} p WHERE p.id = NEW.{col});
  END IF;
  RETURN NEW;
END $$;
"""


def _fn(table: str) -> str:
    return f"{table}_parent_county"


def _mutation_up() -> None:
    op.execute("ALTER TABLE parcel_mutation ADD COLUMN county_code varchar(6)")
    # a mutation's county is that of the parcel versions it links (one county: the composite
    # foreign keys below refuse a lineage across counties)
    op.execute("UPDATE parcel_mutation m SET county_code = l.county_code FROM ("
               "SELECT DISTINCT ON (mutation_id) mutation_id, county_code FROM parcel_lineage "
               "ORDER BY mutation_id, county_code) l WHERE l.mutation_id = m.id")
    op.execute("ALTER TABLE parcel_mutation ALTER COLUMN county_code SET NOT NULL, "
               "ADD CONSTRAINT ck_parcel_mutation_county_code_format "
               "CHECK (county_code ~ '^[0-9]{6}$')")


def upgrade():
    for name, (table, *_rest) in PLAIN_FKS.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for name, (table, *_rest) in COMPOSITE_FKS.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    _mutation_up()
    for t in ("household", "collective"):
        op.execute(f"ALTER TABLE {t} DROP CONSTRAINT uq_{t}_id")
    for t in KEYED:
        op.execute(f"ALTER TABLE {t} DROP CONSTRAINT pk_{t}, "
                   f"ADD CONSTRAINT pk_{t} PRIMARY KEY (id, county_code)")
        op.execute(f"CREATE TRIGGER {t}_key BEFORE INSERT OR UPDATE OF id ON {t} FOR EACH ROW "
                   f"EXECUTE FUNCTION key_from_sequence('{t}_id_seq')")
    for name, (table, cols, where) in UNIQUES.items():
        if where:
            op.execute(f"DROP INDEX {name}")
            op.execute(f"CREATE UNIQUE INDEX {name} ON {table} ({cols}, county_code) "
                       f"WHERE {where}")
        else:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}, "
                       f"ADD CONSTRAINT {name} UNIQUE ({cols}, county_code)")
    for name, (table, col, ref) in {**COMPOSITE_FKS, **LARGE_FKS}.items():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}, county_code) "
                   f"REFERENCES {ref} (id, county_code) NOT VALID")
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
    fk_of = {(t, c): n for n, (t, c, _, _) in PLAIN_FKS.items()}
    for (table, col), (cc, parent, not_null) in LOCAL_REFS.items():
        op.execute(f"ALTER TABLE {table} ADD COLUMN {cc} varchar(6)")
        op.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")  # append-only guards
        op.execute(f"UPDATE {table} t SET {cc} = p.county_code FROM {parent} p "
                   f"WHERE p.id = t.{col}")
        op.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        if not_null:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {cc} SET NOT NULL")
        op.execute(LOCAL_FN.format(fn=_fn(table), col=col, cc=cc, parent=parent))
        op.execute(f"CREATE TRIGGER {table}_parent_county BEFORE INSERT OR UPDATE OF {col}, {cc} "
                   f"ON {table} FOR EACH ROW EXECUTE FUNCTION {_fn(table)}()")
        name = fk_of[(table, col)]
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}, {cc}) "
                   f"REFERENCES {parent} (id, county_code) MATCH FULL NOT VALID")
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")


def downgrade():
    for (table, _col), (cc, _parent, _nn) in LOCAL_REFS.items():
        op.execute(f"DROP TRIGGER {table}_parent_county ON {table}")
        op.execute(f"DROP FUNCTION {_fn(table)}()")
        op.execute(f"ALTER TABLE {table} DROP COLUMN {cc}")  # drops its foreign key too
    for name, (table, *_rest) in {**COMPOSITE_FKS, **LARGE_FKS}.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
    for name, (table, cols, where) in UNIQUES.items():
        if where:
            op.execute(f"DROP INDEX {name}")
            op.execute(f"CREATE UNIQUE INDEX {name} ON {table} ({cols}) WHERE {where}")
        else:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}, "
                       f"ADD CONSTRAINT {name} UNIQUE ({cols})")
    for t in KEYED:
        op.execute(f"DROP TRIGGER {t}_key ON {t}")
        op.execute(f"ALTER TABLE {t} DROP CONSTRAINT pk_{t}, ADD CONSTRAINT pk_{t} PRIMARY KEY (id)")
    for t in ("household", "collective"):
        op.execute(f"ALTER TABLE {t} ADD CONSTRAINT uq_{t}_id UNIQUE (id, county_code)")
    op.execute("ALTER TABLE parcel_mutation DROP COLUMN county_code")
    for name, (table, col, ref) in COMPOSITE_FKS.items():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}, county_code) "
                   f"REFERENCES {ref} (id, county_code)")
    for name, (table, col, ref, rcol) in PLAIN_FKS.items():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}) "
                   f"REFERENCES {ref} ({rcol})")
