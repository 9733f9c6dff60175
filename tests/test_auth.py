from sqlalchemy import select

from app.audit.models import AuditLog
from app.auth import operations as ops
from tests.conftest import PASSWORD, csrf_from, login, user


def test_login_needs_a_csrf_token(client):
    r = client.post("/login", data={"username": "bureau", "password": PASSWORD})
    assert r.status_code == 400


def test_wrong_password_is_refused_and_logged(client, dbs):
    r = login(client, "bureau", "not-the-password")
    assert r.status_code == 200 and "/login" in r.request.path
    assert client.get("/").status_code == 302
    failed = dbs.scalars(select(AuditLog).where(AuditLog.action == "auth.login.failed")).all()
    assert any(e.changes.get("username") == "bureau" for e in failed)


def test_passwords_use_a_modern_kdf(dbs):
    assert user("bureau").password_hash.startswith("scrypt:")


def test_login_and_logout(client, dbs):
    assert login(client, "bureau").status_code == 302
    page = client.get("/")
    assert page.status_code == 200
    r = client.post("/logout", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert r.status_code == 302
    assert client.get("/").status_code == 302


def test_login_attempts_are_rate_limited(app, dbs):
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    try:
        c = app.test_client()
        c.environ_base["REMOTE_ADDR"] = "127.0.0.77"
        codes = [login(c, "bureau", "wrong-password-x").status_code for _ in range(5)]
    finally:
        app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
    assert codes[:3] == [200, 200, 200] and codes[3] == 429


def test_session_cookie_settings(app):
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    from app.config import ProductionConfig

    assert ProductionConfig.SESSION_COOKIE_SECURE is True


def test_next_parameter_cannot_redirect_off_site(client, dbs):
    page = client.get("/login?next=//evil.example/x")
    r = client.post("/login?next=//evil.example/x", data={
        "username": "bureau", "password": PASSWORD,
        "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert r.headers["Location"] == "/"


def test_api_token_auth_and_bearer_only_writes(app, dbs, login_as):
    token = ops.issue_api_token(None, user("bureau"))
    c = app.test_client()
    r = c.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.get_json()["role"] == "bureau_staff"
    assert c.get("/api/me", headers={"Authorization": "Bearer sq_wrong"}).status_code == 401
    # A browser session may read the API but not write through it.
    s = login_as("bureau")
    assert s.get("/api/me").status_code == 200
    assert s.post("/api/collectives/1/members/1/end", json={}).status_code == 401


def test_staff_account_needs_a_known_jurisdiction(dbs):
    import pytest

    from app.errors import DomainError

    with pytest.raises(DomainError) as e:
        ops.create_user(None, "x1", "long-enough-pw", "bureau_staff", jurisdiction_code="999999")
    assert e.value.code == "user.jurisdiction"
    with pytest.raises(DomainError):
        ops.create_user(None, "x2", "short", "admin")


def test_admin_creates_a_farmer_account_linked_by_id_number(login_as, dbs):
    from app.people.models import HouseholdMember

    m = dbs.scalars(select(HouseholdMember).order_by(HouseholdMember.id.desc())).first()
    c = login_as("admin")
    page = c.get("/admin/users").get_data(as_text=True)
    r = c.post("/admin/users", data={
        "csrf_token": csrf_from(page), "username": "newfarmer", "display_name": "新农户",
        "password": "a-long-password", "role": "farmer", "jurisdiction_code": "",
        "person_id_number": m.person.id_number, "reason": "开户"}, follow_redirects=True)
    assert "newfarmer" in r.get_data(as_text=True)
    u = user("newfarmer")
    assert u.person_id == m.person_id and u.household_code == m.household.cbfbm
    from flask import current_app

    assert login(current_app.test_client(), "newfarmer", "a-long-password").status_code == 302


def test_admin_form_refuses_an_unknown_person_with_the_rule(login_as, dbs):
    c = login_as("admin")
    page = c.get("/admin/users").get_data(as_text=True)
    r = c.post("/admin/users", data={
        "csrf_token": csrf_from(page), "username": "ghost", "display_name": "x",
        "password": "a-long-password", "role": "farmer", "person_id_number": "11010519491231002X",
        "reason": "x"}, follow_redirects=True)
    assert "11010519491231002X" not in r.get_data(as_text=True)  # masked even in the error
    assert "110105**********2X" in r.get_data(as_text=True)
    assert user("ghost") is None
