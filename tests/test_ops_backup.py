"""Backups and point-in-time recovery (issue 18 part 4): a base backup with WAL archiving
(`make backup`), a bad import registered after it, and `make restore TARGET_TIME=…` to the
moment before that import: the restored register is the register as it was."""
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.extensions import db
from tests.test_import_sample import SAMPLE

ROOT = Path(__file__).resolve().parents[1]
REGISTER = """SELECT count(*), md5(coalesce(string_agg(id || ':' || code || ':' ||
                     coalesce(end_lifespan::text, '-'), ',' ORDER BY id), ''))
              FROM parcel"""


def _pg(*args, timeout=600):
    r = subprocess.run(["scripts/pg.sh", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip()


def _one(url, sql, **params):
    eng = create_engine(url)
    with eng.connect() as c:
        row = c.execute(text(sql), params).one()
    eng.dispose()
    return tuple(row)


@pytest.mark.deep
def test_restore_to_the_moment_before_a_bad_import(app):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if "/var/tmp/sanquan-" not in url:
        pytest.fail("this test needs the checkout's private cluster (scripts/pg.sh)")
    _pg("backup")
    before = _one(url, REGISTER)
    target = _one(url, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                       "'YYYY-MM-DD HH24:MI:SS.US') || '+00'")[0]
    from app.imports import operations as ops

    with app.app_context():  # the bad import, registered (its valid part)
        batch = ops.run("bureau", SAMPLE)
        result = ops.accept("bureau", batch, valid_part=True)
        db.session.commit()
        bad_batch = batch.id
        db.session.remove()
    assert result["parcels"] > 0
    after = _one(url, REGISTER)
    assert after[0] == before[0] + result["parcels"] and after != before
    dest = None
    try:
        out = _pg("restore", target)
        restored = out.splitlines()[-1].replace("DBNAME", make_url(url).database)
        dest = str(Path(make_url(restored).query["host"]).parent)
        assert _one(restored, REGISTER) == before
        assert _one(restored, "SELECT count(*) FROM import_batch WHERE id = :b",
                    b=bad_batch) == (0,)
    finally:
        if dest:
            _pg("restore-stop", dest)
