import datetime as dt

from sqlalchemy import select

from app.auth import operations as auth_ops
from app.collectives.models import Membership
from tests.conftest import user


def test_openapi_document_and_docs_page(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["info"]["title"].startswith("Sanquan")
    assert "/api/persons" in spec["paths"] and "/api/collectives/{collective_id}/members" in \
        spec["paths"]
    docs = client.get("/api/docs").get_data(as_text=True)
    assert "/vendor/swagger-ui-dist/" in docs
    assert client.get("/vendor/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200
    assert client.get("/vendor/left-pad/index.js").status_code == 404


def test_persons_are_masked_in_the_api(login_as, dbs):
    c = login_as("bureau")
    data = c.get("/api/persons?per_page=5").get_json()
    assert data["total"] > 0
    for p in data["items"]:
        assert "*" in p["id_number"] and len(p["id_number"]) == 18
        assert "****" in p["phone"]


def _end_via_api(app, dbs, ground, reason):
    """End the first active membership through the API with a bearer token."""
    token = auth_ops.issue_api_token(None, user("bureau"))
    m = dbs.scalars(select(Membership).where(Membership.status == "active")).first()
    r = app.test_client().post(
        f"/api/collectives/{m.collective_id}/members/{m.id}/end",
        headers={"Authorization": f"Bearer {token}"},
        json={"ground": ground, "ended_on": str(dt.date.today()), "reason": reason})
    return m, r


def test_domain_error_is_problem_json_with_rule_and_source(app, dbs):
    m, r = _end_via_api(app, dbs, "settled_in_town", "x")
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["code"] == "membership.end.forbidden_ground"
    assert "乡村振兴促进法" in body["legal_source_zh"] and "art 55" in body["legal_source_en"]
    dbs.refresh(m)
    assert m.status == "active"


def test_api_ends_a_membership_on_a_lawful_ground(app, dbs):
    _, r = _end_via_api(app, dbs, "death", "死亡证明")
    assert r.status_code == 200 and r.get_json()["end_ground"] == "death"
