"""The parcel history guard ignores the generated county code (issue 18's 0026_scale).

A BEFORE UPDATE trigger sees generated columns as NULL in NEW (PostgreSQL computes them after the
BEFORE triggers), so the in-place-change check of parcel_guard compared a NULL county code with
the stored one and refused every lawful end of a lifespan.  The county code is derived from the
parcel code, which the check still covers.  Only the comparison changes; the rest of the
function is the text 0021_house left in force.

Revision ID: 0030_integ
Revises: 0028_web_attacks
"""
from alembic import op

revision = "0030_integ"
down_revision = "0028_web_attacks"
branch_labels = None
depends_on = None

NEW = r"""
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
    IF (to_jsonb(NEW) - 'end_lifespan' - 'geom_web' - 'county_code')
       <> (to_jsonb(OLD) - 'end_lifespan' - 'geom_web' - 'county_code') THEN
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

OLD = r"""
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
END $function$;
"""


def upgrade():
    op.execute(NEW)


def downgrade():
    op.execute(OLD)
