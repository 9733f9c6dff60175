"""Test fixtures: a real PostGIS database built by running the migrations, each test rolled back.

TEST_DATABASE_URL names the database and the app role (the Makefile points it at the private
cluster); TEST_MIGRATE_DATABASE_URL the owner role (default: the same database as
`sanquan_owner`).  The session drops everything the owner owns, runs `flask db upgrade` as the
owner, and commits a small generated county with one account per role as the app role; every
test then runs as the app role — the role the app itself connects as, which owns nothing and
has only the DML the migrations grant — inside a transaction that is rolled back.  The few
tests that need the owner's rights (tampering with the audit log on purpose, cleaning up a
race's committed rows) take the `owner_dbs` fixture or `owner_engine`.

Under pytest-xdist (`make test` runs `-n 2`) each worker has a database of its own, named after
TEST_DATABASE_URL's with the worker's id appended (`sanquan_test_gw0`, …; the browser tests'
`sanquan_test_gw0_browser`): the first worker builds TEST_DATABASE_URL's database as above,
under a file lock, and every worker's database is a copy of it (`CREATE DATABASE … TEMPLATE`,
as the superuser of `admin_url`).  Each worker also writes its files (exports, uploads, print
packages, the PDF cache) in a directory of its own.
"""
from __future__ import annotations

import atexit
import fcntl
import hashlib
import os
import re
import shutil
import socket
import tempfile
import threading
import urllib.parse
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from app import create_app, use_time_zone
from app.config import TestConfig, owner_url
from app.extensions import db

# The app runs on China's calendar day (app.use_time_zone, set by create_app); set it before any
# test module computes a module-level `TODAY = dt.date.today()` at import, or from 16:00 UTC
# those are a day behind the operations' today.
use_time_zone(getattr(TestConfig, "TIME_ZONE", "Asia/Shanghai"))

# pytest-xdist's worker id ("gw0", "gw1", …), None in a serial run.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if WORKER:
    # Files the app writes under instance/ by default, named by job id or digest: one directory
    # per worker, so two workers' job 7 never share a directory.  In the app's configuration
    # (build_app) and the environment the subprocesses that tests start inherit (an RQ worker).
    WORKER_FILES = Path(tempfile.mkdtemp(prefix=f"sanquan-test-{WORKER}-"))
    for _name, _sub in (("EXPORT_DIR", "exports"), ("IMPORT_UPLOAD_DIR", "uploads"),
                        ("PRINT_DIR", "prints"), ("PDF_CACHE_DIR", "pdf-cache")):
        os.environ[_name] = str(WORKER_FILES / _sub)
    atexit.register(shutil.rmtree, WORKER_FILES, True)
WORKER_DIRS = {k: os.environ[k] for k in ("EXPORT_DIR", "IMPORT_UPLOAD_DIR", "PRINT_DIR",
                                          "PDF_CACHE_DIR")} if WORKER else {}


SEED_PARCELS = 2000  # two villages
PASSWORD = "test-password-123"


def with_database(url: str, name: str) -> str:
    """`url` naming database `name` instead."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def database_name(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.lstrip("/"))


def migrate_url(app_url: str) -> str:
    """The owner role on `app_url`'s database: TEST_MIGRATE_DATABASE_URL's role and server if
    set (with `app_url`'s database: a worker's or the browser tests' own), else derived."""
    explicit = os.environ.get("TEST_MIGRATE_DATABASE_URL")
    return with_database(explicit, database_name(app_url)) if explicit else owner_url(app_url)


def admin_url(app_url: str) -> str:
    """A superuser on the test server (only test_migrations needs one, to create a scratch
    database with PostGIS): TEST_ADMIN_DATABASE_URL, else the URL's server as `postgres`."""
    return os.environ.get("TEST_ADMIN_DATABASE_URL") or make_url(app_url).set(
        username="postgres", password=None).render_as_string(hide_password=False)


def _reset_schema(url: str) -> None:
    """Everything the owner made goes (PostGIS, a superuser's extension, stays)."""
    hint = "run `scripts/pg.sh start && scripts/pg.sh ensure $TEST_DATABASE_URL` once"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        conn = engine.connect()
    except Exception as e:  # the owner role is missing (a cluster from before the split)
        raise RuntimeError(f"cannot connect as the owner role ({e}): {hint}") from e
    with conn:
        if not conn.execute(text("SELECT has_schema_privilege('public', 'CREATE')")).scalar():
            raise RuntimeError(f"the owner role cannot create in schema public: {hint}")
        conn.execute(text("DROP OWNED BY CURRENT_USER CASCADE"))
        left = conn.execute(text("""
            SELECT string_agg(c.relname, ', ') FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT EXISTS (
              SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                AND d.objid = c.oid AND d.deptype = 'e')""")).scalar()
    engine.dispose()
    if left:
        raise RuntimeError(f"tables not owned by the owner role remain ({left}): {hint}")


class FreshContextClient(FlaskClient):
    """Each request gets its own application context (and so its own `g` and session), as in
    production; without this, requests made while a test holds an app context share `g`."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


def base_test_database_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", TestConfig.SQLALCHEMY_DATABASE_URI)


def for_worker(url: str) -> str:
    """`url`, or under xdist its database suffixed with the worker's id."""
    return with_database(url, f"{database_name(url)}_{WORKER}") if WORKER else url


def main_test_database_url() -> str:
    return for_worker(base_test_database_url())


@pytest.fixture(scope="session")
def app():
    return app_on(main_test_database_url())


def app_on(url: str):
    """The app on a freshly built database at `url`: built in place in a serial run; under
    xdist, a copy of the database the first worker built (see the module's docstring)."""
    if not WORKER:
        return build_app(url)
    copy_built_database(url)
    return build_app(url, built=True)


def copy_built_database(url: str) -> None:
    """`url`'s database made afresh as a copy of TEST_DATABASE_URL's, which the first worker of
    this run to get here builds (the others wait on the lock)."""
    base = base_test_database_url()
    key = hashlib.sha1(base.encode()).hexdigest()[:12]
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")
    stem = Path(tempfile.gettempdir()) / f"sanquan-test-{key}"
    admin = create_engine(with_database(admin_url(base), "postgres"),
                          isolation_level="AUTOCOMMIT")
    try:
        with open(f"{stem}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            marker = Path(f"{stem}.built")
            if not (run and marker.exists() and marker.read_text() == run):
                built = build_app(base)
                with built.app_context():
                    for engine in db.engines.values():
                        engine.dispose()
                marker.write_text(run)
            name, template = database_name(url), database_name(base)
            owner = make_url(migrate_url(base)).username
            with admin.connect() as conn:
                # The template must have no session; only a builder of this run had one.
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = :d AND pid <> pg_backend_pid()"),
                             {"d": template})
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}" '
                                  f'OWNER "{owner}"'))
    finally:
        admin.dispose()


# Mutation runs only (scripts/mutation.sh): SANQUAN_TEST_REUSE_DB=1 keeps a database that a
# previous session already built (migrations at head, seeded county and demo accounts committed)
# instead of rebuilding it — the build is ~25 s of a mutant's ~35 s.  Every test rolls back, so
# the database stays as built.  Off by default: `make test` always builds afresh.
REUSE_DB = os.environ.get("SANQUAN_TEST_REUSE_DB") == "1"


def _already_built(url: str) -> bool:
    """The migrations' head is applied and the last account build_app commits exists."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(Path(__file__).resolve().parents[1] / "migrations")).get_current_head()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            officer2 = conn.execute(text(
                "SELECT 1 FROM app_user WHERE username = 'officer2'")).scalar()
    except Exception:
        return False
    finally:
        engine.dispose()
    return version == head and officer2 == 1


def build_app(url: str, built: bool = False):
    """A fresh database at `url` (everything the owner made dropped, the migrations run, the
    seeded county and the demo accounts committed) and the app on it; `built`: the database
    already is (a copy of one built so)."""
    reuse = built or (REUSE_DB and _already_built(url))
    if not reuse:
        _reset_schema(migrate_url(url))
    app = create_app({**{k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()},
                      "SQLALCHEMY_DATABASE_URI": url, "MIGRATE_DATABASE_URL": migrate_url(url),
                      "DEMO_PASSWORD": PASSWORD, **WORKER_DIRS})
    app.test_client_class = FreshContextClient
    if reuse:
        return app
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        from app.demo import operations as demo

        demo.generate(SEED_PARCELS, seed=7)
        demo.create_demo_users()
        _second_officer()
        db.session.commit()
        db.session.remove()
    return app


def _second_officer():
    """A collective officer of the *second* village, for jurisdiction tests."""
    from app.auth import operations as auth_ops
    from app.collectives.models import Collective

    villages = db.session.scalars(select(Collective.village_code).distinct()
                                  .order_by(Collective.village_code)).all()
    auth_ops.create_user(None, "officer2", PASSWORD, "collective_officer", "二村 会计",
                         villages[1], reason="test account")


@pytest.fixture(scope="session")
def owner_engine(app):
    """The owner role's engine, for the few tests that need rights the app must not have."""
    engine = create_engine(app.config["MIGRATE_DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture()
def dbs(app):
    """The app context with a session bound to a connection whose transaction is rolled back."""
    yield from _rolled_back_session(app, None)


@pytest.fixture()
def owner_dbs(app, owner_engine):
    """Like `dbs`, but the session is the owner's: only for tests that must do what the app
    cannot (tamper with the audit log on purpose, to prove `audit verify` catches it)."""
    yield from _rolled_back_session(app, owner_engine)


def _rolled_back_session(app, with_engine):
    with app.app_context():
        engines = db.engines
        engine = engines[None]
        conn = (with_engine or engine).connect()
        outer = conn.begin()
        db.session.remove()
        engines[None] = conn
        db.session.configure(join_transaction_mode="create_savepoint")
        try:
            yield db.session
        finally:
            db.session.remove()
            engines[None] = engine
            outer.rollback()
            conn.close()


def shared_setup(app, setup):
    """For a module-scoped fixture: run `setup(session)` once (an expensive import of the sample
    delivery, say) in a transaction held open for the module and rolled back after it; yields
    (connection, setup's result — plain values, not ORM objects).  Each test then runs on that
    connection inside a savepoint of its own (`shared_session`), rolled back after it, so every
    test still starts from the same state."""
    with app.app_context():
        engines = db.engines
        engine = engines[None]
        conn = engine.connect()
        outer = conn.begin()
        db.session.remove()
        engines[None] = conn
        db.session.configure(join_transaction_mode="create_savepoint")
        try:
            value = setup(db.session)
            db.session.commit()  # releases the session's savepoint: kept until the module ends
        finally:
            db.session.remove()
            engines[None] = engine
    try:
        yield conn, value
    finally:
        outer.rollback()
        conn.close()


def shared_session(app, conn):
    """The `dbs` of a test on a module's shared connection (see shared_setup)."""
    with app.app_context():
        engines = db.engines
        engine = engines[None]
        point = conn.begin_nested()
        db.session.remove()
        engines[None] = conn
        db.session.configure(join_transaction_mode="create_savepoint")
        try:
            yield db.session
        finally:
            db.session.remove()
            engines[None] = engine
            if point.is_active:
                point.rollback()


@pytest.fixture()
def client(app, dbs):
    return app.test_client()


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(client, username: str, password: str = PASSWORD):
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_from(page.get_data(as_text=True))})


@pytest.fixture()
def login_as(app, dbs):
    """login_as('bureau') -> a test client signed in as that demo account."""

    def make(username: str):
        c = app.test_client()
        r = login(c, username)
        assert r.status_code == 302, r.get_data(as_text=True)[:500]
        return c

    return make


def user(username: str):
    from app.auth.models import User

    return db.session.scalar(select(User).where(User.username == username))


ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


class Live(str):
    artifacts: Path


@pytest.fixture(scope="session")
def live_server(app):
    yield from serve(app)


def serve(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server("127.0.0.1", port, app, threaded=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    url = Live(f"http://127.0.0.1:{port}")
    ARTIFACTS.mkdir(exist_ok=True)
    url.artifacts = ARTIFACTS
    yield url
    server.shutdown()




@pytest.fixture(scope="session", autouse=True)
def _no_stray_images():
    """Screenshots go to test-artifacts/ (ARTIFACTS); a test must never leave an image at the
    repository root (a `--1.png` once did: pdftoppm's output root given as "-")."""
    root = ARTIFACTS.parent
    before = {p.name for p in root.glob("*.png")} | {p.name for p in root.glob("*.ppm")}
    yield
    after = {p.name for p in root.glob("*.png")} | {p.name for p in root.glob("*.ppm")}
    assert after <= before, f"images left at the repository root: {sorted(after - before)}"


# Under `pytest -n 2 --dist loadgroup` (`make test`) tests are handed to the workers one by one,
# except those of one group, which one worker runs in a row: the browser tests (one Chromium, one
# copy of the browser database, and no two accelerated market clocks racing each other for the
# CPU), and each module whose module-scoped fixture is expensive (tests/test_exports.py's sample
# import, which tests/test_exports_attacks.py shares).  The groups are made here, not with
# xdist_group marks: pytest-xdist 3.8 renames the tests of a marked group through
# `item._nodeid`, which pytest 9 no longer reads, so the marks group nothing.
SHARED_SETUP_MODULES = ("tests/test_exports.py", "tests/test_exports_attacks.py")


def xdist_group(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    if path.startswith("tests/browser/"):
        return "browser"
    return path if path in SHARED_SETUP_MODULES else nodeid


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # a venv from before requirements-dev.txt named pytest-xdist
    LoadScopeScheduling = None

if LoadScopeScheduling is not None:
    class GroupScheduling(LoadScopeScheduling):
        """`--dist loadgroup` with the groups of `xdist_group`; the largest group goes first."""

        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    # optional: a run without the xdist plugin (scripts/mutation.sh sets
    # PYTEST_DISABLE_PLUGIN_AUTOLOAD=1) must not fail on a hook nobody declared
    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(config, log):
        if config.getvalue("dist") == "loadgroup":
            return GroupScheduling(config, log)
        return None


# The suite must not depend on the order its tests run in (CI once failed on a test that passed
# only after another on the same worker).  `--test-order reverse` or `--test-order shuffle:SEED`
# runs it otherwise; every worker derives the same order, as xdist requires.
def pytest_addoption(parser):
    parser.addoption("--test-order", default="collected",
                     help="collected (default), reverse, or shuffle:SEED")


def pytest_collection_modifyitems(session, config, items):
    order = config.getoption("--test-order")
    if order == "reverse":
        items.reverse()
    elif order.startswith("shuffle:"):
        import random

        random.Random(int(order.split(":", 1)[1])).shuffle(items)
    elif order != "collected":
        raise pytest.UsageError(f"--test-order {order!r}: collected, reverse or shuffle:SEED")
