"""Issue 19 attacks: every parcel change (amend, split, merge, mutation) was a 500.

0026_scale added `county_code` to parcel as a stored generated column.  In a BEFORE UPDATE
trigger the NEW row does not yet hold its generated columns (PostgreSQL computes them after
BEFORE triggers), so parcel_guard()'s "nothing but the lifespan changes" comparison of
to_jsonb(NEW) with to_jsonb(OLD) saw county_code go to null on every UPDATE that ends a
version, and refused it: "parcel.history: parcel … is changed by a new version, never in
place".  Like geom_web (also generated), county_code is left out of the comparison; it is
derived from the code, which the comparison still covers.

Revision ID: 0029_api_attacks
Revises: 0028_web_attacks
"""
from alembic import op

revision = "0029_api_attacks"
down_revision = "0028_web_attacks"
branch_labels = None
depends_on = None

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

# parcel_guard() as it was before this migration (restored on downgrade).
GUARD_BEFORE = r"""
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
    op.execute(GUARD)


def downgrade():
    op.execute(GUARD_BEFORE)
