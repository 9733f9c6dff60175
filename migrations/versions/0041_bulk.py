"""The bulk registration path cannot be used to skip the overlap check (issue 18).

parcel_guard() skipped its per-row overlap check when `sanquan.bulk_checked` was 'on', and
parcel_bulk_guard() only asked that the statement hold a SHARE ROW EXCLUSIVE lock on parcel.
Both are within the app role's rights: any session of that role could
`LOCK TABLE parcel IN SHARE ROW EXCLUSIVE MODE; SET LOCAL sanquan.bulk_checked = 'on'` and
register a parcel lying on another (tests/test_import_fast_path_attacks.py).

Now the bulk insert is parcel_register_staged(batch, feature_ids, who, tolerance), a SECURITY
DEFINER function of the schema's owner, which

- takes the table lock itself (SHARE ROW EXCLUSIVE: no other writer of parcel until commit) and
  refuses to run in a transaction older than its statement (REPEATABLE READ / SERIALIZABLE: its
  snapshot could miss a parcel committed before the lock),
- inserts the batch's valid features (the SQL app.parcels.operations.insert_from_staging ran),
- then checks what it inserted set-wise, with the per-row check's rule: each new parcel against
  every other current parcel — the register and the other new ones — whose box it touches,
  the area (overlap_m2) only where the interiors meet (ST_Relate '2********'), and for every pair
  with an invalid geometry; more than the tolerance (the smaller of the registry's and the
  caller's) refuses the whole statement with `parcel.overlap`, naming both parcels.

The staging rows are the app role's to write, so nothing in them is trusted: the check is on the
rows inserted.  parcel_guard() honours the bypass only when the inserting statement runs as the
owner of parcel (current_user; inside a SECURITY DEFINER function of the owner) — the app role
never is — and the flag is set, which parcel_register_staged() does around its INSERT (a
failure rolls the setting back with the rest).  No
other SECURITY DEFINER function inserts into parcel.  Only the app role may call it.

Redefines parcel_guard() (0036_citus's definition otherwise unchanged).

Revision ID: 0041_bulk
Revises: 0041_citus2
"""
import os

from alembic import op

revision = "0041_bulk"
down_revision = "0041_citus2"
branch_labels = None
depends_on = None

APP_ROLE = os.environ.get("SANQUAN_APP_ROLE", "sanquan_app")

# parcel_guard() as 0036_citus left it; {bulk} is the condition under which the per-row overlap
# check is skipped (the statement checks its rows set-wise).
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
    IF (row_image(NEW) - 'end_lifespan') <> (row_image(OLD) - 'end_lifespan') THEN
      RAISE EXCEPTION 'parcel.history: parcel % is changed by a new version, never in place', OLD.code
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.end_lifespan IS NOT NULL THEN
    RETURN NEW;  -- a past version being recorded
  END IF;
  IF {bulk} THEN
    RETURN NEW;  -- {bulk_comment}
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
# Only inside a function of parcel's owner (parcel_register_staged, which checks its rows
# set-wise); the setting alone is any session's to set.
BULK_NOW = ("current_setting('sanquan.bulk_checked', true) = 'on'\n"
            "     AND (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)\n"
            "       = (SELECT relowner FROM pg_catalog.pg_class WHERE oid = TG_RELID)")
BULK_NOW_COMMENT = "inserted by parcel_register_staged(), which checks its rows set-wise"
BULK_0036 = "current_setting('sanquan.bulk_checked', true) = 'on'"
BULK_0036_COMMENT = "checked set-wise under a table lock (see parcel_bulk_guard)"

REGISTER_STAGED = r"""
CREATE FUNCTION parcel_register_staged(batch int, feature_ids int[], who text,
                                       tolerance_m2 float8)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
-- overlap_m2 is marked PARALLEL SAFE but holds an exception block, which a parallel worker
-- cannot start: the check runs in the leader
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
  ids int[];
  tol float8;
  clash record;
  found_clash int;
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'parcel.bulk: a bulk registration runs in READ COMMITTED (its overlap check must see every parcel committed before its lock)'
      USING ERRCODE = 'invalid_transaction_state';
  END IF;
  LOCK TABLE parcel IN SHARE ROW EXCLUSIVE MODE;
  tol := least(coalesce((SELECT value::float8 FROM registry_setting
                         WHERE key = 'overlap_tolerance_m2'), 1.0),
               coalesce(tolerance_m2, 'infinity'));
  -- A validated delivery's features (all, or feature_ids) as current parcels; area in the
  -- survey's Gauss-Krüger 3-degree zone: the survey CRS when it is such a zone, otherwise the
  -- zone of the parcel's longitude (CGCS2000 EPSG:4534–4554).
  PERFORM set_config('sanquan.bulk_checked', 'on', true);  -- for this statement only
  WITH ins AS (
    INSERT INTO parcel (kind, code, collective_id, household_code, name, syqxz, dklb, tdlylx,
      dldj, tdyt, sfjbnt, scmj, scmjm, east, south, west, north, witness, remarks,
      survey_srid, geom, attrs, import_batch_id, change_kind, change_reason, changed_by)
    SELECT CASE f.layer WHEN 'DK' THEN 'contract' ELSE 'homestead' END, f.code, c.id,
           CASE f.layer WHEN 'DK' THEN hh.cbfbm ELSE nullif(f.attrs->>'CBFBM', '') END,
           f.attrs->>'DKMC', coalesce(f.attrs->>'SYQXZ', '30'), f.attrs->>'DKLB',
           f.attrs->>'TDLYLX', f.attrs->>'DLDJ', coalesce(f.attrs->>'TDYT', '5'),
           f.attrs->>'SFJBNT', round(a.m2::numeric, 2), round(round(a.m2::numeric, 2) * 0.0015, 2),
           f.attrs->>'DKDZ', f.attrs->>'DKNZ', f.attrs->>'DKXZ', f.attrs->>'DKBZ',
           f.attrs->>'ZJRXM', f.attrs->>'DKBZXX', a.zone,
           ST_Multi(f.geom_stored), f.attrs, f.batch_id, 'register',
           'survey import ' || f.batch_id, who
    FROM import_feature f
    CROSS JOIN LATERAL (SELECT CASE WHEN ST_SRID(f.geom) BETWEEN 4513 AND 4554 THEN ST_SRID(f.geom)
      ELSE 4509 + floor((ST_X(ST_Centroid(ST_Transform(f.geom, 4490))) + 1.5) / 3)::int END
      AS zone) z
    CROSS JOIN LATERAL (SELECT z.zone AS zone,
        CASE WHEN ST_SRID(f.geom) = z.zone THEN ST_Area(f.geom)
             ELSE ST_Area(ST_Transform(f.geom, z.zone)) END AS m2) a
    -- each parcel's household from CBDKXX, gathered once and joined by hash
    LEFT JOIN (
        SELECT DISTINCT ON (r.attrs->>'DKBM') r.attrs->>'DKBM' AS dkbm,
               r.attrs->>'CBFBM' AS cbfbm
        FROM import_record r JOIN household h ON h.cbfbm = r.attrs->>'CBFBM'
        WHERE r.batch_id = batch AND r.tbl = 'CBDKXX' AND r.status <> 'superseded'
        ORDER BY r.attrs->>'DKBM', r.id) hh ON f.layer = 'DK' AND hh.dkbm = f.code
    JOIN collective c ON c.fbfbm = CASE
        WHEN f.layer = 'DK' THEN substr(f.code, 1, 14)
        WHEN coalesce(f.attrs->>'FBFBM', '') <> '' THEN f.attrs->>'FBFBM'
        ELSE substr(f.code, 1, 12) || '00' END
    WHERE f.batch_id = batch AND f.status = 'valid'
      AND (feature_ids IS NULL OR cardinality(feature_ids) = 0 OR f.id = ANY(feature_ids))
    RETURNING parcel.id)
  SELECT array_agg(id) INTO ids FROM ins;
  PERFORM set_config('sanquan.bulk_checked', 'off', true);
  IF ids IS NULL THEN
    RETURN 0;
  END IF;
  -- The rows inserted, set-wise, by parcel_guard()'s rule: each against every other current
  -- parcel whose box it touches (the register's GiST index; the new rows are in the table
  -- now), the area only where the interiors meet or a geometry is invalid (ST_Relate raises
  -- on some invalid input; overlap_m2 repairs it).  Each new row's validity is computed once;
  -- a pair of new rows is looked at once (from the one with the higher id).  Rows are told
  -- apart by their key columns (id, county_code).  Run by EXECUTE: planned with the array's
  -- values (an index scan for the new rows), never a generic plan.
  EXECUTE $q$
    WITH n AS MATERIALIZED (
      SELECT id, county_code, code, geom, survey_srid, ST_IsValid(geom) AS ok
      FROM parcel WHERE id = ANY($1) AND end_lifespan IS NULL)
    SELECT x.a, x.b, x.area FROM (
      SELECT n.code AS a, p.code AS b, overlap_m2(p.geom, n.geom, n.survey_srid) AS area
      FROM n
      JOIN parcel p ON p.geom && n.geom AND p.end_lifespan IS NULL
       AND (p.id, p.county_code) IS DISTINCT FROM (n.id, n.county_code)
      LEFT JOIN n AS pn ON (pn.id, pn.county_code) = (p.id, p.county_code)
      WHERE (pn.id IS NULL OR p.id < n.id)
        AND (NOT n.ok OR NOT coalesce(pn.ok, ST_IsValid(p.geom))
             OR ST_Relate(p.geom, n.geom, '2********'))
      OFFSET 0) x
    WHERE x.area > $2
    LIMIT 1$q$ INTO clash USING ids, tol;
  GET DIAGNOSTICS found_clash = ROW_COUNT;
  IF found_clash > 0 THEN
    RAISE EXCEPTION 'parcel.overlap: parcel % overlaps parcel % by % m² (tolerance % m²)',
      clash.a, clash.b, round(clash.area::numeric, 2), tol
      USING ERRCODE = 'exclusion_violation';
  END IF;
  RETURN cardinality(ids);
END $$;
REVOKE ALL ON FUNCTION parcel_register_staged(int, int[], text, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION parcel_register_staged(int, int[], text, float8) TO {app};
"""


def upgrade():
    op.execute(PARCEL_GUARD.replace("{bulk_comment}", BULK_NOW_COMMENT)
               .replace("{bulk}", BULK_NOW))
    op.execute(REGISTER_STAGED.replace("{app}", APP_ROLE))


def downgrade():
    op.execute("DROP FUNCTION parcel_register_staged(int, int[], text, float8)")
    op.execute(PARCEL_GUARD.replace("{bulk_comment}", BULK_0036_COMMENT)
               .replace("{bulk}", BULK_0036))
