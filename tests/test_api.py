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


def test_every_schema_error_is_problem_json_naming_rule_and_field(app, dbs):
    """Every operation of the OpenAPI document with a JSON body or a typed query parameter,
    sent a value of the wrong type (as admin with a bearer token, so access lets it through):
    whatever is refused for its schema answers 422 problem JSON with the rule
    `request.schema`, its legal source in both languages, and the field named under
    `errors` — never flask-smorest's own body."""
    import re

    from app.auth import operations as auth_ops
    from tests.conftest import user

    c = app.test_client()
    h = {"Authorization": f"Bearer {auth_ops.issue_api_token(None, user('admin'))}"}
    doc = c.get("/api/openapi.json").get_json()
    checked = 0
    for path, ops in doc["paths"].items():
        url = "/api" + re.sub(r"\{[^}]+\}", "1", path) if not path.startswith("/api") else \
            re.sub(r"\{[^}]+\}", "1", path)
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            sent = None
            body = (op.get("requestBody", {}).get("content", {})
                    .get("application/json", {}).get("schema"))
            if body is not None:
                sent = c.open(url, method=method.upper(), json=[["not", "an", "object"]],
                              headers=h)
                field = None
            else:
                typed = [p for p in op.get("parameters", []) if p.get("in") == "query"
                         and p.get("schema", {}).get("type") in ("integer", "boolean")]
                if not typed:
                    continue
                field = typed[0]["name"]
                sent = c.open(url, method=method.upper(), headers=h,
                              query_string={field: "not-a-number"})
            if sent.status_code != 422:
                continue  # refused earlier (404 for id 1, 405…) — not a schema answer
            p = sent.get_json()
            assert sent.mimetype == "application/problem+json", (method, url, p)
            if p.get("code") != "request.schema":
                continue  # a domain rule of the operation (problem JSON with its own code)
            assert p["status"] == 422 and p["legal_source_zh"] and p["legal_source_en"]
            assert p["message_zh"] != p["message_en"]
            assert isinstance(p["errors"], dict) and p["errors"], (method, url, p)
            if field is not None:
                assert field in p["errors"].get("query", {}), (method, url, p)
            checked += 1
    assert checked >= 10, checked  # the walk reached the API's operations
