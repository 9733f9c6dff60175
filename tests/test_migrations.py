"""`flask db upgrade` on an empty database, and models and migrations agree."""
import urllib.parse

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from app import create_app
from app.extensions import db
from app.schema import include_object
from tests.conftest import admin_url


def _scratch_url(base: str) -> str:
    parts = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit(parts._replace(path=parts.path + "_scratch"))


def test_upgrade_on_an_empty_database_then_downgrade_and_again(app):
    base = app.config["SQLALCHEMY_DATABASE_URI"]
    url = _scratch_url(base)
    owner = _scratch_url(app.config["MIGRATE_DATABASE_URL"])
    admin_base = admin_url(base)
    admin = create_engine(admin_base, isolation_level="AUTOCOMMIT")
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    owner_role = urllib.parse.urlsplit(owner).username
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{owner_role}"'))
    admin.dispose()
    scratch_admin = create_engine(_scratch_url(admin_base), isolation_level="AUTOCOMMIT")
    with scratch_admin.connect() as conn:  # PostGIS is a superuser's extension
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    scratch_admin.dispose()
    try:
        scratch = create_app({"SQLALCHEMY_DATABASE_URI": url, "MIGRATE_DATABASE_URL": owner,
                              "TESTING": True})
        with scratch.app_context():
            from flask_migrate import downgrade, upgrade

            upgrade()
            tables = set(inspect(db.engine).get_table_names())
            assert {"person", "household", "membership", "audit_log", "app_user", "parcel",
                    "division", "collective"} <= tables
            downgrade(revision="base")
            assert "person" not in set(inspect(db.engine).get_table_names())
            upgrade()
            assert db.session.execute(text("SELECT gb11643_valid('11010519491231002X')")).scalar()
            db.session.remove()
            db.engine.dispose()
    finally:
        admin = create_engine(admin_base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_models_and_migrations_agree(dbs):
    ctx = MigrationContext.configure(dbs.connection(), opts={
        "include_object": include_object, "compare_type": True})
    diff = compare_metadata(ctx, db.metadata)
    assert diff == [], diff
