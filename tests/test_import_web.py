"""The web import: upload a zipped delivery, follow the job, read the report, accept the valid
part, correct a quarantined feature through its form."""
import io
import json
import zipfile

from sqlalchemy import select, text

from app.imports import operations as ops
from app.imports.models import ImportBatch, ImportFeature
from tests.conftest import csrf_from
from tests.test_import_sample import SAMPLE, known_errors


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in SAMPLE.rglob("*"):
            if f.is_file() and f.suffix.lower() in (".shp", ".shx", ".dbf", ".prj", ".cpg", ".csv") \
                    and f.name != "KNOWN_ERRORS.csv":
                z.write(f, f.relative_to(SAMPLE.parent))
    return buf.getvalue()


def test_upload_progress_report_accept_and_correct(app, login_as, dbs):
    app.config["JOBS_MODE"] = "sync"
    try:
        c = login_as("bureau")
        page = c.get("/imports").get_data(as_text=True)
        r = c.post("/imports", data={"csrf_token": csrf_from(page),
                                     "file": (io.BytesIO(_zip()), "delivery.zip")},
                   content_type="multipart/form-data")
        assert r.status_code == 302 and "/jobs/" in r.headers["Location"]
        job = c.get(r.headers["Location"] + ".json").get_json()
        assert job["status"] == "done" and job["percent"] == 100 and job["next"]
        report = c.get(job["next"]).get_data(as_text=True)
        assert "自相交" in report and "1404041012020100659" in report
        batch = dbs.scalar(select(ImportBatch).order_by(ImportBatch.id.desc()))
        csv = c.get(f"/imports/{batch.id}/report.csv").get_data(as_text=True)
        assert csv.count("\n") == len(known_errors()) + 1
        geo = c.get(f"/imports/{batch.id}/faults.geojson").get_json()
        assert {f["properties"]["rule"] for f in geo["features"]} >= {"overlap",
                                                                      "self_intersection"}
        r = c.post(f"/imports/{batch.id}/accept", data={
            "csrf_token": csrf_from(report), "mode": "valid", "reason": "确权数据入库"},
            follow_redirects=True)
        quarantined = len({f.feature_id for f in ops.faults(batch.id) if f.feature_id})
        registered = batch.counts["features"] - quarantined
        assert str(registered) in r.get_data(as_text=True)
        shifted = dbs.scalar(select(ImportFeature).where(
            ImportFeature.batch_id == batch.id, ImportFeature.code == "1404041012020100659"))
        form = c.get(f"/imports/features/{shifted.id}/correct").get_data(as_text=True)
        assert "POLYGON" in form
        wkt = dbs.execute(text("SELECT ST_AsText(ST_Translate(geom, -3, 0)) FROM import_feature "
                               "WHERE id = :i"), {"i": shifted.id}).scalar()
        r = c.post(f"/imports/features/{shifted.id}/correct", data={
            "csrf_token": csrf_from(form), "attrs": json.dumps(shifted.attrs, ensure_ascii=False),
            "wkt": wkt, "reason": "外业复核"}, follow_redirects=True)
        assert r.status_code == 200
        assert dbs.execute(text("SELECT count(*) FROM parcel WHERE code = '1404041012020100659' "
                                "AND end_lifespan IS NULL")).scalar() == 1
    finally:
        app.config["JOBS_MODE"] = None


def test_other_roles_cannot_upload(login_as):
    c = login_as("auditor")
    page = c.get("/imports").get_data(as_text=True)
    assert 'id="upload-form"' not in page
    r = c.post("/imports", data={"csrf_token": csrf_from(page)})
    assert r.status_code == 403
