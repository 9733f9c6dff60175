"""Adversarial review of issue 19's API (parcels, rights, imports, households, OGC API –
Features): every hostile input is a clear 400 (problem JSON), never a 500; jurisdiction holds
on every new endpoint."""
from urllib.parse import quote

import pytest

ITEMS = "/ogc/collections/parcels/items?limit=1&"

# CQL2 literals of the wrong type for the queryable they meet: a database type error was a 500.
MISTYPED = ["code = 1", "scmj = 'abc'", "scmj > 'x'", "version = 'a'", "code = TRUE",
            "scmj BETWEEN 'a' AND 2", "scmj IN ('a', 2)", "scmj LIKE '1%'", "code = scmj",
            "'x' < version"]


@pytest.mark.parametrize("cql", MISTYPED)
def test_a_mistyped_cql2_literal_is_a_400(client, cql):
    r = client.get(ITEMS + "filter=" + quote(cql))
    assert r.status_code == 400, (cql, r.status_code)
    assert r.is_json and r.get_json()["status"] == 400


def test_well_typed_filters_still_work(client, dbs):
    from sqlalchemy import text

    n = dbs.execute(text("SELECT count(*) FROM parcel WHERE end_lifespan IS NULL "
                         "AND scmj > 0 AND kind = 'contract'")).scalar()
    r = client.get(ITEMS + "filter=" + quote("scmj > 0 AND class = 'contract'"))
    assert r.status_code == 200 and r.get_json()["numberMatched"] == n


@pytest.mark.parametrize("crs", ["4491", "4554", "4513"])
def test_a_projected_bbox_the_zone_cannot_invert_is_a_400(client, crs):
    r = client.get(ITEMS + "bbox=-1e8,-1e8,1e8,1e8&bbox-crs="
                   + quote(f"http://www.opengis.net/def/crs/EPSG/0/{crs}"))
    assert r.status_code == 400 and r.is_json


def bearer(name):
    from app.auth import operations as auth_ops
    from tests.conftest import user

    return {"Authorization": f"Bearer {auth_ops.issue_api_token(None, user(name))}"}


def test_a_parcel_amended_through_the_api_gets_its_next_version(app, dbs):
    """0026_scale's generated county_code made parcel_guard refuse every version end (500)."""
    from sqlalchemy import text

    p = dbs.execute(text("SELECT id, version FROM parcel WHERE end_lifespan IS NULL "
                         "ORDER BY id LIMIT 1")).first()
    r = app.test_client().post(f"/api/parcels/{p.id}/amend", headers=bearer("bureau"),
                               json={"remarks": "备注更正", "reason": "更正备注"})
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert r.get_json()["version"] == p.version + 1


def test_a_contract_over_another_collectives_parcel_is_refused(app, dbs):
    """A bureau account registered a household's contract over a parcel of another collective
    (of any county: only the household's code was checked for jurisdiction)."""
    from sqlalchemy import text

    hh = dbs.execute(text("SELECT cbfbm, collective_id FROM household ORDER BY cbfbm LIMIT 1")
                     ).first()
    other = dbs.execute(text("""
        SELECT p.code, c.fbfbm FROM parcel p JOIN collective c ON c.id = p.collective_id
        WHERE p.kind = 'contract' AND p.end_lifespan IS NULL AND p.collective_id <> :c
          AND NOT EXISTS (SELECT 1 FROM land_right_parcel rp JOIN land_right r
                          ON r.id = rp.right_id WHERE rp.parcel_uid = p.uid
                          AND r.status = 'current' AND r.end_lifespan IS NULL)
        ORDER BY p.id LIMIT 1"""), {"c": hh.collective_id}).first()
    assert other is not None
    before = dbs.execute(text("SELECT count(*) FROM land_right")).scalar()
    r = app.test_client().post("/api/rights/land-contracts", headers=bearer("bureau"), json={
        "household_code": hh.cbfbm, "contract_code": hh.cbfbm + "J",
        "parcel_codes": [other.code], "term_start": "2020-01-01", "term_end": "2049-12-31",
        "reason": "测试登记"})
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    body = r.get_json()
    assert body["code"] == "right.contract.parcel_collective"
    assert "第十三条" in body["legal_source"] and other.fbfbm in body["detail"]
    assert dbs.execute(text("SELECT count(*) FROM land_right")).scalar() == before


def _expired_contract(app, dbs):
    """A household's contract over one free parcel of its own collective, its term past."""
    from sqlalchemy import text

    row = dbs.execute(text("""
        SELECT h.cbfbm, p.code FROM household h JOIN parcel p ON p.collective_id = h.collective_id
        WHERE p.kind = 'contract' AND p.end_lifespan IS NULL AND h.ended_on IS NULL
          AND NOT EXISTS (SELECT 1 FROM land_right r WHERE r.contract_code = h.cbfbm || 'J')
          AND NOT EXISTS (SELECT 1 FROM land_right_parcel rp JOIN land_right r
                          ON r.id = rp.right_id WHERE rp.parcel_uid = p.uid
                          AND r.status = 'current' AND r.end_lifespan IS NULL)
        ORDER BY h.cbfbm, p.id LIMIT 1""")).first()
    r = app.test_client().post("/api/rights/land-contracts", headers=bearer("bureau"), json={
        "household_code": row.cbfbm, "contract_code": row.cbfbm + "J",
        "parcel_codes": [row.code], "term_start": "1998-01-01", "term_end": "2020-12-31",
        "reason": "测试登记"})
    assert r.status_code == 201, r.get_data(as_text=True)[:300]
    return r.get_json()["uid"]


@pytest.mark.parametrize("field,text_", [("reason", "户主已进城落户，合同到期收回"),
                                         ("evidence", "迁户口到县城，承包地收回"),
                                         ("reason", "jin cheng luo hu")])
def test_a_lawful_ground_with_settling_in_town_written_beside_it_is_refused(app, dbs, field,
                                                                             text_):
    """The end endpoint took "expiry" with the reason "进城落户": the forbidden ground in
    disguise, recorded as the reason of a lawful end."""
    from sqlalchemy import text

    uid = _expired_contract(app, dbs)
    body = {"ground": "expiry", "ended_on": "2021-01-01", "reason": "期限届满"}
    body[field] = text_
    r = app.test_client().post(f"/api/rights/{uid}/end", headers=bearer("bureau"), json=body)
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert r.get_json()["code"] == "guard.text" and r.get_json()["legal_source"]
    assert dbs.execute(text("SELECT status FROM land_right WHERE uid = :u AND end_lifespan "
                            "IS NULL"), {"u": uid}).scalar() == "current"
    assert dbs.execute(text("SELECT count(*) FROM audit_log WHERE action = 'right.end.refused' "
                            "AND object_id = :u"), {"u": str(uid)}).scalar() >= 1


def test_the_same_end_with_a_plain_reason_goes_through(app, dbs):
    uid = _expired_contract(app, dbs)
    r = app.test_client().post(f"/api/rights/{uid}/end", headers=bearer("bureau"), json={
        "ground": "expiry", "ended_on": "2021-01-01", "reason": "承包期限届满",
        "evidence": "合同约定期限至 2020-12-31"})
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert r.get_json()["status"] == "ended" and r.get_json()["end_ground"] == "expiry"


def test_another_countys_staff_do_not_list_a_countys_import_batches(app, dbs):
    """GET /api/imports listed every batch of every county (file name, uploader, error) to any
    bureau account or auditor; reading one by id was already refused."""
    from app.auth import operations as auth_ops
    from app.extensions import db
    from app.imports.models import ImportBatch, ImportFeature
    from tests.conftest import PASSWORD

    code = dbs.execute(__import__("sqlalchemy").text(
        "SELECT code FROM parcel ORDER BY id LIMIT 1")).scalar()
    b = ImportBatch(source="秘密-交付.zip", created_by="bureau", status="validated")
    db.session.add(b)
    db.session.flush()
    db.session.add(ImportFeature(batch_id=b.id, layer="DK", fid=1, code=code))
    other_county = code[:4] + f"{(int(code[4:6]) + 1) % 100:02d}"
    auth_ops.create_user(None, "bureau_x", PASSWORD, "bureau_staff", "外县 科员", other_county,
                         reason="test account")
    db.session.flush()
    c = app.test_client()

    def ids(name):
        r = c.get("/api/imports?per_page=500", headers=bearer(name))
        assert r.status_code == 200
        return [i["id"] for i in r.get_json()["items"]]

    assert b.id in ids("bureau") and b.id in ids("auditor")
    assert b.id not in ids("bureau_x")
    assert c.get(f"/api/imports/{b.id}", headers=bearer("bureau_x")).status_code == 403
    # the page listed them too
    from tests.conftest import login

    for name, shown in (("bureau", True), ("bureau_x", False)):
        web = app.test_client()
        assert login(web, name).status_code == 302
        page = web.get("/imports")
        assert page.status_code == 200 and (b.source in page.get_data(as_text=True)) == shown
