"""Citus-ready schema: the county code on eight more large tables (issue 18 §3; docs/scaling.md §3).

The county code (the future distribution column) on the rights register, household members,
memberships, charter clauses and parcel lineage, in every unique constraint of those tables
and in the foreign keys between them, filled by the database so the
application's inserts do not change and it can never disagree with the row's codes:

- land_right: a stored generated column, the first six digits of the collective's code (FBFBM),
  else of the holder household's code (CBFBM), else of the contract code (CBHTBM = CBFBM + J)
  — each begins with the county's GB/T 2260 code (NY/T 2539).  A right naming none of them
  is refused (NOT NULL): every right belongs to a county.
- land_right_parcel and certificate: a BEFORE INSERT/UPDATE trigger copies the county of
  their right (right_id); the composite foreign key (right_id, county_code) →
  land_right (id, county_code) then holds by construction.
- right_encumbrance: the county of the right it encumbers (right_uid: any version of a right
  has the same codes).  Its primary key stays `id` for now: market_encumbrance_consent
  (coordinator-local) references it.
- household_member: the county of its household (household_id), by trigger; household gains
  UNIQUE (id, county_code) for the composite foreign key (its own key stays `id` for now:
  small tables reference it).
- charter_clause and membership: the county of their collective (collective_id), by trigger;
  collective gains UNIQUE (id, county_code); membership's end clause is a clause of the same
  county (composite foreign key).  membership keeps its plain foreign key to person (person
  has no county yet).
- parcel_lineage: the county of its child version (child_id), by trigger; its key becomes
  (parent_id, child_id, county_code).  Its foreign keys to parcel and parcel_mutation stay
  plain (parcel_mutation holds no code yet; parcel's key is referenced by small tables).

Primary keys become (id, county_code) (the ORM keeps `id` as the mapped identity); every
UNIQUE constraint and unique index gains county_code as its last column.  Where county_code is
derived from the key's own columns (a right's uid, a household's homestead, a certificate's
right, a household's member, a collective's clause number or member) the constraint means
exactly what it meant; the certificate number and token become
unique per county (the number embeds the county; the token is 144 random bits).

Row images: guards that compare a row's image with its old image (parcel_guard,
land_right_guard) now go through row_image(), which leaves out every generated column
(pg_attribute.attgenerated <> ''): PostgreSQL computes generated columns after BEFORE
triggers, so NEW holds NULL there, and the generated value is derived from columns the
comparison still covers.  0029 had excluded parcel.county_code by name; no name list now.

Cost on a large register (docs/scaling.md; bench/citus_migration.py): 253 s on a generated
register of 1M parcels, 215 s of it the UPDATE … FROM fills of the copied columns; the
generated column rewrites land_right; keys and unique indexes are rebuilt; the foreign keys
are added NOT VALID and then validated.  One transaction: its locks are held to the end.

Revision ID: 0036_citus
Revises: 0032_fk_indexes
"""
from alembic import op

revision = "0036_citus"
down_revision = "0034_import_speed"
branch_labels = None
depends_on = None

ROW_IMAGE = """
CREATE OR REPLACE FUNCTION row_image(r anyelement) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = public, pg_temp AS $$
  -- a row's image without its generated columns (NULL in NEW inside a BEFORE trigger)
  SELECT to_jsonb(r) - coalesce((
    SELECT array_agg(a.attname::text) FROM pg_catalog.pg_type t
    JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid
    WHERE t.oid = pg_catalog.pg_typeof(r) AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attgenerated <> ''), '{}'::text[])
$$;
"""

# parcel_guard() as 0034 left it (0029's, with the relate prefilter); {compare} is its
# "nothing but the lifespan changes" test.
PARCEL_GUARD = r"""
CREATE OR REPLACE FUNCTION public.parcel_guard()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
  tol float8;
  clash record;
  b box2d;
  x int; y int;
  skip boolean := false;
  new_valid boolean;
BEGIN
  IF TG_OP = 'INSERT' AND current_setting('sanquan.on_overlap', true) = 'skip' THEN
    skip := true;  -- asked for by this statement, and for this row only
    PERFORM set_config('sanquan.on_overlap', '', true);
  END IF;
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'parcel.history: a registered parcel is never deleted; end its lifespan instead'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'UPDATE' THEN
    IF OLD.end_lifespan IS NOT NULL THEN
      RAISE EXCEPTION 'parcel.history: version % of parcel % is history and is never rewritten', OLD.version, OLD.code
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF {compare} THEN
      RAISE EXCEPTION 'parcel.history: parcel % is changed by a new version, never in place', OLD.code
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.end_lifespan IS NOT NULL THEN
    RETURN NEW;  -- a past version being recorded
  END IF;
  IF current_setting('sanquan.bulk_checked', true) = 'on' THEN
    RETURN NEW;  -- checked set-wise under a table lock (see parcel_bulk_guard)
  END IF;
  -- Serialise registrations that could overlap: lock every 0.01-degree cell the box touches,
  -- always in the same order, so two overlapping parcels never pass the check side by side.
  b := box2d(NEW.geom);
  FOR x IN floor(ST_XMin(b) * 100)::int .. floor(ST_XMax(b) * 100)::int LOOP
    FOR y IN floor(ST_YMin(b) * 100)::int .. floor(ST_YMax(b) * 100)::int LOOP
      PERFORM pg_advisory_xact_lock(x, y);
    END LOOP;
  END LOOP;
  tol := coalesce((SELECT value::float8 FROM registry_setting WHERE key = 'overlap_tolerance_m2'), 1.0);
  new_valid := ST_IsValid(NEW.geom);
  -- The area (an intersection and a transformation, ~10x a relate) only where the interiors
  -- meet: the rule of the import's overlap check.  ST_Relate raises on invalid input, so a
  -- pair with an invalid geometry still goes to overlap_m2, which repairs it.
  SELECT x.code, x.area INTO clash
    FROM (SELECT p.code, overlap_m2(p.geom, NEW.geom, NEW.survey_srid) AS area
          FROM parcel p WHERE p.end_lifespan IS NULL AND p.geom && NEW.geom
            AND (NOT new_valid OR NOT ST_IsValid(p.geom)
                 OR ST_Relate(p.geom, NEW.geom, '2********'))
          OFFSET 0) x
   WHERE x.area > tol
   LIMIT 1;
  IF FOUND THEN
    IF skip THEN
      PERFORM set_config('sanquan.clash', clash.code || '|' || clash.area || '|' || tol, true);
      RETURN NULL;  -- refused: the row is not inserted, the caller reports the rule
    END IF;
    RAISE EXCEPTION 'parcel.overlap: parcel % overlaps registered parcel % by % m² (tolerance % m²)',
      NEW.code, clash.code, round(clash.area::numeric, 2), tol
      USING ERRCODE = 'exclusion_violation';
  END IF;
  RETURN NEW;
END $function$;
"""
PARCEL_COMPARE = "(row_image(NEW) - 'end_lifespan') <> (row_image(OLD) - 'end_lifespan')"
PARCEL_COMPARE_BEFORE = ("(to_jsonb(NEW) - 'end_lifespan' - 'geom_web' - 'county_code') <> "
                         "(to_jsonb(OLD) - 'end_lifespan' - 'geom_web' - 'county_code')")

# land_right_guard() as 0016 left it; {compare} is its "a right changes by a new version" test.
RIGHT_GUARD = r"""
CREATE OR REPLACE FUNCTION public.land_right_guard()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'right.history: a right is never deleted; it ends on a lawful ground'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.status = 'ended' OR OLD.end_lifespan IS NOT NULL THEN
    RAISE EXCEPTION 'right.history: an ended or superseded right is history and is never rewritten'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'ended' AND coalesce(NEW.end_ground, '') NOT IN
     ('expiry','voluntary_withdrawal','expropriation','court_judgment','mutation','holder_extinct')
     AND NOT (NEW.kind = 'management' AND NEW.end_ground = 'transfer_terminated') THEN
    RAISE EXCEPTION 'right.end.forbidden_ground: a right may not end on ground "%"; settling in town is never a ground (农村土地承包法 art 27; 乡村振兴促进法 art 55)', NEW.end_ground
      USING ERRCODE = 'check_violation';
  END IF;
  IF {compare} THEN
    RAISE EXCEPTION 'right.history: a right changes by a new version, never in place'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'current' AND NEW.end_record_id IS NOT NULL THEN
    RAISE EXCEPTION 'right.history: a current right carries no end record'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'ended' AND NEW.end_lifespan IS NOT NULL THEN
    RAISE EXCEPTION 'right.end.silent: a right ends by its recorded end, not by also closing its lifespan'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $function$;
"""
_ENDS = "- 'status' - 'end_ground' - 'end_evidence' - 'ended_on' - 'end_lifespan' - 'end_record_id'"
RIGHT_COMPARE = f"(row_image(NEW) {_ENDS})\n     <> (row_image(OLD) {_ENDS})"
RIGHT_COMPARE_BEFORE = f"(to_jsonb(NEW) {_ENDS})\n     <> (to_jsonb(OLD) {_ENDS})"

# The county of a row's right: by id (a right's parcels, its certificates) or by uid (an
# encumbrance names the right, not a version; every version has the same codes).
COUNTY_FROM_RIGHT = """
CREATE OR REPLACE FUNCTION county_code_from_right() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  NEW.county_code := (SELECT r.county_code FROM land_right r WHERE r.id = NEW.right_id);
  RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION county_code_from_right_uid() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  NEW.county_code := (SELECT r.county_code FROM land_right r WHERE r.uid = NEW.right_uid
                      ORDER BY r.version DESC LIMIT 1);
  RETURN NEW;
END $$;
"""
# table: (trigger function, the columns it reads)
CHILDREN = {"land_right_parcel": ("county_code_from_right", "right_id"),
            "certificate": ("county_code_from_right", "right_id"),
            "right_encumbrance": ("county_code_from_right_uid", "right_uid")}

# unique indexes that gain county_code: name -> (table, columns, predicate)
UNIQUE_INDEXES = {
    "uq_land_right_current_version": ("land_right", "uid", "end_lifespan IS NULL"),
    "uq_land_right_one_homestead": (
        "land_right", "holder_household_code",
        "kind = 'homestead' AND status = 'current' AND end_lifespan IS NULL"),
    "uq_certificate_valid_number": ("certificate", "kind, number", "status = 'valid'"),
    "uq_certificate_valid_right": ("certificate", "right_uid", "status = 'valid'"),
}
UNIQUE_CONSTRAINTS = {"uq_certificate_edition": ("certificate", "kind, number, edition"),
                      "uq_certificate_token": ("certificate", "token")}
# foreign keys between distributed tables: name -> (table, column, referred table)
FKS = {"fk_land_right_parcel_right_id_land_right": ("land_right_parcel", "right_id", "land_right"),
       "fk_certificate_right_id_land_right": ("certificate", "right_id", "land_right"),
       "fk_certificate_replaces_id_certificate": ("certificate", "replaces_id", "certificate")}
PKS = ("land_right", "land_right_parcel", "certificate")


COUNTY_FROM_HOUSEHOLD = """
CREATE OR REPLACE FUNCTION county_code_from_household() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  NEW.county_code := (SELECT h.county_code FROM household h WHERE h.id = NEW.household_id);
  RETURN NEW;
END $$;
"""


def _member_up() -> None:
    op.execute("ALTER TABLE household ADD CONSTRAINT uq_household_id UNIQUE (id, county_code)")
    op.execute(COUNTY_FROM_HOUSEHOLD)
    op.execute("ALTER TABLE household_member ADD COLUMN county_code varchar(6)")
    op.execute("ALTER TABLE household_member DISABLE TRIGGER USER")
    op.execute("UPDATE household_member m SET county_code = h.county_code FROM household h "
               "WHERE h.id = m.household_id")
    op.execute("ALTER TABLE household_member ENABLE TRIGGER USER")
    op.execute("ALTER TABLE household_member ALTER COLUMN county_code SET NOT NULL")
    op.execute("CREATE TRIGGER household_member_county_code BEFORE INSERT OR UPDATE OF "
               "household_id, county_code ON household_member FOR EACH ROW "
               "EXECUTE FUNCTION county_code_from_household()")
    op.execute("ALTER TABLE household_member DROP CONSTRAINT pk_household_member, "
               "ADD CONSTRAINT pk_household_member PRIMARY KEY (id, county_code)")
    op.execute("DROP INDEX uq_household_member_current")
    op.execute("CREATE UNIQUE INDEX uq_household_member_current ON household_member "
               "(household_id, person_id, county_code) WHERE left_on IS NULL")
    op.execute("ALTER TABLE household_member DROP CONSTRAINT "
               "fk_household_member_household_id_household")
    op.execute("ALTER TABLE household_member ADD CONSTRAINT "
               "fk_household_member_household_id_household FOREIGN KEY (household_id, "
               "county_code) REFERENCES household (id, county_code) NOT VALID")
    op.execute("ALTER TABLE household_member VALIDATE CONSTRAINT "
               "fk_household_member_household_id_household")


def _member_down() -> None:
    op.execute("ALTER TABLE household_member DROP CONSTRAINT "
               "fk_household_member_household_id_household")
    op.execute("ALTER TABLE household_member ADD CONSTRAINT "
               "fk_household_member_household_id_household FOREIGN KEY (household_id) "
               "REFERENCES household (id)")
    op.execute("DROP INDEX uq_household_member_current")
    op.execute("CREATE UNIQUE INDEX uq_household_member_current ON household_member "
               "(household_id, person_id) WHERE left_on IS NULL")
    op.execute("ALTER TABLE household_member DROP CONSTRAINT pk_household_member, "
               "ADD CONSTRAINT pk_household_member PRIMARY KEY (id)")
    op.execute("DROP TRIGGER household_member_county_code ON household_member")
    op.execute("ALTER TABLE household_member DROP COLUMN county_code")
    op.execute("DROP FUNCTION county_code_from_household()")
    op.execute("ALTER TABLE household DROP CONSTRAINT uq_household_id")


COUNTY_FROM_COLLECTIVE = """
CREATE OR REPLACE FUNCTION county_code_from_collective() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  NEW.county_code := (SELECT c.county_code FROM collective c WHERE c.id = NEW.collective_id);
  RETURN NEW;
END $$;
"""
# table: (unique indexes: name -> (columns, predicate), unique constraints: name -> columns,
#         foreign keys: name -> (column, referred table))
COLLECTIVE_CHILDREN = {
    "charter_clause": ({}, {"uq_charter_clause_no": "collective_id, clause_no"},
                       {"fk_charter_clause_collective_id_collective": ("collective_id",
                                                                       "collective")}),
    "membership": ({"uq_membership_active": ("person_id, collective_id", "status = 'active'")},
                   {},
                   {"fk_membership_collective_id_collective": ("collective_id", "collective"),
                    "fk_membership_end_charter_clause_id_charter_clause": (
                        "end_charter_clause_id", "charter_clause")}),
}


def _collective_children_up() -> None:
    op.execute("ALTER TABLE collective ADD CONSTRAINT uq_collective_id UNIQUE (id, county_code)")
    op.execute(COUNTY_FROM_COLLECTIVE)
    for table, (_, _, fks) in COLLECTIVE_CHILDREN.items():
        for name in fks:  # membership's points at charter_clause's key, rebuilt below
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for table, (indexes, uniques, _) in COLLECTIVE_CHILDREN.items():
        op.execute(f"ALTER TABLE {table} ADD COLUMN county_code varchar(6)")
        op.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        op.execute(f"UPDATE {table} t SET county_code = c.county_code FROM collective c "
                   "WHERE c.id = t.collective_id")
        op.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN county_code SET NOT NULL")
        op.execute(f"CREATE TRIGGER {table}_county_code BEFORE INSERT OR UPDATE OF "
                   f"collective_id, county_code ON {table} FOR EACH ROW "
                   "EXECUTE FUNCTION county_code_from_collective()")
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, "
                   f"ADD CONSTRAINT pk_{table} PRIMARY KEY (id, county_code)")
        for name, (cols, where) in indexes.items():
            op.execute(f"DROP INDEX {name}")
            op.execute(f"CREATE UNIQUE INDEX {name} ON {table} ({cols}, county_code) "
                       f"WHERE {where}")
        for name, cols in uniques.items():
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}, "
                       f"ADD CONSTRAINT {name} UNIQUE ({cols}, county_code)")
    for table, (_, _, fks) in COLLECTIVE_CHILDREN.items():
        for name, (col, ref) in fks.items():
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}, "
                       f"county_code) REFERENCES {ref} (id, county_code) NOT VALID")
            op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")


def _collective_children_down() -> None:
    for table, (_, _, fks) in COLLECTIVE_CHILDREN.items():
        for name in fks:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for table, (indexes, uniques, _) in COLLECTIVE_CHILDREN.items():
        for name, cols in uniques.items():
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}, "
                       f"ADD CONSTRAINT {name} UNIQUE ({cols})")
        for name, (cols, where) in indexes.items():
            op.execute(f"DROP INDEX {name}")
            op.execute(f"CREATE UNIQUE INDEX {name} ON {table} ({cols}) WHERE {where}")
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, "
                   f"ADD CONSTRAINT pk_{table} PRIMARY KEY (id)")
        op.execute(f"DROP TRIGGER {table}_county_code ON {table}")
        op.execute(f"ALTER TABLE {table} DROP COLUMN county_code")
    for table, (_, _, fks) in COLLECTIVE_CHILDREN.items():
        for name, (col, ref) in fks.items():
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}) "
                       f"REFERENCES {ref} (id)")
    op.execute("DROP FUNCTION county_code_from_collective()")
    op.execute("ALTER TABLE collective DROP CONSTRAINT uq_collective_id")


COUNTY_FROM_CHILD_PARCEL = """
CREATE OR REPLACE FUNCTION county_code_from_child_parcel() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  NEW.county_code := (SELECT p.county_code FROM parcel p WHERE p.id = NEW.child_id);
  RETURN NEW;
END $$;
"""


def _lineage_up() -> None:
    op.execute(COUNTY_FROM_CHILD_PARCEL)
    op.execute("ALTER TABLE parcel_lineage ADD COLUMN county_code varchar(6)")
    op.execute("UPDATE parcel_lineage l SET county_code = p.county_code FROM parcel p "
               "WHERE p.id = l.child_id")
    op.execute("ALTER TABLE parcel_lineage ALTER COLUMN county_code SET NOT NULL")
    op.execute("CREATE TRIGGER parcel_lineage_county_code BEFORE INSERT OR UPDATE OF child_id, "
               "county_code ON parcel_lineage FOR EACH ROW "
               "EXECUTE FUNCTION county_code_from_child_parcel()")
    op.execute("ALTER TABLE parcel_lineage DROP CONSTRAINT pk_parcel_lineage, ADD CONSTRAINT "
               "pk_parcel_lineage PRIMARY KEY (parent_id, child_id, county_code)")


def _lineage_down() -> None:
    op.execute("ALTER TABLE parcel_lineage DROP CONSTRAINT pk_parcel_lineage, ADD CONSTRAINT "
               "pk_parcel_lineage PRIMARY KEY (parent_id, child_id)")
    op.execute("DROP TRIGGER parcel_lineage_county_code ON parcel_lineage")
    op.execute("ALTER TABLE parcel_lineage DROP COLUMN county_code")
    op.execute("DROP FUNCTION county_code_from_child_parcel()")


def _guards(parcel_compare: str, right_compare: str) -> None:
    op.execute(PARCEL_GUARD.replace("{compare}", parcel_compare))
    op.execute(RIGHT_GUARD.replace("{compare}", right_compare))


def upgrade():
    op.execute(ROW_IMAGE)
    _guards(PARCEL_COMPARE, RIGHT_COMPARE)
    for name, (table, _, _) in FKS.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    op.execute("ALTER TABLE land_right ADD COLUMN county_code varchar(6) NOT NULL GENERATED "
               "ALWAYS AS (left(coalesce(fbfbm, holder_household_code, contract_code), 6)) STORED")
    op.execute(COUNTY_FROM_RIGHT)
    for table, (fn, col) in CHILDREN.items():
        op.execute(f"ALTER TABLE {table} ADD COLUMN county_code varchar(6)")
        key = "r.id = t.right_id" if col == "right_id" else "r.uid = t.right_uid"
        # the guards of these tables refuse every update (history): the one fill of the new
        # column runs without them, in this migration's transaction
        op.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        op.execute(f"UPDATE {table} t SET county_code = r.county_code FROM land_right r "
                   f"WHERE {key}")
        op.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN county_code SET NOT NULL")
        op.execute(f"CREATE TRIGGER {table}_county_code BEFORE INSERT OR UPDATE OF {col}, "
                   f"county_code ON {table} FOR EACH ROW EXECUTE FUNCTION {fn}()")
    for table in PKS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, "
                   f"ADD CONSTRAINT pk_{table} PRIMARY KEY (id, county_code)")
    for name, (table, cols, where) in UNIQUE_INDEXES.items():
        op.execute(f"DROP INDEX {name}")
        op.execute(f"CREATE UNIQUE INDEX {name} ON {table} ({cols}, county_code) WHERE {where}")
    for name, (table, cols) in UNIQUE_CONSTRAINTS.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}, "
                   f"ADD CONSTRAINT {name} UNIQUE ({cols}, county_code)")
    for name, (table, col, ref) in FKS.items():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}, county_code) "
                   f"REFERENCES {ref} (id, county_code) NOT VALID")
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
    _member_up()
    _collective_children_up()
    _lineage_up()


def downgrade():
    _lineage_down()
    _collective_children_down()
    _member_down()
    for name, (table, _, _) in FKS.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for name, (table, cols) in UNIQUE_CONSTRAINTS.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}, "
                   f"ADD CONSTRAINT {name} UNIQUE ({cols})")
    for name, (table, cols, where) in UNIQUE_INDEXES.items():
        op.execute(f"DROP INDEX {name}")
        op.execute(f"CREATE UNIQUE INDEX {name} ON {table} ({cols}) WHERE {where}")
    for table in PKS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, "
                   f"ADD CONSTRAINT pk_{table} PRIMARY KEY (id)")
    for table in CHILDREN:
        op.execute(f"DROP TRIGGER {table}_county_code ON {table}")
        op.execute(f"ALTER TABLE {table} DROP COLUMN county_code")
    op.execute("DROP FUNCTION county_code_from_right(), county_code_from_right_uid()")
    op.execute("ALTER TABLE land_right DROP COLUMN county_code")
    for name, (table, col, ref) in FKS.items():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({col}) "
                   f"REFERENCES {ref} (id)")
    _guards(PARCEL_COMPARE_BEFORE, RIGHT_COMPARE_BEFORE)
    op.execute("DROP FUNCTION row_image(anyelement)")
