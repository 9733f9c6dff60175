"""guard attacks: the guard's functions read only the real tables

The app role may create temporary tables (the demo loader uses them).  A temporary table comes
first in the default search path, so a table named ``court_judgment``, ``expropriation``,
``household`` or ``withdrawal`` made in the app's own session stood in for the real one inside
the trigger functions: a made-up judgment, expropriation, ended household or effective
withdrawal ended a right "lawfully".  Every function of the schema (not the extensions') now
runs with ``search_path = public, pg_temp``: pg_temp last, so it can shadow nothing.

Revision ID: 0018_guard_attacks
Revises: 0013_guard_text
"""
from alembic import op

revision = "0018_guard_attacks"
down_revision = "0013_guard_text"
branch_labels = None
depends_on = None

PINNED = r"""
DO $$
DECLARE f record;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure AS sig FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p')
      AND pg_get_userbyid(p.proowner) = current_user
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')
      AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=public, pg_temp']
  LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = public, pg_temp', f.sig);
  END LOOP;
END $$;
"""

UNPINNED = r"""
DO $$
DECLARE f record;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure AS sig FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p') AND NOT p.prosecdef
      AND pg_get_userbyid(p.proowner) = current_user
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER FUNCTION %s RESET search_path', f.sig);
  END LOOP;
END $$;
"""


def upgrade():
    op.execute(PINNED)


def downgrade():
    op.execute(UNPINNED)
