"""`flask db upgrade` on an empty database, and models and migrations agree."""
import ast
import urllib.parse
from pathlib import Path

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


MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations" / "versions"
_READERS = {"open", "read_text", "read_bytes", "exec_module", "spec_from_file_location",
            "import_module", "run_path", "load_source", "exec", "eval", "__import__",
            "listdir", "scandir", "fdopen", "glob"}
_READING_MODULES = {"importlib", "pathlib", "io", "runpy", "imp", "glob", "codecs", "shutil"}


def _reads_of(path: Path) -> list[str]:
    """What in a migration file reads or imports a file: calls of open/read_text/importlib…,
    `__file__`, imports of file-reading modules or of another migration, and names of other
    migration files in its strings."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    others = {p.stem for p in MIGRATIONS.glob("*.py")} - {path.stem}
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name in _READERS:
                found.append(f"{where} calls {name}()")
        elif isinstance(node, ast.Name) and node.id == "__file__":
            found.append(f"{where} uses __file__")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for n in names:
                top = n.split(".")[0]
                if top in _READING_MODULES or top == "migrations" or n.split(".")[-1] in others:
                    found.append(f"{where} imports {n}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for other in others:  # a revision id is fine; a file name is not
                if f"{other}.py" in node.value:
                    found.append(f"{where} names the file of {other}")
    return found


def test_no_migration_reads_another_file():
    """A migration holds all the SQL it runs (issue 16): none opens, reads or imports another
    migration's file (0003/0010 once regex-read 0002 and importlib-loaded 0003)."""
    files = sorted(MIGRATIONS.glob("*.py"))
    assert len(files) >= 18, files
    found = [r for p in files for r in _reads_of(p)]
    assert found == [], found


def test_every_self_reference_is_indexed(dbs):
    """A row's delete checks the rows that point at it through a self-reference; without an
    index on the referencing column that check scans the table, and deleting a batch of n rows
    costs n² (issue 18: a staged 100,000-feature batch took 15 minutes).  Read from the live
    catalog, so a new self-reference without its index fails here."""
    unindexed = dbs.execute(text("""
        SELECT c.conrelid::regclass::text || '.' || a.attname
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND c.conrelid = c.confrelid AND array_length(c.conkey, 1) = 1
          AND NOT EXISTS (SELECT 1 FROM pg_index i
                          WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])
        ORDER BY 1""")).scalars().all()
    selfrefs = dbs.execute(text(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = confrelid")).scalar()
    assert selfrefs >= 5  # the check looks at something
    assert unindexed == []
