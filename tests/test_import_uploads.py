"""Uploads and what GDAL may open (issue 10 point 5; issue 12 points 1, 5, 11): only the
accepted formats, each what its name says, no network; the zip checked before extraction
(bomb, traversal, links, member count, names), extraction in the job, per-route size limits
with a 413 that explains, the jurisdiction checked before staging, housekeeping."""
from __future__ import annotations

import http.server
import io
import os
import threading
import zipfile
import zlib
from pathlib import Path

import pyogrio
import pytest
from sqlalchemy import func, select, text

from app.errors import DomainError
from app.imports import operations as ops
from app.imports import uploads
from app.imports.models import ImportBatch
from gis import io as gio
from tests.conftest import csrf_from
from tests.delivery_factory import clean


@pytest.fixture()
def upload_dir(app, tmp_path):
    old = app.config.get("IMPORT_UPLOAD_DIR")
    area = tmp_path / "uploads"
    app.config["IMPORT_UPLOAD_DIR"] = str(area)
    yield area
    app.config["IMPORT_UPLOAD_DIR"] = old


@pytest.fixture()
def web(app, login_as, upload_dir):
    app.config["JOBS_MODE"] = "sync"
    c = login_as("bureau")
    yield c
    app.config["JOBS_MODE"] = None


@pytest.fixture()
def http_server():
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"FBFBM\n14040410120101\n")

        do_HEAD = do_GET

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1], hits
    srv.shutdown()


def _vrt(source: str) -> str:
    return (f'<OGRVRTDataSource><OGRVRTLayer name="DK_x"><SrcDataSource>{source}'
            f'</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>')


def _zip(members: dict[str, bytes], **kw) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _post(c, data: bytes, name="delivery.zip"):
    page = c.get("/imports").get_data(as_text=True)
    return c.post("/imports", data={"csrf_token": csrf_from(page),
                                    "file": (io.BytesIO(data), name)},
                  content_type="multipart/form-data")


def _job(c, r):
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return c.get(r.headers["Location"] + ".json").get_json()


def _delivery_zip(tmp_path, d, prefix="成果/") -> bytes:
    folder = d.write(tmp_path / "zipsrc")
    return _zip({prefix + p.name: p.read_bytes() for p in folder.iterdir()})


def _files_outside(area: Path, before: set) -> set:
    return {p for p in area.parent.rglob("*")} - before - {p for p in area.rglob("*")} - {area}


# -- GDAL: only the accepted formats, each what its name says, no network ------------------
def test_only_the_accepted_drivers_are_registered():
    assert sorted(gio.REGISTERED_DRIVERS) == sorted(gio.ALLOWED_DRIVERS)
    assert "VRT" not in pyogrio.list_drivers() and "CSV" not in pyogrio.list_drivers()


def test_a_vrt_named_geojson_reading_a_local_file_is_refused(dbs, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("FBFBM,DKBM\nsecret-value,1404041012010100001\n")
    f = tmp_path / "DK_x.geojson"
    f.write_text(_vrt(f"CSV:{secret}"))
    for src in (f, ):
        with pytest.raises(DomainError) as e:
            ops.run("bureau", src)
        assert e.value.code == "import.unsafe_file" and "GeoJSON" in e.value.message("en")
    f.write_text(_vrt("CSV:/etc/hostname"))
    with pytest.raises(DomainError):
        ops.run("bureau", f)
    assert dbs.scalar(select(func.count()).select_from(ImportBatch)
                      .where(ImportBatch.source == "DK_x.geojson")) == 0
    # Even handed to GDAL directly, neither the VRT nor the CSV connection string opens.
    for path in (str(f), f"CSV:{secret}"):
        with pytest.raises(pyogrio.errors.DataSourceError):
            pyogrio.raw.read(path)


def test_vsicurl_and_urls_are_refused_and_fetch_nothing(dbs, tmp_path, http_server):
    port, hits = http_server
    f = tmp_path / "DK_y.geojson"
    f.write_text(_vrt(f"/vsicurl/http://127.0.0.1:{port}/x.csv"))
    with pytest.raises(DomainError) as e:
        ops.run("bureau", f)
    assert e.value.code == "import.unsafe_file"
    for path in (f"/vsicurl/http://127.0.0.1:{port}/DK_a.geojson",
                 f"http://127.0.0.1:{port}/DK_b.geojson", "CSV:/etc/hostname"):
        with pytest.raises(DomainError):
            ops.run("bureau", Path(path) if "://" not in path else path)
        with pytest.raises(pyogrio.errors.DataSourceError):  # GDAL itself: network off
            pyogrio.read_info(path)
    assert hits == []


def test_a_file_that_is_not_what_its_name_says_is_refused(dbs, tmp_path):
    d = clean(9301)
    folder = d.write(tmp_path / "d")
    gpkg = next(folder.glob("DK_*.gpkg"))
    fake = tmp_path / "DK_z.shp"
    fake.write_bytes(gpkg.read_bytes())  # a GeoPackage named .shp
    (tmp_path / "DK_z.cpg").write_text("UTF-8")
    with pytest.raises(DomainError) as e:
        ops.run("bureau", fake)
    assert e.value.code == "import.unsafe_file"
    sqlite = tmp_path / "DK_w.gpkg"  # an SQLite database that is not a GeoPackage
    import sqlite3

    con = sqlite3.connect(sqlite)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(DomainError) as e:
        ops.run("bureau", sqlite)
    assert e.value.code == "import.unsafe_file"


# -- zips ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    """A zip of about 1 MB that expands to 1 GiB (zeros, deflated in a stream)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    size = 1024 ** 3
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        info = zipfile.ZipInfo("成果/DK_bomb.geojson")
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=True) as w:
            chunk = bytes(8 * 1024 ** 2)
            for _ in range(size // len(chunk)):
                w.write(chunk)
    assert path.stat().st_size < 2 * 1024 ** 2
    return path


def test_a_zip_bomb_is_refused_before_extraction(app, dbs, upload_dir, zip_bomb):
    target = upload_dir / "x" / "bomb.zip"
    target.parent.mkdir(parents=True)
    target.write_bytes(zip_bomb.read_bytes())
    with pytest.raises(DomainError) as e:
        uploads.prepare(target)
    assert e.value.code in ("import.zip_ratio", "import.zip_size")
    assert sorted(p.name for p in target.parent.iterdir()) == ["bomb.zip"]  # nothing written


def test_a_lying_zip_header_is_stopped_at_the_limit(app, dbs, upload_dir):
    data = zlib.compress(bytes(3 * 1024 ** 2))
    raw = _zip({"DK_a.geojson": b"x"})
    target = upload_dir / "y" / "liar.zip"
    target.parent.mkdir(parents=True)
    # A member whose header says 1 byte but whose stream holds 3 MB.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("DK_a.geojson", bytes(3 * 1024 ** 2))
    raw = bytearray(buf.getvalue())
    assert data and raw
    target.write_bytes(bytes(raw))
    app.config["IMPORT_ZIP_MAX_TOTAL_MB"] = 1
    try:
        with pytest.raises(DomainError) as e:
            uploads.prepare(target)
        assert e.value.code == "import.zip_size"
    finally:
        app.config["IMPORT_ZIP_MAX_TOTAL_MB"] = 1024
    assert not (target.parent / "delivery").exists()


@pytest.mark.parametrize("name,why", [
    ("../../escaped.txt", "'..'"), ("/tmp/absolute.txt", "absolute"), ("a/../../b.txt", "'..'"),
    (".", "names no file"), ("C:/x.txt", "absolute"), ("a\x01b", "control")])
def test_unsafe_member_names_are_refused(app, dbs, upload_dir, name, why):
    target = upload_dir / "n" / "names.zip"
    target.parent.mkdir(parents=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("ok.txt")
        z.writestr(info, b"x")
        info = zipfile.ZipInfo("placeholder")
        info.filename = name
        z.writestr(info, b"evil")
    target.write_bytes(buf.getvalue())
    with pytest.raises(DomainError) as e:
        uploads.prepare(target)
    assert e.value.code in ("import.zip_name", "import.zip_invalid"), e.value.message("en")
    assert not (upload_dir.parent / "escaped.txt").exists()
    assert not Path("/tmp/absolute.txt").exists() or why != "absolute"


def test_a_link_member_is_refused(app, dbs, upload_dir):
    target = upload_dir / "l" / "link.zip"
    target.parent.mkdir(parents=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("DK_link.geojson")
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "/etc/hostname")
    target.write_bytes(buf.getvalue())
    with pytest.raises(DomainError) as e:
        uploads.prepare(target)
    assert e.value.code == "import.zip_name" and "link" in e.value.message("en")


def test_too_many_members_are_refused(app, dbs, upload_dir):
    n = int(app.config["IMPORT_ZIP_MAX_MEMBERS"]) + 1
    target = upload_dir / "m" / "many.zip"
    target.parent.mkdir(parents=True)
    target.write_bytes(_zip({f"f{i}.txt": b"" for i in range(n)}))
    with pytest.raises(DomainError) as e:
        uploads.prepare(target)
    assert e.value.code == "import.zip_members" and str(n) in e.value.message("en")


def test_gbk_member_names_are_extracted_as_chinese(app, dbs, upload_dir, tmp_path):
    d = clean(9302)
    folder = d.write(tmp_path / "src")
    target = upload_dir / "g" / "gbk.zip"
    target.parent.mkdir(parents=True)
    class GbkInfo(zipfile.ZipInfo):  # as zips made on Chinese Windows: GBK, no UTF-8 flag
        def _encodeFilenameFlags(self):
            return self.filename.encode("gbk"), self.flag_bits & ~0x800

    with zipfile.ZipFile(target, "w") as z:
        for p in folder.iterdir():
            z.writestr(GbkInfo("权属数据/" + p.name), p.read_bytes())
    out = uploads.prepare(target)
    assert (out / "权属数据").is_dir()
    batch = ops.run("bureau", out)
    assert batch.counts["features"] == len(d.dk) + len(d.zjd)


# -- the web: refusals that explain, nothing on disk outside the upload area --------------
def test_a_delivery_outside_the_jurisdiction_is_refused_before_staging(web, dbs, tmp_path,
                                                                       upload_dir):
    d = clean(9303)
    for t in d.tables.values():  # the whole delivery moved to district 140406
        for r in t:
            for k in ("FBFBM", "CBFBM", "DKBM", "CBHTBM", "CBJYQZBM"):
                if r.get(k):
                    r[k] = "140406" + r[k][6:]
    for a, _ in d.dk + d.zjd:
        for k in ("DKBM", "BDCDYH", "FBFBM", "CBFBM"):
            if a.get(k):
                a[k] = "140406" + a[k][6:]
    before = dbs.scalar(select(func.count()).select_from(ImportBatch))
    job = _job(web, _post(web, _delivery_zip(tmp_path, d)))
    assert job["status"] == "failed" and "140406" in job["error"]
    assert "140404" in job["error"]  # the uploader's own jurisdiction, to explain
    assert dbs.scalar(select(func.count()).select_from(ImportBatch)) == before
    page = web.get(f"/jobs/{job['id']}").get_data(as_text=True)
    assert "140406" in page


def test_a_zip_bomb_upload_gets_a_clear_refusal_and_writes_nothing(app, web, dbs, zip_bomb,
                                                                   upload_dir):
    before = set(upload_dir.parent.rglob("*"))
    job = _job(web, _post(web, zip_bomb.read_bytes(), "bomb.zip"))
    limit = int(app.config["IMPORT_ZIP_MAX_RATIO"])
    # the ratio found and the limit, in either language
    assert job["status"] == "failed" and f"{limit}:1" in job["error"]
    assert "DK_bomb.geojson" in job["error"]
    written = [p for p in upload_dir.rglob("*") if p.is_file()]
    assert [p.name for p in written] == ["bomb.zip"]  # the upload as evidence, nothing more
    assert _files_outside(upload_dir, before) == set()


def test_a_path_traversal_upload_gets_a_clear_refusal(web, dbs, upload_dir):
    before = set(upload_dir.parent.rglob("*"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("成果/DK_a.geojson", b"{}")
        z.writestr("../../../escaped.geojson", b"{}")
    job = _job(web, _post(web, buf.getvalue(), "traversal.zip"))
    assert job["status"] == "failed" and "escaped.geojson" in job["error"]
    assert _files_outside(upload_dir, before) == set()
    assert not any(p.name == "escaped.geojson" for p in upload_dir.parent.parent.rglob("*"))


def test_an_over_size_upload_gets_a_413_that_explains(app, web, dbs, upload_dir):
    app.config["IMPORT_MAX_UPLOAD_MB"] = 1
    try:
        before = set(upload_dir.parent.rglob("*"))
        r = _post(web, os.urandom(1024 ** 2 + 4096), "big.zip")
        html = r.get_data(as_text=True)
        assert r.status_code == 413
        assert "1 MB" in html and "IMPORT_MAX_UPLOAD_MB" in html
        assert [p for p in upload_dir.rglob("*") if p.is_file()] == []
        assert _files_outside(upload_dir, before) == set()
    finally:
        app.config["IMPORT_MAX_UPLOAD_MB"] = 512


def test_a_non_zip_upload_named_zip_is_refused_clearly(web, dbs, upload_dir):
    job = _job(web, _post(web, b"not a zip at all", "x.zip"))
    assert job["status"] == "failed" and "zip" in job["error"]


def test_the_upload_is_kept_with_its_batch_and_housekeeping_removes_it(app, web, dbs,
                                                                       tmp_path, upload_dir):
    d = clean(9304)
    job = _job(web, _post(web, _delivery_zip(tmp_path, d), "ok.zip"))
    assert job["status"] == "done", job
    batch = dbs.scalar(select(ImportBatch).order_by(ImportBatch.id.desc()))
    kept = Path(batch.upload_path)
    assert kept.is_relative_to(upload_dir) and (kept / "ok.zip").is_file()
    assert not (kept / "delivery").exists()  # the extracted copy is dropped once staged
    ops.accept("bureau", batch, valid_part=True)
    ops.validation._exec("SELECT staging_batch_index(:b)", b=batch.id)  # as staging makes it
    out = ops.housekeeping("bureau")  # within the keeping time: the upload stays
    assert batch.id not in out["uploads_removed"] and (kept / "ok.zip").is_file()
    assert f"import_feature_geom_b{batch.id}" in out["indexes_dropped"]
    dbs.execute(text("UPDATE import_batch SET created_at = clock_timestamp() - "
                     "interval '1 day' * (:k + 1) WHERE id = :b"),
                {"k": app.config["IMPORT_UPLOAD_KEEP_DAYS"], "b": batch.id})
    out = ops.housekeeping("bureau")
    assert batch.id in out["uploads_removed"] and not kept.exists()
    assert dbs.scalar(text("SELECT count(*) FROM import_feature WHERE batch_id = :b"),
                      {"b": batch.id}) == len(d.dk) + len(d.zjd)  # staged rows stay
