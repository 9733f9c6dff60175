"""registration in one call: one overlap check, a cached plan, the audit entry beside it

A registration used to check the overlap twice in one statement: once in the operation's
guard (before any lock) and once in this trigger (under the cell locks).  Only the second can
be trusted under concurrency, so the first was a racy duplicate costing a spatial query and the
planning of it.  Now the operation asks the trigger — by `sanquan.on_overlap = 'skip'`, set
in the same statement and consumed by the next inserted row — to refuse an overlapping row by
skipping it and to say why in `sanquan.clash` (code|area|tolerance), instead of aborting the
transaction; the operation then raises the rule with its legal source.  Without the setting
(any other writer, direct SQL) the trigger raises as before.  Skipping never lets an
overlapping row in.

parcel_insert() writes one parcel version (and, for a registration, its audit entry) in one
call.  As one SQL statement built in Python (INSERT … RETURNING with an audit CTE) it was
planned afresh at every call — PostgreSQL kept choosing custom plans, about 1 ms a time on the
project machine, more than the insert itself; inside a PL/pgSQL function its statements keep a
generic plan for the session.

The statement-level bulk guard no longer scans pg_locks on every insert: only when the bulk
setting is on.

Revision ID: 0010
Revises: 0009
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# parcel_guard() as this revision leaves it: 0003's, which asks to skip (not abort) an
# overlapping row when the inserting statement sets sanquan.on_overlap = 'skip'.
GUARD_SQL = r"""
CREATE OR REPLACE FUNCTION parcel_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  tol float8;
  clash record;
  b box2d;
  x int; y int;
  skip boolean := false;
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
    IF (to_jsonb(NEW) - 'end_lifespan' - 'geom_web') <> (to_jsonb(OLD) - 'end_lifespan' - 'geom_web') THEN
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
  SELECT x.code, x.area INTO clash
    FROM (SELECT p.code, overlap_m2(p.geom, NEW.geom, NEW.survey_srid) AS area
          FROM parcel p WHERE p.end_lifespan IS NULL AND p.geom && NEW.geom) x
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
END $$;
"""

# parcel_guard() as 0003 left it (restored on downgrade).
GUARD_SQL_0003 = r"""
CREATE OR REPLACE FUNCTION parcel_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  tol float8;
  clash record;
  b box2d;
  x int; y int;
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'parcel.history: a registered parcel is never deleted; end its lifespan instead'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'UPDATE' THEN
    IF OLD.end_lifespan IS NOT NULL THEN
      RAISE EXCEPTION 'parcel.history: version % of parcel % is history and is never rewritten', OLD.version, OLD.code
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF (to_jsonb(NEW) - 'end_lifespan' - 'geom_web') <> (to_jsonb(OLD) - 'end_lifespan' - 'geom_web') THEN
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
  SELECT x.code, x.area INTO clash
    FROM (SELECT p.code, overlap_m2(p.geom, NEW.geom, NEW.survey_srid) AS area
          FROM parcel p WHERE p.end_lifespan IS NULL AND p.geom && NEW.geom) x
   WHERE x.area > tol
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'parcel.overlap: parcel % overlaps registered parcel % by % m² (tolerance % m²)',
      NEW.code, clash.code, round(clash.area::numeric, 2), tol
      USING ERRCODE = 'exclusion_violation';
  END IF;
  RETURN NEW;
END $$;
"""

# parcel_bulk_guard() as 0002 created it (restored on downgrade), which scans pg_locks on every
# insert.
BULK_GUARD_0002 = r"""
CREATE OR REPLACE FUNCTION parcel_bulk_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('sanquan.bulk_checked', true) = 'on' AND NOT EXISTS (
      SELECT 1 FROM pg_locks WHERE locktype = 'relation' AND relation = 'parcel'::regclass
         AND pid = pg_backend_pid() AND granted
         AND mode IN ('ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')) THEN
    RAISE EXCEPTION 'parcel.bulk: a bulk load must hold a SHARE ROW EXCLUSIVE lock on parcel'
      USING ERRCODE = 'lock_not_available';
  END IF;
  RETURN NULL;
END $$;
"""

BULK_GUARD = r"""
CREATE OR REPLACE FUNCTION parcel_bulk_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('sanquan.bulk_checked', true) = 'on' THEN
    IF NOT EXISTS (
        SELECT 1 FROM pg_locks WHERE locktype = 'relation' AND relation = 'parcel'::regclass
           AND pid = pg_backend_pid() AND granted
           AND mode IN ('ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')) THEN
      RAISE EXCEPTION 'parcel.bulk: a bulk load must hold a SHARE ROW EXCLUSIVE lock on parcel'
        USING ERRCODE = 'lock_not_available';
    END IF;
  END IF;
  RETURN NULL;
END $$;
"""

INSERT_FN = r"""
CREATE OR REPLACE FUNCTION parcel_insert(
    v jsonb,                       -- column values by name; absent ones take their defaults
    wkt text, srid int,            -- the geometry as surveyed, and its CRS
    zone int,                      -- the Gauss-Krüger zone the area is computed in
    who text,
    code_must_be_free boolean,     -- return no row if a current parcel has the code
    refuse_by_skipping boolean,    -- ask parcel_guard to skip an overlapping row, not abort
    audit_action text, actor_id int, reason text)   -- the audit entry, when audit_action is set
RETURNS SETOF parcel LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  r parcel := jsonb_populate_record(NULL::parcel, v);
  g geometry := ST_GeomFromText(wkt, srid);
  area numeric;
  n parcel;
BEGIN
  IF code_must_be_free AND EXISTS (
      SELECT 1 FROM parcel p WHERE p.code = r.code AND p.end_lifespan IS NULL) THEN
    RETURN;
  END IF;
  area := round(ST_Area(ST_Transform(g, zone))::numeric, 2);
  IF refuse_by_skipping THEN
    PERFORM set_config('sanquan.on_overlap', 'skip', true);
  END IF;
  INSERT INTO parcel (kind, code, collective_id, household_code, name, syqxz, dklb, tdlylx,
                      dldj, tdyt, sfjbnt, east, south, west, north, witness, remarks, attrs,
                      import_batch_id, uid, version, change_kind, change_reason, survey_srid,
                      geom, scmj, scmjm, begin_lifespan, changed_by)
  VALUES (r.kind, r.code, r.collective_id, r.household_code, r.name, r.syqxz, r.dklb, r.tdlylx,
          r.dldj, r.tdyt, r.sfjbnt, r.east, r.south, r.west, r.north, r.witness, r.remarks,
          coalesce(r.attrs, '{}'), r.import_batch_id, coalesce(r.uid, nextval('parcel_uid_seq')),
          coalesce(r.version, 1), coalesce(r.change_kind, 'register'), r.change_reason, zone,
          -- as stored: repeated vertices (within 1 mm) dropped, in CGCS2000 (imports.validation.STORED)
          ST_Multi(ST_Transform(ST_RemoveRepeatedPoints(g, CASE WHEN srid IN (4326, 4490)
                                                              THEN 1e-8 ELSE 0.001 END), 4490)),
          area, round(area * 0.0015, 2), clock_timestamp(), who)
  RETURNING * INTO n;
  IF n.id IS NULL THEN
    RETURN;  -- refused by parcel_guard (skipped): the caller reads sanquan.clash
  END IF;
  IF audit_action IS NOT NULL THEN
    INSERT INTO audit_log (actor_id, actor_name, action, object_type, object_id, changes, reason)
    VALUES (actor_id, who, audit_action, 'parcel', n.code,
            jsonb_build_object('id', n.id, 'uid', n.uid, 'scmj', n.scmj::text), reason);
  END IF;
  RETURN NEXT n;
END $$;
"""


def upgrade():
    op.execute(GUARD_SQL)
    op.execute(BULK_GUARD)
    op.execute(INSERT_FN)


def downgrade():
    op.execute("DROP FUNCTION IF EXISTS parcel_insert")
    op.execute(GUARD_SQL_0003)
    op.execute(BULK_GUARD_0002)
