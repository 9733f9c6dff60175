"""Settlement pages and API: the guard refuses and records every way of tying settlement to a
right (form field, API property, document type, decision condition); the rights-kept notice; the
compliance view; the withdrawal pages."""
import base64
import datetime as dt
import io

from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.auth import operations as auth_ops
from app.settlement.models import SettlementApplication
from app.withdrawal import operations as withdrawals
from app.withdrawal.models import Withdrawal
from tests.conftest import csrf_from, user
from tests.test_certificates import pdftotext
from tests.test_settlement import certified, family, town  # noqa: F401 (fixture)


def _count(dbs, action):
    return dbs.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == action))


def _form(head, t, members, **over):
    data = {"applicant_id_number": head.id_number, "town": str(t.id), "basis": "owned_house",
            "residence_address": "潞州区英雄中路 8 号", "property_certificate_no": "晋(2025)第1号",
            "living_there": "y", "destination": "house_address",
            "destination_address": "潞州区英雄中路 8 号"}
    for i, m in enumerate(members):
        data[f"members-{i}-id_number"] = m.id_number
        data[f"members-{i}-relation"] = "spouse" if i == 0 else "child"
        data[f"members-{i}-unmarried"] = "y"
    data.update(over)
    return data


def test_the_form_refuses_a_rights_field_and_records_it(dbs, login_as, certified):  # noqa: F811
    head, moving = family(certified)
    spouse = next(m for m in moving if m["relation"] == "spouse")
    from app.people.models import Person

    members = [dbs.get(Person, spouse["person_id"])]
    from app.settlement import compliance

    base = compliance.report(None, None)  # other tests (the browser's) commit settlements
    n_apps = dbs.scalar(select(func.count()).select_from(SettlementApplication))
    c = login_as("hukou")
    t = town(dbs)
    token = csrf_from(c.get("/settlement/new").get_data(as_text=True))
    r = c.post("/settlement/new", data={**_form(head, t, members), "csrf_token": token,
                                        "members-0-give_up_contract_right": "1"},
               headers={"Referer": "/settlement/new"}, follow_redirects=True)
    body = r.get_data(as_text=True)
    assert "不得以退出土地承包经营权" in body and "第二十七条" in body
    assert _count(dbs, "settlement.refused.rights_field") == 1
    assert dbs.scalar(select(func.count()).select_from(SettlementApplication)) == n_apps
    r = c.post("/settlement/new", data={**_form(head, t, members), "csrf_token": token})
    assert r.status_code == 303, r.get_data(as_text=True)[:3000]
    a = dbs.scalar(select(SettlementApplication).where(SettlementApplication.applicant_id ==
                                                       head.id))
    assert {m.person_id for m in a.members} == {head.id, members[0].id}

    # A document typed as a withdrawal (not in the list, but posted anyway).
    page = f"/settlement/{a.id}"
    token = csrf_from(c.get(page).get_data(as_text=True))
    r = c.post(f"{page}/documents", data={"csrf_token": token, "doc_type": "rights_withdrawal",
                                          "file": (io.BytesIO(b"%PDF"), "退出承诺书.pdf")},
               content_type="multipart/form-data", headers={"Referer": page})
    assert r.status_code == 303
    assert _count(dbs, "settlement.refused.rights_document") == 1
    r = c.post(f"{page}/documents", data={"csrf_token": token, "doc_type": "id_card",
                                          "file": (io.BytesIO(b"%PDF id"), "身份证.pdf")},
               content_type="multipart/form-data")
    assert r.status_code == 303 and len(a.documents) == 1
    # A condition in the decision, and a rights field smuggled into the decision form.
    r = c.post(f"{page}/decision", data={"csrf_token": token, "outcome": "approve",
                                         "conditions": ["give_up_homestead"]},
               headers={"Referer": page})
    assert r.status_code == 303 and _count(dbs, "settlement.refused.rights_condition") == 1
    r = c.post(f"{page}/decision", data={"csrf_token": token, "outcome": "approve",
                                         "homestead_waiver": "signed"}, headers={"Referer": page})
    assert _count(dbs, "settlement.refused.rights_field") == 2
    dbs.refresh(a)
    assert a.status == "submitted"
    r = c.post(f"{page}/decision", data={"csrf_token": token, "outcome": "approve",
                                         "conditions": ["present_originals"], "note": "准予落户"})
    dbs.refresh(a)
    assert a.status == "approved" and a.conditions == ["present_originals"]

    # The rights-kept notice, as a page and as a PDF, lists what they keep.
    notice = c.get(f"{page}/notice").get_data(as_text=True)
    assert "权益保留告知书" in notice and certified.cbfbm + "J" in notice
    text = pdftotext(c.get(f"{page}/notice.pdf").data)
    assert certified.cbfbm + "J" in text and "宅基地使用权" in text and head.name in text
    # The farmer sees it too.
    farmer = login_as("farmer")
    assert f"/settlement/{a.id}/notice" in farmer.get("/me/settlement").get_data(as_text=True)
    assert farmer.get(f"{page}/notice").status_code == 200

    # The compliance view counts them and lists the refusals; the CSV carries the same.
    auditor = login_as("auditor")
    view = auditor.get("/compliance").get_data(as_text=True)
    assert "settlement.refused.rights_field" in view and "settlement.refused.rights_condition" \
        in view
    csv_text = auditor.get("/compliance.csv").get_data(as_text=True)
    assert "settled_in_town" in csv_text and "refused_attempts" in csv_text
    report = auditor.get("/api/settlement/compliance").get_json()
    assert report["settled"]["persons"] == base["settled"].persons + 2
    assert report["settled"]["contracts"] == base["settled"].contracts + 1
    assert report["settled"]["memberships"] > base["settled"].memberships
    assert len(report["refusals"]) == len(base["refusals"]) + 4


def test_the_api_refuses_a_rights_property_and_a_rights_condition(app, dbs, certified):  # noqa: F811
    head, moving = family(certified)
    t = town(dbs)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {auth_ops.issue_api_token(None, user('hukou'))}"}
    body = {"applicant_id_number": head.id_number, "town_id": t.id, "basis": "owned_house",
            "residence_address": "潞州区英雄中路 8 号", "property_certificate_no": "晋(2025)第2号",
            "living_there": True, "destination": "house_address",
            "destination_address": "潞州区英雄中路 8 号",
            "members": [{"id_number": dbs.get(__import__("app.people.models", fromlist=["Person"])
                                             .Person, m["person_id"]).id_number,
                         "relation": m["relation"], "unmarried": True} for m in moving]}
    r = client.post("/api/settlement", json={**body, "surrender_homestead": True}, headers=auth)
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    problem = r.get_json()
    assert problem["code"] == "settlement.rights_condition" and "art 27" in problem[
        "legal_source_en"]
    waiver = {**body, "members": [{**body["members"][0], "放弃宅基地": "同意"}]}
    r = client.post("/api/settlement", json=waiver, headers=auth)
    assert r.status_code == 422 and r.get_json()["code"] == "settlement.rights_condition"
    r = client.post("/api/settlement", json=body, headers=auth)
    assert r.status_code == 201, r.get_json()
    aid = r.get_json()["id"]
    doc = {"doc_type": "contract_land_surrender", "filename": "x.pdf",
           "content_base64": base64.b64encode(b"%PDF").decode()}
    r = client.post(f"/api/settlement/{aid}/documents", json=doc, headers=auth)
    assert r.status_code == 422 and r.get_json()["code"] == "settlement.rights_condition"
    r = client.post(f"/api/settlement/{aid}/decision", headers=auth,
                    json={"outcome": "approve", "conditions": ["退出宅基地"]})
    assert r.status_code == 422 and r.get_json()["code"] == "settlement.rights_condition"
    r = client.post(f"/api/settlement/{aid}/decision", headers=auth,
                    json={"outcome": "approve", "withdraw_contract_right": "after approval"})
    assert r.status_code == 422 and r.get_json()["code"] == "settlement.rights_condition"
    assert _count(dbs, "settlement.refused.rights_field") == 3
    assert _count(dbs, "settlement.refused.rights_document") == 1
    assert _count(dbs, "settlement.refused.rights_condition") == 1
    r = client.post(f"/api/settlement/{aid}/decision", headers=auth, json={"outcome": "approve"})
    assert r.get_json()["status"] == "approved"
    # A withdrawal through the API: never with a settlement case, never by the hukou officer.
    farmer = {"Authorization": f"Bearer {auth_ops.issue_api_token(None, user('farmer'))}"}
    withdrawals.enable_pilot("bureau", certified.cbfbm[:6])
    right = next(x for x in __import__("app.rights.operations", fromlist=["x"])
                 .current_rights(certified.cbfbm) if x.kind == "homestead")
    r = client.post("/api/withdrawals", headers=farmer,
                    json={"right_uid": right.uid, "settlement_id": aid})
    assert r.status_code == 422 and r.get_json()["code"] == "withdrawal.from_settlement"
    assert client.post("/api/withdrawals", headers=auth,
                       json={"right_uid": right.uid}).status_code == 403


def test_withdrawal_pages(dbs, login_as, certified):  # noqa: F811
    withdrawals.enable_pilot("bureau", certified.cbfbm[:6])
    farmer = login_as("farmer")
    page = farmer.get("/me").get_data(as_text=True)
    assert "withdraw-form" in page
    from app.rights.operations import current_rights

    right = next(x for x in current_rights(certified.cbfbm) if x.kind == "homestead")
    r = farmer.post("/me/withdrawals", data={"csrf_token": csrf_from(page),
                                             "right_uid": right.uid})
    assert r.status_code == 303
    w = dbs.scalar(select(Withdrawal))
    detail = farmer.get(f"/withdrawals/{w.id}").get_data(as_text=True)
    assert "revoke-form" in detail and "steps" not in detail
    staff = login_as("bureau")
    sp = staff.get(f"/withdrawals/{w.id}").get_data(as_text=True)
    r = staff.post(f"/withdrawals/{w.id}/step", data={"csrf_token": csrf_from(sp),
                                                      "action": "compensation",
                                                      "amount": "30000"})
    assert r.status_code == 303
    dbs.refresh(w)
    assert w.compensation == 30000
    r = farmer.post(f"/withdrawals/{w.id}/revoke", data={"csrf_token": csrf_from(detail)})
    dbs.refresh(w)
    assert r.status_code == 303 and w.status == "revoked" and w.revoked_by == "farmer"
    hukou = login_as("hukou")  # with a valid CSRF token: refused for the role, not the token
    token = csrf_from(hukou.get("/").get_data(as_text=True))
    assert hukou.post("/me/withdrawals", data={"right_uid": right.uid, "csrf_token": token}) \
        .status_code == 403
    assert dt.date.today() <= w.cooling_until
