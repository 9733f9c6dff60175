"""Read replica (issue 18 §3): with DATABASE_REPLICA_URL set, public read-only traffic (OGC
API, tiles, public market and notice pages) is served by a hot standby, writes go to the
primary, and a browser that has just written reads its own write.

The test starts the standby of the worktree's private cluster itself (`scripts/pg.sh
standby`: pg_basebackup + streaming replication; deep — the first base backup copies the
whole cluster).  The proof that a read came from the replica: replay is paused on the
standby, a parcel is registered on the primary, and the public endpoints do not see it
while the staff page (and a browser that wrote after the parcel) do; once replay resumes the
public endpoints see it too."""
from __future__ import annotations

import math
import os
import subprocess
import time
from pathlib import Path

import mapbox_vector_tile
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from app.config import TestConfig
from app.extensions import db
from tests.conftest import PASSWORD, admin_url, login, migrate_url

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.deep


def _pg(*args) -> str:
    return subprocess.run([str(ROOT / "scripts/pg.sh"), *args], check=True, capture_output=True,
                          text=True, timeout=600).stdout.strip()


def _tile_of(lon: float, lat: float, z: int = 16):
    x = int((lon + 180) / 360 * 2 ** z)
    la = math.radians(lat)
    y = int((1 - math.log(math.tan(la) + 1 / math.cos(la)) / math.pi) / 2 * 2 ** z)
    return z, x, y


def _codes(tile: bytes) -> set:
    layer = mapbox_vector_tile.decode(tile).get("parcels", {"features": []})
    return {f["properties"]["code"] for f in layer["features"]}


@pytest.fixture(scope="module")
def standby(app):
    url = os.environ.get("TEST_DATABASE_URL", TestConfig.SQLALCHEMY_DATABASE_URI)
    if "host=" not in url or "sanquan-" not in url:
        pytest.fail("the replica test needs the private cluster (scripts/pg.sh), whose standby "
                    "it starts; TEST_DATABASE_URL points elsewhere")
    _pg("standby")
    dbname = make_url(url).database
    replica_url = _pg("standby-url", dbname)
    admin = create_engine(_pg("standby-url", dbname, "admin"), isolation_level="AUTOCOMMIT")
    yield url, replica_url, admin
    with admin.connect() as c:
        c.execute(text("SELECT pg_wal_replay_resume()"))
    admin.dispose()


def _caught_up(primary, admin, timeout=60.0):
    with primary.connect() as c:
        lsn = c.execute(text("SELECT pg_current_wal_insert_lsn()::text")).scalar()
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        with admin.connect() as c:
            if c.execute(text("SELECT pg_last_wal_replay_lsn() >= CAST(:l AS pg_lsn)"),
                         {"l": lsn}).scalar():
                return
        time.sleep(0.1)  # the standby's replay runs in real time, not on the app's clock
    pytest.fail("the standby did not catch up")


def test_public_reads_go_to_the_replica_and_writers_read_their_writes(standby):
    url, replica_url, admin = standby
    rapp = create_app({**{k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()},
                       "SQLALCHEMY_DATABASE_URI": url, "MIGRATE_DATABASE_URL": migrate_url(url),
                       "DATABASE_REPLICA_URL": replica_url})
    primary = create_engine(url)
    code = pid = None
    try:
        with admin.connect() as c:
            assert c.execute(text("SELECT pg_is_in_recovery()")).scalar()
        _caught_up(primary, admin)
        with rapp.app_context():
            from app.parcels import operations as pops

            col = db.session.execute(text(
                "SELECT id, fbfbm FROM collective ORDER BY id LIMIT 1")).one()
            code = f"{col.fbfbm}9{os.getpid() % 10000:04d}"
            with admin.connect() as c:
                c.execute(text("SELECT pg_wal_replay_pause()"))
            x, y = 372000.0 + (os.getpid() % 97) * 50, 3870000.0
            wkt = f"POLYGON(({x} {y},{x + 30} {y},{x + 30} {y + 40},{x} {y + 40},{x} {y}))"
            p = pops.register("replica-test", "contract", code, col.id, wkt, 4547,
                              "replica test")
            db.session.commit()
            pid = p.id
            lon, lat = db.session.execute(text(
                "SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM parcel "
                "WHERE id = :i"), {"i": pid}).one()
            db.session.remove()
        z, tx, ty = _tile_of(lon, lat)
        anon = rapp.test_client()
        item = f"/ogc/collections/parcels/items/{pid}"
        # Replay paused: the replica has not got the parcel — public reads do not see it.
        assert anon.get(item).status_code == 404
        assert code not in _codes(anon.get(f"/tiles/{z}/{tx}/{ty}.pbf").data)
        # The primary has it: the staff page (read-only pages of signed-in staff read the
        # primary) shows it …
        staff = rapp.test_client()
        assert login(staff, "bureau", PASSWORD).status_code == 302
        page = staff.get(f"/parcels/{pid}")
        assert page.status_code == 200 and code in page.get_data(as_text=True)
        # … and a browser whose last write (the login, after the parcel) the replica has not
        # replayed reads the public endpoint from the primary: it reads its own writes.
        assert staff.get(item).status_code == 200
        # Replay resumes: the replica catches up and serves the parcel to everyone.
        with admin.connect() as c:
            c.execute(text("SELECT pg_wal_replay_resume()"))
        _caught_up(primary, admin)
        assert anon.get(item).status_code == 200
        assert code in _codes(anon.get(f"/tiles/{z}/{tx}/{ty}.pbf").data)
        # Once the replica has the writer's write, the writer reads the replica again.
        assert staff.get(item).status_code == 200
        with staff.session_transaction() as s:
            assert "_wal" not in s
    finally:
        primary.dispose()
        if pid is not None:  # committed on purpose: removed by the superuser (its audit
            # entries stay: the log is a hash chain, and they are true history)
            sup = create_engine(admin_url(url))
            with sup.begin() as c:
                c.execute(text("SET LOCAL session_replication_role = replica"))
                c.execute(text("DELETE FROM parcel WHERE id = :i"), {"i": pid})
            sup.dispose()
