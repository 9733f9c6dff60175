"""robust overlap area: overlap_m2(a, b, srid) never fails on nearly coincident edges

Exported and re-imported parcels, or parcels moved through a CRS round trip, share edges only
up to floating-point noise; GEOS's relate can then raise a TopologyException.  overlap_m2 tries
the fast exact path and falls back to a snap-rounded overlay (OverlayNG with a grid), which is
robust.  The parcel guard trigger uses it.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FN = r"""
CREATE OR REPLACE FUNCTION overlap_m2(a geometry, b geometry, srid int) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE grid float8 := CASE WHEN ST_SRID(a) IN (4326, 4490) THEN 1e-9 ELSE 1e-4 END;
BEGIN
  IF NOT ST_Intersects(a, b) THEN RETURN 0; END IF;
  BEGIN
    IF NOT ST_Relate(a, b, '2********') THEN RETURN 0; END IF;
    RETURN ST_Area(ST_Transform(ST_Intersection(a, b), srid));
  EXCEPTION WHEN OTHERS THEN
    RETURN ST_Area(ST_Transform(ST_Intersection(ST_MakeValid(a), ST_MakeValid(b), grid), srid));
  END;
END $$;
"""

# parcel_guard() as this revision leaves it: 0002's, with the overlap query calling overlap_m2.
GUARD_SQL = r"""
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

# parcel_guard() as 0002 created it (restored on downgrade), written out in full here so that
# this migration never reads another migration's file.
GUARD_SQL_0002 = r"""
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
  SELECT p.code, ST_Area(ST_Transform(ST_Intersection(p.geom, NEW.geom), NEW.survey_srid)) AS area
    INTO clash
    FROM parcel p
   WHERE p.end_lifespan IS NULL AND p.geom && NEW.geom
     AND ST_Relate(p.geom, NEW.geom, '2********')
     AND ST_Area(ST_Transform(ST_Intersection(p.geom, NEW.geom), NEW.survey_srid)) > tol
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'parcel.overlap: parcel % overlaps registered parcel % by % m² (tolerance % m²)',
      NEW.code, clash.code, round(clash.area::numeric, 2), tol
      USING ERRCODE = 'exclusion_violation';
  END IF;
  RETURN NEW;
END $$;
"""


def upgrade():
    op.execute(FN)
    op.execute(GUARD_SQL)


def downgrade():
    op.execute(GUARD_SQL_0002)
    op.execute("DROP FUNCTION IF EXISTS overlap_m2")
