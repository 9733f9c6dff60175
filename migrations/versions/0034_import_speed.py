"""Import and registration speed (issue 18).

1. The staged tables' statistics without their attributes.

refresh_statistics() analysed the whole of import_feature and import_record after each
staging, the jsonb attributes too: sorting a sample of 30,000 jsonb documents for their
distinct values and most common values was about two thirds of the time (0.9 of 1.3 s and
0.9 of 1.35 s on the bench's 20,000-parcel delivery, machine under load) and no check's plan
uses them — the checks read attributes with ->>, whose selectivity the planner estimates
without column statistics.  The staging tables are now analysed on the columns the plans use:
keys, batch, layer or table, status, code, and the two geometries (their && estimates in the
overlap joins).  Row counts (what 0026 added this for) come with any ANALYZE.

2. parcel_guard() (one registration's overlap check, under the cell locks) computed the overlap
area of the new parcel with every current parcel whose box touches it — ~0.6 ms each (an
intersection on a grid, a transformation, a subtransaction), about a dozen neighbours in a
village: most of a registration, and 2.4× the raw check + insert at p99 (bench/RESULTS.md).
Neighbours whose interiors do not meet overlap by nothing; the area is now computed only for
the others (ST_Relate, the import's overlap rule), and, as before, for any pair with an invalid
geometry (ST_Relate would raise on it; overlap_m2 repairs it).

Revision ID: 0034_import_speed
Revises: 0032_fk_indexes
"""
from alembic import op

revision = "0034_import_speed"
down_revision = "0032_fk_indexes"
branch_labels = None
depends_on = None

REFRESH = """
CREATE OR REPLACE FUNCTION refresh_statistics(t text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF t = 'import_feature' THEN
    ANALYZE import_feature (id, batch_id, layer, fid, code, status, corrected_from_id, geom,
                            geom_stored);
  ELSIF t = 'import_record' THEN
    ANALYZE import_record (id, batch_id, tbl, rownum, status);
  ELSIF t = 'parcel' THEN
    ANALYZE parcel;
  ELSE
    RAISE EXCEPTION 'refresh_statistics: % is not on the list', t;
  END IF;
END $$;
"""

GUARD = r"""
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
    IF (to_jsonb(NEW) - 'end_lifespan' - 'geom_web' - 'county_code') <> (to_jsonb(OLD) - 'end_lifespan' - 'geom_web' - 'county_code') THEN
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

# parcel_guard() as 0029 left it (restored on downgrade; its text, not a read of 0029's file).
GUARD_0029 = r"""
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
    IF (to_jsonb(NEW) - 'end_lifespan' - 'geom_web' - 'county_code') <> (to_jsonb(OLD) - 'end_lifespan' - 'geom_web' - 'county_code') THEN
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
END $function$;
"""

# 0026's definition, restored on downgrade (its text, not a read of 0026's file).
REFRESH_0026 = """
CREATE OR REPLACE FUNCTION refresh_statistics(t text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF t NOT IN ('parcel', 'import_feature', 'import_record') THEN
    RAISE EXCEPTION 'refresh_statistics: % is not on the list', t;
  END IF;
  EXECUTE format('ANALYZE %I', t);
END $$;
"""


def upgrade():
    op.execute(REFRESH)
    op.execute(GUARD)


def downgrade():
    op.execute(GUARD_0029)
    op.execute(REFRESH_0026)
