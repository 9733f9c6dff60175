"""One definition per rule (issue 16, point 4): the notice's last day and the stored geometry as
SQL functions the app and the triggers share.

- notice_has_run(notice_end, on_day): a campaign's public notice (公示) runs through its last day
  `notice_end` inclusive — objections are accepted on that day (app.campaigns.lodge_objection) — so
  registration (登簿) is allowed only from the day after. Before, campaign_guard let registration
  happen on the last objection day itself (`notice_end > current_date` refused only the days
  before). The notice period is a configurable local policy (domain.md, opening paragraph; the
  procedure: 农业部 农村土地承包经营权确权登记颁证工作规程 — public notice, objections heard, then
  registration). app.campaigns.operations.notice_has_run is the same rule in Python.
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
    op.execute(GUARD)


def downgrade():
    op.execute(OLD_GUARD)
    op.execute("DROP FUNCTION IF EXISTS stored_geometry(geometry)")
    op.execute("DROP FUNCTION IF EXISTS notice_has_run(date, date)")
