"""Campaign, certificate and farmer pages, and the JSON API for the same operations."""
import datetime as dt

import pytest
from sqlalchemy import select

from app.auth import operations as auth_ops
from app.campaigns.models import Campaign, Objection
from app.certificates import operations as certificates
from app.certificates.models import Certificate
from app.people.models import Household
from tests.conftest import csrf_from, user
from tests.test_certificates import pdftotext
from tests.test_rights import _contract


@pytest.fixture()
def farmer_household(dbs):
    hh = dbs.scalar(select(Household).where(Household.cbfbm == user("farmer").household_code))
    from app.parcels.models import Parcel

    fields = dbs.scalars(select(Parcel).where(Parcel.household_code == hh.cbfbm,
                                              Parcel.kind == "contract",
                                              Parcel.end_lifespan.is_(None))).all()
    return hh, _contract(dbs, hh, fields, end=dt.date(2058, 12, 31))


@pytest.fixture()
def other_certificate(dbs, farmer_household):
    """A valid certificate of another household, in another group than the farmer's (so a
    campaign of the farmer's group does not take its right in)."""
    hh, _ = farmer_household
    from app.parcels.models import Parcel

    for other in dbs.scalars(select(Household).where(Household.cbfbm.notlike(hh.cbfbm[:14] + "%"))
                             .order_by(Household.id)):
        fields = dbs.scalars(select(Parcel).where(Parcel.household_code == other.cbfbm,
                                                  Parcel.kind == "contract",
                                                  Parcel.end_lifespan.is_(None))).all()
        if fields:
            return certificates.issue("bureau", _contract(dbs, other, fields,
                                                          end=dt.date(2058, 12, 31)))
    raise AssertionError("the seeded county has no second group with contract land")


def _post(client, url, data, page_url=None):
    page = client.get(page_url or url).get_data(as_text=True)
    return client.post(url, data={**data, "csrf_token": csrf_from(page)})


def test_campaign_through_the_pages(app, dbs, login_as, farmer_household, client, monkeypatch):
    hh, right = farmer_household
    group = hh.cbfbm[:14]
    staff = login_as("bureau")
    r = _post(staff, "/campaigns", {"fbfbm": group, "batch": "0", "reason": "第一组确权"})
    assert r.status_code == 303
    c = dbs.scalar(select(Campaign).where(Campaign.fbfbm == group))
    start = (dt.date.today() - dt.timedelta(days=8)).isoformat()
    r = _post(staff, f"/campaigns/{c.id}/notice", {"start": start, "days": "7"},
              f"/campaigns/{c.id}")
    dbs.refresh(c)
    assert r.status_code == 303 and c.status == "notice"

    # The notice has run: its page is no longer for anyone (issue 12), but staff who reach the
    # group still read it, with no ID numbers on it; the printable list names households.
    assert client.get(f"/notice/{c.id}").status_code == 302  # to the sign-in page
    page = staff.get(f"/notice/{c.id}").get_data(as_text=True)
    assert hh.name in page and hh.head.id_number not in page and right.parcels[0].parcel_code \
        in page
    pdf = staff.get(f"/campaigns/{c.id}/notice.pdf")
    assert pdf.mimetype == "application/pdf"
    text = pdftotext(pdf.data)
    assert hh.name in text and right.parcels[0].parcel_code in text

    # The notice ran from 8 days ago for 7 days: it is over, no objection can be lodged now.
    farmer = login_as("farmer")
    r = _post(farmer, f"/notice/{c.id}", {"subject": "area", "text": "面积不对",
                                          "parcel_code": right.parcels[0].parcel_code})
    assert r.status_code == 303
    refused = farmer.get(r.location).get_data(as_text=True)  # the refusal, flashed
    from markupsafe import escape

    from app.campaigns.operations import OUTSIDE_NOTICE
    from app.errors import DomainError

    err = DomainError(OUTSIDE_NOTICE, start=c.notice_start, end=c.notice_end)
    assert str(escape(err.full("zh"))) in refused, refused[:3000]
    assert not dbs.scalars(select(Objection)).all()


def test_objection_online_then_resolution_registration_and_certificates(
        app, dbs, login_as, farmer_household, other_certificate, monkeypatch, tmp_path):
    hh, right = farmer_household
    from app.campaigns import operations as ops

    c = ops.open_campaign("bureau", hh.cbfbm[:14], None, "确权")
    ops.publish_notice("bureau", c, start=dt.date.today() - dt.timedelta(days=3), days=7)
    farmer = login_as("farmer")
    code = right.parcels[0].parcel_code
    r = _post(farmer, f"/notice/{c.id}", {"subject": "boundary", "text": "东边界址不对",
                                          "parcel_code": code})
    assert r.status_code == 303
    o = dbs.scalar(select(Objection).where(Objection.campaign_id == c.id))
    assert o.lodged_by == user("farmer").display_name and o.subject == "boundary"
    assert f"#{o.id}" in farmer.get(f"/notice/{c.id}").get_data(as_text=True)
    # A farmer cannot resolve it or see the staff pages.
    assert farmer.get(f"/campaigns/{c.id}").status_code == 403

    staff = login_as("bureau")
    r = _post(staff, f"/campaigns/{c.id}/register", {}, f"/campaigns/{c.id}")
    assert r.status_code == 303
    dbs.refresh(c)
    assert c.status == "notice"  # refused: the notice runs and an objection is open
    r = _post(staff, f"/campaigns/{c.id}/objections/{o.id}",
              {"outcome": "dismissed", "resolution": "经实地指界，四至与调查一致"},
              f"/campaigns/{c.id}")
    dbs.refresh(o)
    assert r.status_code == 303 and o.status == "dismissed"
    c.notice_start, c.notice_end = dt.date.today() - dt.timedelta(days=9), \
        dt.date.today() - dt.timedelta(days=2)
    dbs.flush()
    r = _post(staff, f"/campaigns/{c.id}/register", {}, f"/campaigns/{c.id}")
    dbs.refresh(c)
    assert c.status == "registered" and c.registrar == "bureau"

    monkeypatch.setitem(app.config, "JOBS_MODE", "sync")
    monkeypatch.setitem(app.config, "PRINT_DIR", str(tmp_path))
    r = _post(staff, f"/campaigns/{c.id}/certificates", {}, f"/campaigns/{c.id}")
    assert r.status_code == 303 and "/jobs/" in r.location
    job = staff.get(r.location + ".json").get_json()
    assert job["status"] == "done" and job["next"] == f"/campaigns/{c.id}"
    page = staff.get(f"/campaigns/{c.id}").get_data(as_text=True)
    assert f"/print/campaign-{c.id}-job-" in page  # the print package
    cert = certificates.valid_for(right.uid)
    assert cert is not None and cert.campaign_id == c.id
    n = dbs.query(Certificate).filter_by(campaign_id=c.id, status="valid").count()
    assert f'id="certificates-count">{n}<' in page

    # The farmer's own page: household, rights, parcels on a sketch map, certificate.
    mine = farmer.get("/me").get_data(as_text=True)
    assert hh.name in mine and right.contract_code in mine and 'class="my-parcels"' in mine
    assert hh.head.id_number not in mine and cert.number in mine
    assert farmer.get(f"/certificates/{cert.id}.pdf").mimetype == "application/pdf"
    # Another household's certificate (made by the fixture): not the farmer's to read.
    assert other_certificate.household_code != hh.cbfbm and other_certificate.status == "valid"
    assert staff.get(f"/certificates/{other_certificate.id}.pdf").status_code == 200
    assert farmer.get(f"/certificates/{other_certificate.id}.pdf").status_code == 403

    # Staff cancel it through the page; the public page says so.
    r = _post(staff, f"/certificates/{cert.id}", {"action": "cancel",
                                                  "ground": "error_corrected",
                                                  "reference": "更正登记 2026-7",
                                                  "reason": "登记错误，更正后注销"})
    dbs.refresh(cert)
    assert r.status_code == 303 and cert.status == "cancelled"
    assert "已注销" in staff.get(f"/verify/{cert.token}").get_data(as_text=True)
    reg = staff.get(f"/certificates?q={hh.cbfbm}").get_data(as_text=True)
    assert cert.number in reg and "已注销" in reg


def test_api_for_campaigns_objections_registration_and_certificates(
        app, dbs, farmer_household, monkeypatch, tmp_path):
    hh, right = farmer_household
    client = app.test_client()
    token = auth_ops.issue_api_token(None, user("bureau"))
    auth = {"Authorization": f"Bearer {token}"}
    r = client.post("/api/campaigns", json={"fbfbm": hh.cbfbm[:14], "reason": "API 确权"},
                    headers=auth)
    assert r.status_code == 201, r.get_json()
    cid = r.get_json()["id"]
    start = (dt.date.today() - dt.timedelta(days=2)).isoformat()
    assert client.post(f"/api/campaigns/{cid}/notice", json={"start": start, "days": 7},
                       headers=auth).get_json()["status"] == "notice"
    r = client.post(f"/api/campaigns/{cid}/objections", headers=auth, json={
        "subject": "holder", "text": "权利人有误", "lodged_by": "村民丙",
        "parcel_code": right.parcels[0].parcel_code})
    assert r.status_code == 201
    oid = r.get_json()["id"]
    r = client.post(f"/api/campaigns/{cid}/register", headers=auth)
    assert r.status_code == 409 and r.get_json()["code"] == "campaign.notice"
    r = client.post(f"/api/campaigns/{cid}/objections/{oid}/resolve", headers=auth,
                    json={"outcome": "upheld", "resolution": "属实"})
    assert r.status_code == 422 and r.get_json()["code"] == "campaign.objection.correction"
    r = client.post(f"/api/campaigns/{cid}/objections/{oid}/resolve", headers=auth,
                    json={"outcome": "dismissed", "resolution": "经核查无误"})
    assert r.get_json()["status"] == "dismissed"
    c = dbs.get(Campaign, cid)
    c.notice_start, c.notice_end = dt.date.today() - dt.timedelta(days=9), \
        dt.date.today() - dt.timedelta(days=2)
    dbs.flush()
    body = client.post(f"/api/campaigns/{cid}/register", headers=auth).get_json()
    assert body["status"] == "registered" and body["progress"]["objections"]["dismissed"] == 1

    r = client.post("/api/certificates", json={"right_uid": right.uid}, headers=auth)
    assert r.status_code == 201
    cert = r.get_json()
    assert cert["number"] == hh.cbfbm + "J" and cert["holder"] == hh.name
    r = client.post(f"/api/certificates/{cert['id']}/actions", headers=auth,
                    json={"action": "reissue", "reason": "遗失补发"})
    second = r.get_json()
    assert second["edition"] == 2 and second["replaces_id"] == cert["id"]
    listed = client.get(f"/api/certificates?q={hh.cbfbm}", headers=auth).get_json()
    assert [(x["edition"], x["status"]) for x in listed] == [(1, "superseded"), (2, "valid")]
    token_url = second["verify_url"].split("/verify/")[1]
    v = client.get(f"/api/certificates/verify/{token_url}").get_json()
    assert v["status"] == "valid" and v["holder"] != hh.name and v["holder"][0] == hh.name[0]
    # Writes need a token; a session cannot ride the API.
    assert client.post(f"/api/certificates/{second['id']}/actions",
                       json={"action": "cancel", "reason": "x"}).status_code == 401
    monkeypatch.setitem(app.config, "JOBS_MODE", "sync")
    monkeypatch.setitem(app.config, "PRINT_DIR", str(tmp_path))
    r = client.post(f"/api/campaigns/{cid}/certificates", headers=auth)
    assert r.status_code == 202
    job = client.get(r.get_json()["progress_url"], headers=auth).get_json()
    assert job["status"] == "done"
