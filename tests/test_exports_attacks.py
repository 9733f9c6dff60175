# ruff: noqa: F811  (the sample fixtures of tests/test_exports.py are imported and used)
"""Attacks on export jobs (issue 19: POST /api/exports, its status and its file), as another
county's bureau staff, a village officer of another village, a farmer and anonymous: ids of
others (enumerated, as strings, negative, huge), traversal and symbolic links under EXPORT_DIR,
an unmasked export fetched by someone not allowed, a masked export whose *content* leaks an ID
number or a phone (written into a remark or a delivered attribute), a job failing midway,
If-None-Match tricks, and selections the schema lets through to the operation.  Every attack
asserts the refusal (a problem with its rule, never a 500) and what must not have happened."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from sqlalchemy import select, text

from app.audit.models import AuditLog
from app.auth.models import User
from app.errors import DomainError
from app.parcels import exports
from app.parcels import operations as parcel_ops
from app.parcels.models import Parcel
from tests.test_exports import (  # noqa: F401
    VILLAGE,
    _bearer,
    _sample,
    _start,
    dbs,
    export_jobs,
    registered,
)

COUNTY = VILLAGE[:6]


def _staff(dbs, username, role, jurisdiction):  # noqa: F811
    if dbs.scalar(select(User).where(User.username == username)) is None:
        dbs.add(User(username=username, display_name=username, role=role,
                     jurisdiction_code=jurisdiction, password_hash="x"))
        dbs.flush()
    return _bearer(username)


def _done(c, h, **body):
    r = _start(c, h, **body)
    assert r.status_code == 202, r.get_data(as_text=True)
    st = c.get(r.headers["Location"], headers=h).get_json()
    assert st["status"] == "done", st
    return st


def _downloads(dbs, job_id):  # noqa: F811
    return dbs.scalars(select(AuditLog).where(AuditLog.action == "parcel.export.download",
                                              AuditLog.changes["job"].as_integer() == job_id)
                       ).all()


def _texts(data: bytes) -> str:
    """Every file of an export (a .zip unpacked) decoded, UTF-8 or GBK (Shapefile .dbf)."""
    blobs = [data]
    if data[:2] == b"PK":
        z = zipfile.ZipFile(io.BytesIO(data))
        blobs = [z.read(n) for n in z.namelist()]
    out = []
    for b in blobs:
        out.append(b.decode("utf-8", "replace"))
        out.append(b.decode("gbk", "replace"))
    return "\n".join(out)


def _is_problem(r, *statuses):
    assert r.status_code in statuses, (r.status_code, r.get_data(as_text=True)[:300])
    assert r.mimetype == "application/problem+json", r.mimetype


def test_ids_as_strings_negative_and_huge_are_404_problems_never_500(registered, dbs, app,
                                                                    export_jobs):
    c, h = app.test_client(), _bearer("bureau")
    st = _done(c, h, format="geojson", scope=VILLAGE)
    for raw in ("abc", "-1", "0", "1.0", "1e3", " 1", "%2e%2e", "..%2f1", str(2**31),
                str(2**63), "9" * 40, f"{st['id']}%00", f"{st['id']}/../{st['id']}"):
        for tail in ("", "/file"):
            r = c.get(f"/api/exports/{raw}{tail}", headers=h)
            assert r.status_code != 500, (raw, tail)
            _is_problem(r, 400, 404, 405)
    # anonymous: nothing, not even whether the id exists
    for url in (f"/api/exports/{st['id']}", st["file_url"], f"/api/exports/{st['id'] + 1}"):
        r = c.get(url)
        assert r.status_code == 401, url


def test_other_users_enumerating_ids_get_no_file_and_no_download_is_recorded(
        registered, dbs, app, export_jobs):
    c, h = app.test_client(), _bearer("bureau")
    st = _done(c, h, format="geojson", scope=VILLAGE)
    attackers = {"other county": _staff(dbs, "atk-bureau-140405", "bureau_staff", "140405"),
                 "other village": _bearer("officer2"), "farmer": _bearer("farmer")}
    for who, ah in attackers.items():
        seen = set()
        # ids around the job (some exist, some do not) and one far beyond any job
        for i in [*range(max(1, st["id"] - 5), st["id"] + 6), st["id"] + 100_000]:
            for url in (f"/api/exports/{i}", f"/api/exports/{i}/file"):
                r = c.get(url, headers=ah)
                assert r.status_code in (403, 404), (who, url, r.status_code)
                assert r.mimetype == "application/problem+json"
                seen.add((r.status_code, r.get_data()))
        # an existing job out of reach answers exactly like a missing id: nothing to enumerate
        assert len(seen) == 1, (who, seen)
    assert _downloads(dbs, st["id"]) == []


def test_an_unmasked_export_is_read_only_by_its_requester_or_who_may_make_one(
        registered, dbs, app, export_jobs):
    c, h = app.test_client(), _bearer("bureau")
    st = _done(c, h, format="geojson", scope=VILLAGE, full=True, purpose="征地补偿核对名单")
    assert st["full"] is True
    own_officer = dbs.execute(text(
        "SELECT username FROM app_user WHERE role = 'collective_officer' "
        "AND :v LIKE jurisdiction_code || '%' LIMIT 1"), {"v": VILLAGE}).scalar()
    refused = {"auditor of the county": _staff(dbs, "atk-auditor", "auditor", COUNTY),
               "other county's bureau": _staff(dbs, "atk-bureau-140405b", "bureau_staff",
                                               "140405"),
               "other village": _bearer("officer2")}
    if own_officer:
        refused["the village's own officer"] = _bearer(own_officer)
    for who, ah in refused.items():
        for url in (f"/api/exports/{st['id']}", st["file_url"]):
            r = c.get(url, headers=ah)
            assert r.status_code == 404, (who, url)  # concealed: as if it did not exist
            _is_problem(r, 404)
    assert _downloads(dbs, st["id"]) == []
    # a colleague of the same county who may make one reads it (and is recorded)
    peer = _staff(dbs, "atk-bureau-peer", "bureau_staff", COUNTY)
    r = c.get(st["file_url"], headers=peer)
    assert r.status_code == 200
    dl = _downloads(dbs, st["id"])
    assert len(dl) == 1 and dl[0].changes["unmasked"] is True
    # the requester, moved to another role since, no longer holds the privilege: refused
    req = _staff(dbs, "atk-bureau-moved", "bureau_staff", COUNTY)
    mine = _done(c, req, format="geojson", scope=VILLAGE, full=True, purpose="征地补偿核对名单")
    assert c.get(mine["file_url"], headers=req).status_code == 200
    dbs.execute(text("UPDATE app_user SET role = 'auditor' WHERE username = 'atk-bureau-moved'"))
    dbs.expire_all()
    for url in (f"/api/exports/{mine['id']}", mine["file_url"]):
        r = c.get(url, headers=req)  # the requester is told which rule refuses them
        _is_problem(r, 403)
        assert r.get_json()["code"] == "export.full.privilege"
    assert len(_downloads(dbs, mine["id"])) == 1


def _village_secrets(dbs):
    ids = dbs.execute(text(
        "SELECT DISTINCT p.id_number FROM person p JOIN household_member m ON m.person_id = p.id "
        "JOIN household h ON h.id = m.household_id WHERE h.cbfbm LIKE :v "
        "AND p.id_number IS NOT NULL"), {"v": VILLAGE + "%"}).scalars().all()
    phones = dbs.execute(text(
        "SELECT DISTINCT phone FROM household WHERE cbfbm LIKE :v AND phone IS NOT NULL "
        "AND length(phone) >= 11"), {"v": VILLAGE + "%"}).scalars().all()
    return ids, phones


# `make test` checks the GeoJSON export (exports.write masks the records before it picks the
# format's writer; the NY/T package's ownership tables are checked masked by test_security's
# test_default_export_masks_and_full_export_is_a_bureau_privilege_with_purpose);
# `make test-deep` every format.
@pytest.mark.parametrize("fmt", [f if f == "geojson" else pytest.param(f, marks=pytest.mark.deep)
                                 for f in exports.FORMATS])
def test_a_masked_export_leaks_no_id_number_or_phone_even_inside_free_text(
        registered, dbs, app, export_jobs, fmt):
    ids, phones = _village_secrets(dbs)
    assert ids and phones  # the village has people to protect
    # an ID number and a phone written into a remark (plain, full width, spaced) and into a
    # delivered attribute of an unexpected name
    full_width = ids[1].translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
    spaced = f"{phones[1][:3]} {phones[1][3:7]} {phones[1][7:]}"
    p = dbs.scalar(select(Parcel).where(Parcel.end_lifespan.is_(None), Parcel.kind == "contract",
                                        Parcel.code.like(VILLAGE + "%")).order_by(Parcel.code))
    parcel_ops.amend("bureau", p, "备注更正",
                     remarks=f"承包方身份证{ids[0]}，电话{phones[0]}；{full_width}；{spaced}",
                     attrs={**(p.attrs or {}), "SFZH": ids[2], "QLRDH": phones[2]})
    c, h = app.test_client(), _bearer("bureau")
    st = _done(c, h, format=fmt, scope=VILLAGE)
    data = c.get(st["file_url"], headers=h).data
    assert len(data) == st["bytes"]
    body = _texts(data)
    if fmt == "gpkg":  # SQLite pages: the strings are stored as UTF-8 inside the file
        body = data.decode("utf-8", "replace")
    leaked = [s for s in ids + phones if s in body]
    assert not leaked, (fmt, leaked[:3])
    assert ids[1] not in body.translate({0xFF10 + i: str(i) for i in range(10)}), fmt
    if fmt != "nyt":  # the remark itself is exported, masked
        assert f"{phones[0][:3]}****{phones[0][-4:]}" in body, fmt
    # the unmasked export has them (so the check above could fail)
    st = _done(c, h, format="geojson", scope=VILLAGE, full=True, purpose="征地补偿核对名单")
    body = c.get(st["file_url"], headers=h).get_data(as_text=True)
    assert ids[0] in body and phones[0] in body and ids[2] in body


@pytest.mark.parametrize("scope", ["1404%", "140404_", "14040410120_", "../../../../tmp/x",
                                   "140404101201/..", "140404101201\n", "１４０４０４１０１２０１",
                                   "", " 140404101201", "1" * 40])
def test_a_selection_the_operation_would_widen_or_escape_with_is_refused(registered, dbs,
                                                                        export_jobs, scope):
    before = dbs.scalar(text("SELECT count(*) FROM job WHERE kind = 'export'"))
    for call in (lambda: exports.start("bureau", "geojson", scope),
                 lambda: exports.write("geojson", scope, export_jobs)):
        with pytest.raises(DomainError) as e:
            call()
        assert e.value.code == "export.scope", (scope, e.value.code)
    assert dbs.scalar(text("SELECT count(*) FROM job WHERE kind = 'export'")) == before
    assert not export_jobs.exists() or not any(export_jobs.rglob("*.geojson"))


def test_bad_bodies_are_refused_never_500(registered, dbs, app, export_jobs):
    c, h = app.test_client(), _bearer("bureau")
    before = dbs.scalar(text("SELECT count(*) FROM job WHERE kind = 'export'"))
    # what the schema lets through reaches the operation: its rule, as a problem
    r = c.post("/api/exports", json={"format": "gpkg", "scope": VILLAGE + "\n"}, headers=h)
    _is_problem(r, 422)
    assert r.get_json()["code"] == "export.scope" and r.get_json()["legal_source"]
    # what the schema refuses: 422 problem JSON with the rule request.schema, naming the field
    bodies = {"scope": {"format": "gpkg", "scope": 140404},
              "format": {"format": ["gpkg"], "scope": VILLAGE},
              "full": {"format": "gpkg", "scope": VILLAGE, "full": "maybe"},
              "purpose": {"format": "gpkg", "scope": VILLAGE, "purpose": "x" * 5000}}
    for field, body in bodies.items():
        r = c.post("/api/exports", json=body, headers=h)
        assert r.status_code == 422 and field in r.get_json()["errors"]["json"], body
        _is_problem(r, 422)
        assert r.get_json()["code"] == "request.schema" and r.get_json()["legal_source_zh"]
    for body in ({"format": None, "scope": VILLAGE}, {"format": "../gpkg", "scope": VILLAGE},
                 [], "gpkg", 0):
        assert c.post("/api/exports", json=body, headers=h).status_code == 422, body
    r = c.post("/api/exports", data=b"\xff\xfe{", headers={**h,
                                                           "Content-Type": "application/json"})
    _is_problem(r, 400)
    assert dbs.scalar(text("SELECT count(*) FROM job WHERE kind = 'export'")) == before


def test_a_job_failing_midway_serves_no_partial_file(registered, dbs, app, export_jobs,
                                                     monkeypatch):
    from gis import io as gio

    real = gio.write_layer
    calls = []

    def half(path, *a, **kw):
        calls.append(path)
        real(path, *a, **kw)  # the first layer is written …
        raise OSError("disk full")  # … then the disk fills

    monkeypatch.setattr(gio, "write_layer", half)
    c, h = app.test_client(), _bearer("bureau")
    r = _start(c, h, format="gpkg", scope=VILLAGE)
    assert r.status_code == 202
    st = c.get(r.headers["Location"], headers=h).get_json()
    assert calls and st["status"] == "failed" and st["file_url"] is None, st
    assert "disk full" not in (st["error"] or "") and str(export_jobs) not in (st["error"] or "")
    f = c.get(f"/api/exports/{st['id']}/file", headers=h)
    _is_problem(f, 409)
    assert f.get_json()["code"] == "export.not_ready"
    assert not (export_jobs / str(st["id"])).exists()  # the partial file is gone
    assert _downloads(dbs, st["id"]) == []
    # even if the partial file were still there, a failed job's file is never served
    (export_jobs / str(st["id"])).mkdir(parents=True)
    (export_jobs / str(st["id"]) / calls[0].name).write_bytes(b"partial")
    _is_problem(c.get(f"/api/exports/{st['id']}/file", headers=h), 409)


def test_symlinks_and_traversal_under_export_dir_are_not_served(registered, dbs, app,
                                                                export_jobs, tmp_path):
    c, h = app.test_client(), _bearer("bureau")
    a = _done(c, h, format="geojson", scope=VILLAGE)
    b = _done(c, h, format="geojson", scope=VILLAGE + "01")
    secret = tmp_path / "secret"
    secret.mkdir()
    name = json.loads(json.dumps(dbs.execute(text("SELECT result->>'file' FROM job WHERE id = :i"),
                                             {"i": a["id"]}).scalar()))
    (secret / name).write_text("not an export")
    folder = export_jobs / str(a["id"])
    # the file replaced by a link to another file
    (folder / name).unlink()
    (folder / name).symlink_to(secret / name)
    _is_problem(c.get(a["file_url"], headers=h), 410)
    # the folder replaced by a link
    (folder / name).unlink()
    folder.rmdir()
    folder.symlink_to(secret, target_is_directory=True)
    _is_problem(c.get(a["file_url"], headers=h), 410)
    # the recorded file name pointing into another job's folder, or out of EXPORT_DIR
    other = dbs.execute(text("SELECT result->>'file' FROM job WHERE id = :i"),
                        {"i": b["id"]}).scalar()
    for bad in (f"../{b['id']}/{other}", "../../secret/" + name, str(secret / name), ".", ""):
        dbs.execute(text("UPDATE job SET result = jsonb_set(result, '{file}', to_jsonb("
                         "CAST(:f AS text))) WHERE id = :i"), {"f": bad, "i": a["id"]})
        _is_problem(c.get(a["file_url"], headers=h), 410)
    assert _downloads(dbs, a["id"]) == []
    assert c.get(b["file_url"], headers=h).status_code == 200  # the other job is untouched


def test_if_none_match_never_bypasses_access_readiness_or_expiry(registered, dbs, app,
                                                                 export_jobs):
    from app.jobs.models import Job

    c, h = app.test_client(), _bearer("bureau")
    st = _done(c, h, format="geojson", scope=VILLAGE)
    etag = f'"{st["sha256"]}"'
    other = _staff(dbs, "atk-bureau-140405c", "bureau_staff", "140405")
    for inm in (etag, "*", f'W/{etag}', f'"x", {etag}'):
        _is_problem(c.get(st["file_url"], headers={**other, "If-None-Match": inm}), 404)
        _is_problem(c.get(st["file_url"], headers={**_bearer("farmer"), "If-None-Match": inm}),
                    403)
    # a wrong tag: the file itself; the right one: 304 with nothing
    r = c.get(st["file_url"], headers={**h, "If-None-Match": '"' + "0" * 64 + '"'})
    assert r.status_code == 200 and r.headers["ETag"] == etag and len(r.data) == st["bytes"]
    r = c.get(st["file_url"], headers={**h, "If-None-Match": etag})
    assert r.status_code == 304 and r.data == b""
    # a job not done: 409 whatever the tag
    job = Job(kind="export", params={"format": "gpkg", "scope": VILLAGE, "full": False},
              created_by=dbs.scalar(text("SELECT id FROM app_user WHERE username = 'bureau'")))
    dbs.add(job)
    dbs.flush()
    for inm in ("*", etag):
        _is_problem(c.get(f"/api/exports/{job.id}/file", headers={**h, "If-None-Match": inm}),
                    409)
    # an expired file: 410, not 304
    dbs.execute(text("UPDATE job SET updated_at = updated_at - interval '30 days' "
                     "WHERE id = :i"), {"i": st["id"]})
    exports.purge(7)
    _is_problem(c.get(st["file_url"], headers={**h, "If-None-Match": etag}), 410)


def test_repeated_posts_get_their_own_job_folder_and_file(registered, dbs, app, export_jobs):
    """Back-to-back POSTs of one selection (inline jobs: true concurrency is not exercised
    here): each gets its own id and folder; the ETag of each download is its own bytes' hash;
    purging one keeps the others."""
    import hashlib

    c, h = app.test_client(), _bearer("bureau")
    jobs = [_done(c, h, format="geojson", scope=VILLAGE) for _ in range(3)]
    assert len({j["id"] for j in jobs}) == 3
    for j in jobs:
        r = c.get(j["file_url"], headers=h)
        assert r.headers["ETag"].strip('"') == hashlib.sha256(r.data).hexdigest() == j["sha256"]
        assert (export_jobs / str(j["id"])).is_dir()
    dbs.execute(text("UPDATE job SET updated_at = updated_at - interval '30 days' "
                     "WHERE id = :i"), {"i": jobs[0]["id"]})
    assert exports.purge(7) == [jobs[0]["id"]]
    assert [c.get(j["file_url"], headers=h).status_code for j in jobs] == [410, 200, 200]


# `make test` exports the sample's village (the same steps over fewer parcels); `make test-deep`
# its county, the widest selection it allows.
@pytest.mark.parametrize("scope", [VILLAGE, pytest.param(COUNTY, marks=pytest.mark.deep)])
def test_a_large_scope_is_a_job_with_progress_not_a_long_request(registered, dbs, app,
                                                                 export_jobs, monkeypatch, scope):
    """A wide selection (at its widest, the sample's county): the POST answers with the job
    (202, a Location to follow), and the job reports its steps in order, up to its total.
    (Inline jobs here: that the request returns before a threaded job finishes is not
    exercised.)"""
    real = exports.write
    seen = []

    def recording(fmt, scope, out_dir, full=False, stats=None, progress=None):
        def step(done, total, message=""):
            seen.append((done, total, message))
            progress(done, total, message)
        return real(fmt, scope, out_dir, full, stats, step)

    monkeypatch.setattr(exports, "write", recording)
    c, h = app.test_client(), _bearer("bureau")
    r = _start(c, h, format="nyt", scope=scope)
    assert r.status_code == 202 and r.headers["Location"].endswith(f"/{r.get_json()['id']}")
    st = c.get(r.headers["Location"], headers=h).get_json()
    assert st["status"] == "done" and st["percent"] == 100
    dones = [d for d, _, _ in seen]
    assert dones == sorted(dones) and len(set(t for _, t, _ in seen)) == 1
    assert len(seen) >= 4 and seen[-1][0] < seen[-1][1]  # "written" is reported by the job
    rows = dbs.scalar(text("SELECT count(*) FROM parcel WHERE end_lifespan IS NULL "
                           "AND code LIKE :s"), {"s": scope + "%"})
    assert f"writing {rows} features" in [m for _, _, m in seen]
