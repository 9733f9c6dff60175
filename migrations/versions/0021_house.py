"""One definition per rule (issue 16, point 4): the notice's last day, the overlap area and the
stored geometry as SQL functions the app and the triggers share.

- notice_has_run(notice_end, on_day): a campaign's public notice (公示) runs through its last day
  `notice_end` inclusive — objections are accepted on that day (app.campaigns.lodge_objection) — so
  registration (登簿) is allowed only from the day after. Before, campaign_guard let registration
  happen on the last objection day itself (`notice_end > current_date` refused only the days
  before). The notice period is a configurable local policy (domain.md, opening paragraph; the
  procedure: 农业部 农村土地承包经营权确权登记颁证工作规程 — public notice, objections heard, then
  registration). app.campaigns.operations.notice_has_run is the same rule in Python.
- overlap_area_m2(a, b, srid): the overlap area of two parcels in m², computed in `srid` (the
  survey's zone) with a snap-rounded overlay (OverlayNG, grid 1e-9 degree / 0.1 mm), which does not
  raise on nearly coincident edges. overlap_m2 (the guard trigger's, with a MakeValid retry for
  invalid input) and overlap_m2_ng (set-wise checks) are now this function by their old names; the
  app calls overlap_area_m2. gis.area.overlap_m2 is the same rule in Python (parcel split), proven
  to agree by tests/test_rules_once.py.
- stored_geometry(g): a parcel as stored — repeated vertices within 1 mm (1e-8 degree for
  geographic input) dropped, in CGCS2000 (EPSG:4490). gis/stored.py is the same rule in Python and
  SQL text; tests/test_layers.py proves they agree on generated polygons.

Revision ID: 0021_house
Revises: 0020_market_attacks
"""
from alembic import op

revision = "0021_house"
down_revision = "0020_market_attacks"
branch_labels = None
depends_on = None

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION notice_has_run(notice_end date, on_day date) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = public, pg_temp AS $$
  SELECT notice_end IS NOT NULL AND on_day > notice_end
$$;
COMMENT ON FUNCTION notice_has_run(date, date) IS
  'A public notice runs through its last day (notice_end); registration only from the day after.';

CREATE OR REPLACE FUNCTION stored_geometry(g geometry) RETURNS geometry
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = public, pg_temp AS $$
  SELECT ST_Transform(ST_RemoveRepeatedPoints(g, CASE WHEN ST_SRID(g) IN (4326, 4490)
                                                   THEN 1e-8 ELSE 0.001 END), 4490)
$$;
COMMENT ON FUNCTION stored_geometry(geometry) IS
  'A parcel as stored: repeated vertices within 1 mm (1e-8 degree) dropped, in CGCS2000 (gis/stored.py).';
"""

OVERLAP = r"""
CREATE OR REPLACE FUNCTION overlap_area_m2(a geometry, b geometry, srid int) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = public, pg_temp AS $$
  SELECT CASE WHEN NOT (a && b) THEN 0::float8
         ELSE ST_Area(ST_Transform(ST_Intersection(a, b,
                CASE WHEN ST_SRID(a) IN (4326, 4490) THEN 1e-9 ELSE 1e-4 END), srid)) END
$$;
COMMENT ON FUNCTION overlap_area_m2(geometry, geometry, int) IS
  'The overlap area rule (m² in srid), one definition: overlap_m2 and overlap_m2_ng call it.';

CREATE OR REPLACE FUNCTION overlap_m2_ng(a geometry, b geometry, srid int) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = public, pg_temp AS $$
  SELECT overlap_area_m2(a, b, srid)
$$;

CREATE OR REPLACE FUNCTION overlap_m2(a geometry, b geometry, srid int) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = public, pg_temp AS $$
BEGIN
  IF NOT (a && b) THEN RETURN 0; END IF;
  BEGIN
    RETURN overlap_area_m2(a, b, srid);
  EXCEPTION WHEN OTHERS THEN  -- invalid input: the same rule over its valid form
    RETURN overlap_area_m2(ST_MakeValid(a), ST_MakeValid(b), srid);
  END;
END $$;
"""

OLD_OVERLAP = r"""
CREATE OR REPLACE FUNCTION overlap_m2(a geometry, b geometry, srid int) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = public, pg_temp AS $$
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

CREATE OR REPLACE FUNCTION overlap_m2_ng(a geometry, b geometry, srid int) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = public, pg_temp AS $$
  SELECT ST_Area(ST_Transform(ST_Intersection(a, b,
           CASE WHEN ST_SRID(a) IN (4326, 4490) THEN 1e-9 ELSE 1e-4 END), srid))
$$;

DROP FUNCTION IF EXISTS overlap_area_m2(geometry, geometry, int);
"""

GUARD = r"""
CREATE OR REPLACE FUNCTION campaign_guard() RETURNS trigger LANGUAGE plpgsql
SET search_path = public, pg_temp AS $$
BEGIN
  IF NEW.status = 'registered' AND OLD.status <> 'registered' THEN
    IF EXISTS (SELECT 1 FROM objection WHERE campaign_id = NEW.id AND status = 'open') THEN
      RAISE EXCEPTION 'campaign.open_objection: campaign % cannot register while an objection is open', NEW.id
        USING ERRCODE = 'check_violation';
    END IF;
    IF NOT notice_has_run(NEW.notice_end, current_date) THEN
      RAISE EXCEPTION 'campaign.notice: campaign % cannot register before its public notice has run (through %)', NEW.id, NEW.notice_end
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  IF OLD.status = 'registered' THEN
    RAISE EXCEPTION 'campaign.history: a registered campaign is history' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
"""

OLD_GUARD = r"""
CREATE OR REPLACE FUNCTION campaign_guard() RETURNS trigger LANGUAGE plpgsql
SET search_path = public, pg_temp AS $$
BEGIN
  IF NEW.status = 'registered' AND OLD.status <> 'registered' THEN
    IF EXISTS (SELECT 1 FROM objection WHERE campaign_id = NEW.id AND status = 'open') THEN
      RAISE EXCEPTION 'campaign.open_objection: campaign % cannot register while an objection is open', NEW.id
        USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.notice_end IS NULL OR NEW.notice_end > current_date THEN
      RAISE EXCEPTION 'campaign.notice: campaign % cannot register before its public notice has run', NEW.id
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  IF OLD.status = 'registered' THEN
    RAISE EXCEPTION 'campaign.history: a registered campaign is history' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
"""


def upgrade():
    op.execute(FUNCTIONS)
    op.execute(OVERLAP)
    op.execute(GUARD)


def downgrade():
    op.execute(OLD_GUARD)
    op.execute(OLD_OVERLAP)
    op.execute("DROP FUNCTION IF EXISTS stored_geometry(geometry)")
    op.execute("DROP FUNCTION IF EXISTS notice_has_run(date, date)")
