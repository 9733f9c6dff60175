import os
import subprocess
import sys

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.audit import operations as audit
from app.audit.models import AuditLog


def test_entries_are_chained_in_order(dbs):
    a = audit.record(None, "test.one", "thing", 1, {"x": 1}, "why")
    b = audit.record(None, "test.two", "thing", 2, {"x": 2}, "why")
    dbs.refresh(a)
    dbs.refresh(b)
    assert b.seq == a.seq + 1 and b.prev_hash == a.hash and len(a.hash) == 64
    n, breaches = audit.verify()
    assert n >= 2 and breaches == []


def test_update_and_delete_are_refused(dbs):
    e = audit.record(None, "test.one", "thing", 1)
    with pytest.raises(DBAPIError, match="permission denied"):  # the app's role: INSERT only
        with dbs.begin_nested():
            dbs.execute(text("UPDATE audit_log SET reason='x' WHERE id=:id"), {"id": e.id})
    with pytest.raises(DBAPIError, match="permission denied"):
        with dbs.begin_nested():
            dbs.execute(text("DELETE FROM audit_log WHERE id=:id"), {"id": e.id})


def test_even_the_owner_cannot_update_or_delete(owner_dbs):
    e = audit.record(None, "test.one", "thing", 1)
    with pytest.raises(DBAPIError, match="append-only"):
        with owner_dbs.begin_nested():
            owner_dbs.execute(text("UPDATE audit_log SET reason='x' WHERE id=:id"), {"id": e.id})
    with pytest.raises(DBAPIError, match="append-only"):
        with owner_dbs.begin_nested():
            owner_dbs.execute(text("DELETE FROM audit_log WHERE id=:id"), {"id": e.id})


def _tamper(dbs, entry_id, sql):
    # Someone with the owner's rights (never the app's) turns the guard off and edits a row.
    dbs.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
    dbs.execute(text(sql), {"id": entry_id})
    dbs.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def test_verify_reports_an_edited_row(owner_dbs):
    dbs = owner_dbs
    e = audit.record(None, "test.victim", "thing", 1, {"amount": 100}, "original")
    audit.record(None, "test.after", "thing", 2)
    _tamper(dbs, e.id, "UPDATE audit_log SET changes='{\"amount\": 1}' WHERE id=:id")
    n, breaches = audit.verify()
    assert [b.id for b in breaches] == [e.id]
    assert "content" in breaches[0].problem


def test_verify_reports_a_deleted_row(owner_dbs):
    dbs = owner_dbs
    e = audit.record(None, "test.victim", "thing", 1)
    after = audit.record(None, "test.after", "thing", 2)
    _tamper(dbs, e.id, "DELETE FROM audit_log WHERE id=:id")
    _, breaches = audit.verify()
    assert after.id in {b.id for b in breaches}


def test_flask_audit_verify_command_reports_tampering(app, owner_engine):
    """Runs the real command in a subprocess against committed data; cleans up after."""
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "FLASK_APP": "wsgi.py"}
    cmd = [sys.executable, "-m", "flask", "audit", "verify"]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    with owner_engine.begin() as c:  # the owner's rights: the app's role cannot do this
        victim = c.execute(text("SELECT id, seq, actor_name FROM audit_log ORDER BY seq "
                                "LIMIT 1")).one()
        c.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        c.execute(text("UPDATE audit_log SET actor_name='mallory' WHERE id=:id"),
                  {"id": victim.id})
    try:
        bad = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert bad.returncode == 1
        assert f"seq={victim.seq}" in bad.stderr and "TAMPERED" in bad.stderr
    finally:
        with owner_engine.begin() as c:
            c.execute(text("UPDATE audit_log SET actor_name=:n WHERE id=:id"),
                      {"n": victim.actor_name, "id": victim.id})
            c.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def test_auditor_pages(login_as, dbs):
    audit.record(None, "test.visible", "thing", 42, {"k": "v"}, "shown")
    c = login_as("auditor")
    page = c.get("/audit?action=test.visible").get_data(as_text=True)
    assert "test.visible" in page and "thing:42" in page
    assert "id=\"verify-result\"" in c.get("/audit/verify").get_data(as_text=True)


def test_viewing_an_unmasked_id_is_logged(login_as, dbs):
    from app.people.models import Person
    from tests.conftest import csrf_from

    c = login_as("bureau")
    person = dbs.scalars(select(Person).where(Person.hukou_division_code.like("140404%"))).first()
    page = c.get(f"/people/{person.id}").get_data(as_text=True)
    assert person.id_number not in page and person.id_masked in page
    r = c.post(f"/people/{person.id}/reveal", data={"csrf_token": csrf_from(page),
                                                   "field": "id_number", "purpose": "核对"})
    assert person.id_number in r.get_data(as_text=True)
    e = dbs.scalars(select(AuditLog).where(AuditLog.action == "person.reveal",
                                           AuditLog.object_id == str(person.id))).one()
    assert e.actor_name == "bureau" and e.reason == "核对"
