"""Attacks on the evening's bulk path and keys (tests/test_atk_db_evening.py): the overlap rule
could be measured in a CRS of the caller's choice, and its tolerance set past its bounds.

- parcel.survey_srid: the Gauss-Krüger zone the overlap and the area are measured in.  Nothing
  bound it, so the app role could insert a parcel with survey_srid 4490 (CGCS2000 geographic):
  parcel_guard() measured the overlap in square degrees (~1e-10 of the m² figure) and let a
  parcel lying on another in.  parcel_register_staged() takes the zone from the staged
  feature's geometry (the app role's to write): a feature staged near 57°W gave zone
  4509 - 19 = 4490, the same square degrees.  Now a CHECK: a CGCS2000 3-degree zone
  (EPSG:4513–4554), the only values the application writes (app/parcels/operations.py
  `_insert`, the import's zone).  Transverse Mercator never shrinks an area, so no zone of that
  range measures an overlap in China below its size.
- registry_setting 'overlap_tolerance_m2': the settings catalogue bounds it to 0–10 m²
  (app/settings/operations.py), but the app role writes the table directly: 'NaN' made the
  per-row check's `area > tol` false for every pair (NaN is larger than every number), and
  '1e12' or 'Infinity' let any overlap in on both paths.  Now a CHECK: a plain decimal number
  between 0 and 10.
- parcel.geom: both overlap checks find their pairs by box (&&).  A NaN coordinate makes the
  box NaN (or wrong), and && is false against everything: parcel_register_staged() registered a
  staged geometry holding a registered parcel's ring with NaN points added (the per-row check
  failed on it only by accident, an integer overflow in its cell loop).  Now a CHECK: the
  area is finite (any NaN or infinite coordinate makes the ring's area NaN or infinite) and
  the box lies within longitude/latitude.
- land_right: a new version could carry an earlier term end (the app role's INSERT, or
  app.rights.operations.extend_contract with negative years); then 'expiry' passed
  land_right_end_proof() at once — a contract ended during its term, the land taken back
  (农村土地承包法 art 21, 27).  Now a BEFORE INSERT trigger, land_right_term_guard(): a
  version's term end is never earlier than its predecessor's (nor dropped from it: NULL means
  no end).  New function and trigger; no earlier function is redefined.

Revision ID: 0043_atk_db2
Revises: 0041_search2
"""
from alembic import op

revision = "0043_atk_db2"
down_revision = "0041_search2"
branch_labels = None
depends_on = None

TERM_GUARD = """
CREATE FUNCTION land_right_term_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE prev_end date;
BEGIN
  IF NEW.version > 1 THEN
    SELECT term_end INTO prev_end FROM land_right
     WHERE uid = NEW.uid AND version = NEW.version - 1;
    IF prev_end IS NOT NULL AND (NEW.term_end IS NULL OR NEW.term_end < prev_end) THEN
      RAISE EXCEPTION 'right.term.shortened: version % of right % ends its term on %, before '
        'the % of the version it follows; the contractor may not take the land back during '
        'the term (农村土地承包法 art 21, 27)',
        NEW.version, NEW.uid, NEW.term_end, prev_end
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  RETURN NEW;
END $$;
"""


def upgrade():
    op.execute("ALTER TABLE parcel ADD CONSTRAINT ck_parcel_survey_srid_gk_zone "
               "CHECK (survey_srid BETWEEN 4513 AND 4554) NOT VALID")
    op.execute("ALTER TABLE parcel VALIDATE CONSTRAINT ck_parcel_survey_srid_gk_zone")
    op.execute("ALTER TABLE parcel ADD CONSTRAINT ck_parcel_geom_finite CHECK ("
               "ST_Area(geom) < 'Infinity'::float8 AND ST_XMin(geom) >= -180 "
               "AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90) "
               "NOT VALID")
    op.execute("ALTER TABLE parcel VALIDATE CONSTRAINT ck_parcel_geom_finite")
    op.execute(r"""ALTER TABLE registry_setting ADD CONSTRAINT ck_registry_setting_overlap_tolerance
        CHECK (CASE WHEN key <> 'overlap_tolerance_m2' THEN true
                    WHEN value ~ '^[0-9]{1,6}(\.[0-9]{0,12})?([eE][-+]?[0-9]{1,3})?$'
                      THEN value::numeric BETWEEN 0 AND 10
                    ELSE false END) NOT VALID""")
    op.execute("ALTER TABLE registry_setting "
               "VALIDATE CONSTRAINT ck_registry_setting_overlap_tolerance")
    op.execute(TERM_GUARD)
    op.execute("CREATE TRIGGER land_right_term_guard BEFORE INSERT ON land_right "
               "FOR EACH ROW EXECUTE FUNCTION land_right_term_guard()")


def downgrade():
    op.execute("DROP TRIGGER land_right_term_guard ON land_right")
    op.execute("DROP FUNCTION land_right_term_guard()")
    op.execute("ALTER TABLE registry_setting DROP CONSTRAINT ck_registry_setting_overlap_tolerance")
    op.execute("ALTER TABLE parcel DROP CONSTRAINT ck_parcel_geom_finite")
    op.execute("ALTER TABLE parcel DROP CONSTRAINT ck_parcel_survey_srid_gk_zone")
