"""Exports read by GDAL's own tools, and import → export → import gives the same register."""
import io
import subprocess
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import text

from app.imports import operations as imports
from app.parcels import exports
from tests.conftest import shared_session, shared_setup
from tests.test_import_sample import SAMPLE

VILLAGE = "140404101201"  # 东和村


def _import_and_accept(session):
    batch = imports.run("bureau", SAMPLE)
    imports.accept("bureau", batch, valid_part=True)
    return batch.id


@pytest.fixture(scope="module")
def _sample(app):
    """The sample imported and accepted once for the module (not once per test)."""
    yield from shared_setup(app, _import_and_accept)


@pytest.fixture()
def dbs(app, _sample):
    yield from shared_session(app, _sample[0])


@pytest.fixture()
def registered(dbs, _sample):
    from app.imports.models import ImportBatch

    return dbs.get(ImportBatch, _sample[1])


def ogrinfo(*args) -> str:
    out = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, check=True)
    return out.stdout


def test_shapefile_export_is_gbk_with_prj_and_cpg(registered, login_as, tmp_path):
    c = login_as("bureau")
    r = c.get(f"/parcels/export?format=shp&scope={VILLAGE}")
    assert r.status_code == 200 and r.mimetype == "application/zip"
    zipfile.ZipFile(io.BytesIO(r.data)).extractall(tmp_path)
    shp = next(tmp_path.glob("DK*.shp"))
    assert shp.with_suffix(".cpg").read_text().strip().upper() in ("GBK", "CP936")
    assert shp.with_suffix(".prj").exists()
    # The .dbf really is GBK: the Chinese name is there in GBK bytes.
    assert "沟底地".encode("gbk") in shp.with_suffix(".dbf").read_bytes()
    summary = ogrinfo("-so", str(shp), shp.stem)
    assert "CM 114E" in summary and "Feature Count" in summary
    feat = ogrinfo("-q", "-where", "DKBM='1404041012010100003'", str(shp), shp.stem)
    assert "DKMC (String) = 沟底地" in feat and "ZJRXM (String) = 韩华梅" in feat


def test_geopackage_and_geojson_exports(registered, login_as, tmp_path):
    c = login_as("bureau")
    gpkg = tmp_path / "x.gpkg"
    gpkg.write_bytes(c.get(f"/parcels/export?format=gpkg&scope={VILLAGE}").data)
    layers = ogrinfo(str(gpkg))
    assert "DK (Multi Polygon)" in layers and "ZJD (Multi Polygon)" in layers
    dk = ogrinfo("-so", str(gpkg), "DK")
    assert 'ID["EPSG",4547]' in dk
    feat = ogrinfo("-q", "-where", "DKBM='1404041012010100003'", str(gpkg), "DK")
    assert "沟底地" in feat
    gj = tmp_path / "x.geojson"
    gj.write_bytes(c.get(f"/parcels/export?format=geojson&scope={VILLAGE}").data)
    info = ogrinfo("-so", str(gj), "DK")
    assert 'ID["EPSG",4490]' in info
    assert "沟底地" in ogrinfo("-q", "-where", "DKBM='1404041012010100003'", str(gj), "DK")


def test_export_scope_respects_jurisdiction(registered, login_as):
    c = login_as("officer2")  # another village's officer
    assert c.get(f"/parcels/export?format=gpkg&scope={VILLAGE}").status_code == 403


def test_import_export_import_gives_the_same_register(registered, dbs, tmp_path):
    # The round trip needs the full package (ID numbers unmasked: the bureau's privileged
    # export); the default export masks them, and then attributes differ (issue 12).
    path = exports.write("nyt", "140404101", tmp_path, full=True)
    folder = tmp_path / "pkg"
    zipfile.ZipFile(path).extractall(folder)
    assert (folder / "权属数据" / "CBF.csv").exists() and list((folder / "矢量数据").glob("DK*.shp"))
    again = imports.run("bureau", folder)
    row = dbs.execute(text("""
        SELECT count(*) AS n,
               max(ST_HausdorffDistance(f.geom, ST_Transform(p.geom, p.survey_srid))) AS maxdist,
               count(*) FILTER (WHERE f.attrs <> p.attrs) AS attrs_differ,
               count(*) FILTER (WHERE ST_SRID(f.geom) <> p.survey_srid) AS crs_differ
        FROM parcel p JOIN import_feature f ON f.code = p.code AND f.batch_id = :b
        WHERE p.end_lifespan IS NULL AND p.import_batch_id = :first"""),
                     {"b": again.id, "first": registered.id}).one()
    registered_count = dbs.execute(text("SELECT count(*) FROM parcel WHERE import_batch_id = :b"),
                                   {"b": registered.id}).scalar()
    assert row.n == registered_count
    assert row.maxdist < 0.001  # metres
    assert row.attrs_differ == 0 and row.crs_differ == 0
    # The ownership tables come back too: the same households and members.
    hh = dbs.execute(text("""SELECT count(*) FROM import_record r JOIN household h
                             ON h.cbfbm = r.attrs->>'CBFBM' WHERE r.batch_id = :b AND r.tbl = 'CBF'
                          """), {"b": again.id}).scalar()
    assert hh == dbs.execute(text("SELECT count(*) FROM household WHERE cbfbm LIKE '140404101%'")
                             ).scalar()
    assert Path(path).suffix == ".zip"
