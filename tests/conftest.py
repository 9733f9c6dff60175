"""Test fixtures: a real PostGIS database built by running the migrations, each test rolled back.

TEST_DATABASE_URL names the database (the Makefile points it at the private cluster).  The
session starts from an empty schema, runs `flask db upgrade`, and commits a small generated
county with one account per role; every test then runs inside a transaction that is rolled back.
"""
from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text
from werkzeug.serving import make_server

from app import create_app
from app.config import TestConfig
from app.extensions import db

SEED_PARCELS = 2000  # two villages
PASSWORD = "test-password-123"


def _reset_schema(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        conn.execute(text("DROP EXTENSION IF EXISTS postgis CASCADE"))
    engine.dispose()


class FreshContextClient(FlaskClient):
    """Each request gets its own application context (and so its own `g` and session), as in
    production; without this, requests made while a test holds an app context share `g`."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def app():
    url = os.environ.get("TEST_DATABASE_URL", TestConfig.SQLALCHEMY_DATABASE_URI)
    _reset_schema(url)
    app = create_app({**{k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()},
                      "SQLALCHEMY_DATABASE_URI": url, "DEMO_PASSWORD": PASSWORD})
    app.test_client_class = FreshContextClient
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


@pytest.fixture()
def dbs(app):
    """The app context with a session bound to a connection whose transaction is rolled back."""
    with app.app_context():
        engines = db.engines
        engine = engines[None]
        conn = engine.connect()
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


