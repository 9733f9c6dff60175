"""The settings' history in the database (att-web).

`registry_setting` keeps one row per key, overwritten by each change; the audit log records the
changes made through the settings page (and the market CLI), but a value written any other way
(another operation, a console, a migration's seed) left no trace, and "what was the notice
period on 1 March?" had to be pieced together from JSON audit entries.  History is never
overwritten (house rule 5): every insert, update and delete of `registry_setting` now appends a
version to `registry_setting_version` (key, value — NULL when the key was removed —, when, the
database user, and the application's actor and reason when the operation names them through
`sanquan.actor` / `sanquan.reason`).  The trigger runs as the owner (SECURITY DEFINER, search
path pinned); the app role may only read the versions: it can neither write nor change nor
remove one.  The existing values are the first versions.  The app role may now delete a
setting's row (clearing an optional setting; it had no DELETE and the page failed with a 500):
the removal is a version like any other.  And a partial index of the open import faults, which
the home page's to-do counts on every visit.

Revision ID: 0028_web_attacks
Revises: 0022_membership
"""
import os

import sqlalchemy as sa
from alembic import op

revision = "0028_web_attacks"
down_revision = "0027_member_attacks"
branch_labels = None
depends_on = None

APP_ROLE = os.environ.get("SANQUAN_APP_ROLE", "sanquan_app")

SQL = r"""
CREATE OR REPLACE FUNCTION registry_setting_versioned() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO registry_setting_version (key, value, db_user, actor, reason)
  VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.key ELSE NEW.key END,
          CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.value END,
          session_user,
          nullif(current_setting('sanquan.actor', true), ''),
          nullif(current_setting('sanquan.reason', true), ''));
  IF TG_OP = 'UPDATE' AND NEW.key IS DISTINCT FROM OLD.key THEN  -- a renamed key: the old ends
    INSERT INTO registry_setting_version (key, value, db_user, actor, reason)
    VALUES (OLD.key, NULL, session_user, nullif(current_setting('sanquan.actor', true), ''),
            nullif(current_setting('sanquan.reason', true), ''));
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER registry_setting_versioned
AFTER INSERT OR DELETE OR UPDATE OF key, value ON registry_setting
FOR EACH ROW EXECUTE FUNCTION registry_setting_versioned();

CREATE OR REPLACE FUNCTION registry_setting_version_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'settings.history: a version of a setting is never changed nor removed'
    USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE TRIGGER registry_setting_version_append_only
BEFORE UPDATE OR DELETE ON registry_setting_version
FOR EACH ROW EXECUTE FUNCTION registry_setting_version_append_only();

INSERT INTO registry_setting_version (key, value, db_user, reason)
SELECT key, value, session_user, 'value when the history began (migration 0028)'
FROM registry_setting ORDER BY key;

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON registry_setting_version FROM {app};
-- Clearing an optional setting (a homestead cap left blank: the rule does not apply) deletes its
-- row, which the app role could not do (0012 granted S/I/U on the tables that existed): the
-- settings page answered 500.  With every removal now a version, the delete loses nothing.
GRANT DELETE ON registry_setting TO {app};
REVOKE ALL ON FUNCTION registry_setting_versioned() FROM PUBLIC;
"""


def upgrade():
    op.create_table(
        "registry_setting_version",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("clock_timestamp()")),
        sa.Column("db_user", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_setting_version")),
    )
    op.create_index("ix_registry_setting_version_key_at", "registry_setting_version",
                    ["key", "at"])
    op.execute(SQL.replace("{app}", APP_ROLE))
    # the to-do's count of open import faults (every home page visit of the bureau) read every
    # fault of every delivery; nearly all are resolved
    op.create_index("ix_import_fault_open", "import_fault", ["batch_id"],
                    postgresql_where=sa.text("resolved_at IS NULL"))


def downgrade():
    op.drop_index("ix_import_fault_open", table_name="import_fault")
    op.execute(f"REVOKE DELETE ON registry_setting FROM {APP_ROLE}")
    op.execute("DROP TRIGGER IF EXISTS registry_setting_versioned ON registry_setting")
    op.execute("DROP FUNCTION IF EXISTS registry_setting_versioned()")
    op.drop_table("registry_setting_version")
    op.execute("DROP FUNCTION IF EXISTS registry_setting_version_append_only()")
