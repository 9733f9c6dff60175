"""The register: versions, split and merge with lineage, as-of queries, the overlap guard in
the operation and in the database, concurrent registrations, vector tiles, the parcel page."""
import datetime as dt
import threading

import pytest
import shapely
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError

from app.errors import DomainError
from app.extensions import db
from app.parcels import operations as ops
from app.parcels.models import Parcel


def _parcel(dbs) -> Parcel:
    return dbs.scalars(select(Parcel).where(Parcel.kind == "contract",
                                            Parcel.end_lifespan.is_(None)).order_by(Parcel.id)
                       ).first()


def _wkt(dbs, p):
    return dbs.execute(text("SELECT ST_AsText(ST_Transform(geom, survey_srid)) FROM parcel "
                            "WHERE id = :i"), {"i": p.id}).scalar()


def _free_square(dbs, p, dx=0.0, size=40.0):
    """A square well away from every parcel (east of the demo county)."""
    minx, miny = 700000.0 + dx, 4000000.0
    return shapely.box(minx, miny, minx + size, miny + size).wkt


def test_amend_makes_a_new_version_and_keeps_history(dbs):
    p = _parcel(dbs)
    before = dt.datetime.now(dt.UTC)
    dbs.execute(text("SELECT pg_sleep(0.01)"))
    new = ops.amend("bureau", p, "土地用途更正", tdyt="2")
    assert new.version == p.version + 1 and new.uid == p.uid and new.tdyt == "2"
    dbs.refresh(p)
    assert p.end_lifespan is not None and p.tdyt != "2"
    assert [v.version for v in ops.history(new)] == [p.version, new.version]
    then = {x.code: x for x in ops.as_of(before, p.collective_id)}
    now = {x.code: x for x in ops.as_of(dt.datetime.now(dt.UTC), p.collective_id)}
    assert then[p.code].id == p.id and now[p.code].id == new.id
    with pytest.raises(DomainError) as e:
        ops.amend("bureau", p, "again", tdyt="3")
    assert e.value.code == "parcel.not_current"
    with pytest.raises(DomainError):
        ops.amend("bureau", new, "  ", tdyt="3")


def test_history_is_never_overwritten_in_the_database(dbs):
    p = _parcel(dbs)
    with pytest.raises(DBAPIError, match="never in place"):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE parcel SET tdyt = '3' WHERE id = :i"), {"i": p.id})
    with pytest.raises(DBAPIError, match="permission denied"):  # the app's role: no DELETE
        with dbs.begin_nested():
            dbs.execute(text("DELETE FROM parcel WHERE id = :i"), {"i": p.id})


def test_even_the_owner_cannot_delete_a_parcel(owner_dbs):
    p = _parcel(owner_dbs)
    with pytest.raises(DBAPIError, match="never deleted"):
        with owner_dbs.begin_nested():
            owner_dbs.execute(text("DELETE FROM parcel WHERE id = :i"), {"i": p.id})


def test_split_and_merge_conserve_area_and_record_lineage(dbs):
    p = _parcel(dbs)
    g = shapely.from_wkt(_wkt(dbs, p))
    minx, miny, maxx, maxy = g.bounds
    cut = (minx + maxx) / 2
    left = g.intersection(shapely.box(minx - 1, miny - 1, cut, maxy + 1))
    right = g.intersection(shapely.box(cut, miny - 1, maxx + 1, maxy + 1))
    with pytest.raises(DomainError) as e:  # a part missing: the children do not cover
        ops.split("bureau", p, [(p.code[:14] + "90001", left.wkt)], "分割")
    assert e.value.code == "parcel.split.cover"
    kids = ops.split("bureau", p, [(p.code[:14] + "90001", left.wkt),
                                   (p.code[:14] + "90002", right.wkt)], "分户分割")
    assert abs(sum(float(k.scmj) for k in kids) - float(p.scmj)) < 0.05
    assert {r.code for r in ops.lineage(kids[0])["parents"]} == {p.code}
    merged = ops.merge("bureau", kids, p.code[:14] + "90003", "合并")
    assert abs(float(merged.scmj) - float(p.scmj)) < 0.05
    assert {r.code for r in ops.lineage(merged)["parents"]} == {k.code for k in kids}
    assert ops.as_of(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1),
                     p.collective_id)[0].end_lifespan is None


def test_overlap_refused_by_operation_and_by_database(dbs):
    p = _parcel(dbs)
    shifted = shapely.affinity.translate(shapely.from_wkt(_wkt(dbs, p)), 5, 0)
    with pytest.raises(DomainError) as e:
        ops.register("bureau", "contract", p.code[:14] + "95001", p.collective_id, shifted.wkt,
                     p.survey_srid, "测试")
    assert e.value.code == "parcel.overlap" and p.code in e.value.message("en")
    assert "m²" in e.value.message("en") and "?" not in e.value.message("en")
    # Refused without aborting the transaction, and nothing of it was written.
    assert dbs.scalar(text("SELECT count(*) FROM parcel WHERE code = :c"),
                      {"c": p.code[:14] + "95001"}) == 0
    assert dbs.scalar(text("SELECT count(*) FROM audit_log WHERE object_id = :c"),
                      {"c": p.code[:14] + "95001"}) == 0
    # The request to skip served that one row: the next writer meets the trigger's refusal.
    with pytest.raises(DBAPIError, match="parcel.overlap"):
        with dbs.begin_nested():
            dbs.execute(text("""INSERT INTO parcel (kind, code, collective_id, scmj, scmjm,
                survey_srid, geom) SELECT 'contract', :c, :col, 1, 1, 4547,
                ST_Multi(ST_Transform(ST_GeomFromText(:w, 4547), 4490))"""),
                        {"c": p.code[:14] + "95002", "col": p.collective_id, "w": shifted.wkt})
    # A bulk insert that claims to be checked without holding the table lock is refused.
    with pytest.raises(DBAPIError, match="parcel.bulk"):
        with dbs.begin_nested():
            dbs.execute(text("SET LOCAL sanquan.bulk_checked = 'on'"))
            dbs.execute(text("""INSERT INTO parcel (kind, code, collective_id, scmj, scmjm,
                survey_srid, geom) SELECT 'contract', :c, :col, 1, 1, 4547,
                ST_Multi(ST_Transform(ST_GeomFromText(:w, 4547), 4490))"""),
                        {"c": p.code[:14] + "95003", "col": p.collective_id, "w": shifted.wkt})


def _remove_winner(app, engine, codes):
    """Clean up a race's committed winner (the history rule paused for it, by the owner: the
    app's role can neither delete a parcel nor touch a trigger)."""
    engine.dispose()
    engine = create_engine(app.config["MIGRATE_DATABASE_URL"])
    with engine.begin() as c:
        c.execute(text("ALTER TABLE parcel DISABLE TRIGGER parcel_guard"))
        c.execute(text("DELETE FROM parcel WHERE code = ANY(:c)"), {"c": codes})
        c.execute(text("ALTER TABLE parcel ENABLE TRIGGER parcel_guard"))
    engine.dispose()


def _wait_until_blocked(engine, waiter_pid: int, holder_pid: int, timeout_s: float = 30.0):
    """Until `waiter_pid`'s statement waits on a lock `holder_pid` holds (pg_blocking_pids):
    the race is staged by the database's own lock state, not by a timer."""
    import time

    deadline = time.monotonic() + timeout_s
    with engine.connect() as c:
        while time.monotonic() < deadline:
            if c.scalar(text("SELECT CAST(:h AS int) = ANY(pg_blocking_pids(:w))"),
                        {"h": holder_pid, "w": waiter_pid}):
                return
    raise AssertionError(f"backend {waiter_pid} never waited on {holder_pid}")


def test_two_simultaneous_overlapping_registrations_one_wins(app):
    """Two connections register overlapping parcels: the second's insert waits on the first's
    cell locks while the first is uncommitted, and once the first commits it is refused — so
    exactly one is registered (the guard's check runs under locks, never side by side)."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    engine = create_engine(url)
    with engine.connect() as c:
        col = c.execute(text("SELECT id, fbfbm FROM collective ORDER BY id LIMIT 1")).one()
    square = shapely.box(710000, 4000000, 710050, 4000050)
    codes = [col.fbfbm + "97001", col.fbfbm + "97002"]
    insert = text("""INSERT INTO parcel (kind, code, collective_id, scmj, scmjm,
        survey_srid, geom) SELECT 'contract', :code, :col, 2500, 3.75, 4547,
        ST_Multi(ST_Transform(ST_GeomFromText(:w, 4547), 4490))""")
    results = {}
    pids = {}
    started = threading.Event()

    def second():
        with engine.connect() as c:
            trans = c.begin()
            pids[1] = c.scalar(text("SELECT pg_backend_pid()"))
            started.set()
            try:
                c.execute(insert, {"code": codes[1], "col": col.id,
                                   "w": shapely.affinity.translate(square, 10, 0).wkt})
                trans.commit()
                results[1] = "ok"
            except DBAPIError as e:
                trans.rollback()
                results[1] = str(e.orig).split("\n")[0]

    try:
        with engine.connect() as a:
            ta = a.begin()
            holder = a.scalar(text("SELECT pg_backend_pid()"))
            a.execute(insert, {"code": codes[0], "col": col.id, "w": square.wkt})
            t = threading.Thread(target=second)
            t.start()
            started.wait(30)
            _wait_until_blocked(engine, pids[1], holder)  # the second waits on the first
            ta.commit()
            results[0] = "ok"
        t.join(60)
        assert results[0] == "ok" and "parcel.overlap" in results[1], results
        with engine.connect() as c:
            assert c.scalar(text("SELECT count(*) FROM parcel WHERE code = ANY(:c)"),
                            {"c": codes}) == 1
    finally:
        _remove_winner(app, engine, codes)


def test_two_simultaneous_overlapping_registrations_through_the_operation(app):
    """The same race through the operation (each in its own session and app context): the
    second registration waits on the first's locks until it commits, then is refused with the
    rule — the overlap check runs once, in the database under the cell locks, so this is what
    guarantees the operation's answer."""
    from app.collectives.models import Collective

    square = shapely.box(711000, 4000000, 711050, 4000050)
    with app.app_context():
        col = db.session.scalars(select(Collective).order_by(Collective.id)).first()
        col_id, fbfbm = col.id, col.fbfbm
        db.session.remove()
    codes = [fbfbm + "97011", fbfbm + "97012"]
    results, pids = {}, {}
    registered, go, started = threading.Event(), threading.Event(), threading.Event()

    def register(i):
        with app.app_context():
            try:
                pids[i] = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
                started.set() if i == 1 else None
                ops.register("bureau", "contract", codes[i], col_id,
                             shapely.affinity.translate(square, 10 * i, 0).wkt, 4547, "并发")
                if i == 0:
                    registered.set()
                    go.wait(60)  # hold the first registration open until the second waits
                db.session.commit()
                results[i] = "ok"
            except DomainError as e:
                db.session.rollback()
                results[i] = e.code
            finally:
                registered.set()
                db.session.remove()

    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    first = threading.Thread(target=register, args=(0,))
    second = threading.Thread(target=register, args=(1,))
    try:
        first.start()
        registered.wait(60)
        second.start()
        started.wait(60)
        _wait_until_blocked(engine, pids[1], pids[0])
        go.set()
        first.join(60)
        second.join(60)
        assert results == {0: "ok", 1: "parcel.overlap"}, results
        with engine.connect() as c:
            assert c.scalar(text("SELECT count(*) FROM parcel WHERE code = ANY(:c)"),
                            {"c": codes}) == 1
    finally:
        go.set()
        _remove_winner(app, engine, codes)


def test_vector_tiles_carry_parcels(app, login_as, dbs):
    import mapbox_vector_tile  # noqa: F401  (decoder, dev dependency)

    row = dbs.execute(text("""SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) c FROM parcel
                              WHERE end_lifespan IS NULL ORDER BY id LIMIT 1) x""")).one()
    import math

    z = 15
    x = int((row[0] + 180) / 360 * 2 ** z)
    lat = math.radians(row[1])
    y = int((1 - math.log(math.tan(lat) + 1 / math.cos(lat)) / math.pi) / 2 * 2 ** z)
    c = login_as("bureau")
    r = c.get(f"/tiles/{z}/{x}/{y}.pbf")
    assert r.status_code == 200 and r.mimetype == "application/vnd.mapbox-vector-tile"
    tile = mapbox_vector_tile.decode(r.data)
    feats = tile["parcels"]["features"]
    assert feats and {"id", "code", "kind"} <= set(feats[0]["properties"])
    assert c.get("/tiles/15/0/0.pbf").data == b""  # empty tile far away
    assert c.get("/tiles/3/99/0.pbf").status_code == 404
    assert c.get("/tiles/15/1/x.pbf").status_code == 404
    assert c.post(f"/tiles/{z}/{x}/{y}.pbf").status_code == 405
    head = c.head(f"/tiles/{z}/{x}/{y}.pbf")
    assert head.status_code == 200 and head.data == b""
    assert int(head.headers["Content-Length"]) == len(r.data)
    # Public, like the OGC API: no sign-in needed, and no holder or personal data in the tile.
    anon = app.test_client().get(f"/tiles/{z}/{x}/{y}.pbf")
    assert anon.status_code == 200 and anon.data == r.data
    assert not {"household", "holder", "household_code", "name"} & set(feats[0]["properties"])


def test_parcel_page_has_sketch_history_and_search(login_as, dbs):
    p = _parcel(dbs)
    c = login_as("bureau")
    page = c.get(f"/parcels/{p.id}").get_data(as_text=True)
    assert "<svg" in page and 'class="scale-bar"' in page and 'class="subject"' in page
    assert p.code in page and 'id="history"' in page
    hits = c.get(f"/parcels/search?q={p.code[:16]}").get_json()
    assert p.code in {h["code"] for h in hits}


def test_register_writes_its_audit_entry_in_the_chain(dbs):
    from app.audit import operations as audit
    from app.audit.models import AuditLog
    from app.collectives.models import Collective

    col = dbs.scalars(select(Collective).order_by(Collective.id)).first()
    wkt = shapely.box(720000, 4000000, 720030, 4000040).wkt
    p = ops.register("bureau", "contract", col.fbfbm + "96001", col.id, wkt, 4547, "新开地块")
    assert float(p.scmj) == 1200.0 and float(p.scmjm) == 1.8 and p.version == 1
    # A persistent instance of the session: the one `get` returns, geometry loaded on access.
    assert dbs.get(Parcel, p.id) is p and p.survey_srid == 4547 and p.attrs == {}
    g = shapely.from_wkb(bytes(p.geom.data))
    assert g.geom_type == "MultiPolygon" and 73 < g.centroid.x < 135 and 18 < g.centroid.y < 54
    entry = dbs.scalars(select(AuditLog).where(AuditLog.action == "parcel.register",
                                               AuditLog.object_id == p.code)).one()
    assert entry.reason == "新开地块" and entry.changes["id"] == p.id and entry.hash
    assert audit.verify()[1] == []
    with pytest.raises(DomainError) as e:  # the same code again
        ops.register("bureau", "contract", col.fbfbm + "96001", col.id,
                     shapely.box(720100, 4000000, 720130, 4000040).wkt, 4547, "重复")
    assert e.value.code == "parcel.code_taken"
