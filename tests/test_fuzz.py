"""Issue 12 point 6: no server error on any input.

Schemathesis generates requests for every operation of /api/openapi.json (valid and invalid
data, fixed seed, bounded count) and sends them to the WSGI app with an administrator's bearer
token (so every operation is reached, not just refused); a small seeded fuzz does the same for
the HTML forms.  Everything runs inside the test's rolled-back transaction."""
from __future__ import annotations

import random
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from app.auth import operations as auth_ops
from app.auth.models import User
from tests.conftest import PASSWORD, csrf_from, user

STATUSES: dict[int, int] = {}
EXAMPLES = 8  # per operation and mode: the whole API (~60 operations) in about a minute


@pytest.fixture()
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


def _run(op, mode, headers, failures, counter):
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=op.as_strategy(generation_mode=mode))
    def check(case):
        resp = case.call(headers=headers)
        counter[0] += 1
        STATUSES[resp.status_code] = STATUSES.get(resp.status_code, 0) + 1
        if resp.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} {case.query} "
                            f"{str(case.body)[:200]} -> {resp.status_code}")

    check()


def _jobs_queued_only(monkeypatch):
    """The delivery upload (POST /api/imports) would run its import job in-process, outside
    the test's savepoint handling: here a job is recorded as queued and not run, so the
    operation itself (parsing, the upload's checks, saving, the 202 with the job) is fuzzed
    like every other; the import tests drive the job with real faults."""
    from app.extensions import db
    from app.jobs import operations as jobs
    from app.jobs.models import Job

    def queued(kind, params, actor, rerun_of=None):
        job = Job(kind=kind, params=params, created_by=getattr(actor, "id", None),
                  message="queued", rerun_of=rerun_of)
        db.session.add(job)
        db.session.flush()
        return job

    monkeypatch.setattr(jobs, "submit", queued)


def test_schemathesis_finds_no_server_error(api_schema, dbs, monkeypatch):
    token = auth_ops.issue_api_token(None, user("admin"))
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    counter = [0]
    _jobs_queued_only(monkeypatch)
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert any(op.method.upper() == "POST" and op.path == "/api/imports" for op in operations)
    assert len(operations) >= 20  # the whole API, not a corner of it
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run(op, mode, headers, failures, counter)
            except Exception as e:  # noqa: BLE001 — e.g. an operation with no negative data
                if "Unsatisfiable" not in type(e).__name__ and "unsatisfiable" not in str(e):
                    raise
    print(f"schemathesis: {counter[0]} requests over {len(operations)} operations", STATUSES)
    assert counter[0] >= len(operations) * 5
    assert failures == [], "\n".join(failures[:20])


def test_schemathesis_reaches_the_delivery_upload(api_schema, dbs, monkeypatch):
    """POST /api/imports on its own (it was left out of the sweep above): no server error, and
    generated uploads are taken as queued jobs."""
    token = auth_ops.issue_api_token(None, user("admin"))
    failures: list[str] = []
    counter = [0]
    _jobs_queued_only(monkeypatch)
    before = dict(STATUSES)
    op = api_schema["/api/imports"]["POST"]
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        _run(op, mode, {"Authorization": f"Bearer {token}"}, failures, counter)
    assert counter[0] >= 5 and failures == [], "\n".join(failures[:20])
    assert STATUSES.get(202, 0) > before.get(202, 0)  # some uploads were taken


# ---------------------------------------------------------------------------------------------
# HTML forms

NASTY = ["", " ", "\x00", "a\x00b", "\x1b[31m", "𠀀" * 300, "x" * 5000, "'; DROP TABLE x;--",
         "<script>alert(1)</script>", "99999999999999999999", "-1", "0", "5.7e19",
         "9999-12-31", "0001-01-01", "2026-02-30", "%", "../../etc/passwd", "１２３", "NaN"]


def _forms(html: str):
    for m in re.finditer(r"<form([^>]*)>(.*?)</form>", html, re.S):
        attrs, body = m.group(1), m.group(2)
        if 'method="post"' not in attrs.lower():
            continue
        action = re.search(r'action="([^"]*)"', attrs)
        names = re.findall(r'name="([^"]+)"', body)
        yield (action.group(1) if action else None), [n for n in names if n != "csrf_token"]


PAGES = ["/people", "/collectives", "/campaigns", "/certificates", "/settlement",
         "/settlement/new", "/withdrawals", "/admin/users", "/account/password", "/imports"]


def test_html_forms_give_no_server_error(app, dbs, login_as):
    rng = random.Random(12)
    admin = login_as("admin")
    failures, sent, forms = [], 0, 0
    pages = list(PAGES)
    listing = admin.get("/collectives").get_data(as_text=True)
    pages += re.findall(r'href="(/collectives/\d+)"', listing)[:1]
    for page in pages:
        r = admin.get(page)
        if r.status_code != 200:
            continue
        html = r.get_data(as_text=True)
        for action, names in _forms(html):
            target = action or page
            if target.endswith("/logout") or "/imports" in target:
                continue  # signing out ends the run; uploads belong to the import tests
            forms += 1
            for _ in range(6):
                data = {n: rng.choice(NASTY) for n in names}
                fresh = admin.get(page)
                if fresh.status_code == 302:  # a fuzzed reset changed the admin's password,
                    # which signs out its sessions: put the password back and sign in again
                    for u in dbs.scalars(select(User).where(User.username == "admin")):
                        u.password_hash = generate_password_hash(PASSWORD)
                    dbs.flush()
                    admin = login_as("admin")
                    fresh = admin.get(page)
                data["csrf_token"] = csrf_from(fresh.get_data(as_text=True))
                resp = admin.post(target, data=data)
                sent += 1
                if resp.status_code >= 500:
                    failures.append(f"POST {target} {data} -> {resp.status_code}")
        for q in ("q", "page", "status"):
            for v in rng.sample(NASTY, 4):
                resp = admin.get(page, query_string={q: v})
                sent += 1
                if resp.status_code >= 500:
                    failures.append(f"GET {page}?{q}={v!r} -> {resp.status_code}")
    c = app.test_client()
    for v in NASTY:
        page = c.get("/login").get_data(as_text=True)
        resp = c.post("/login", data={"username": v, "password": v,
                                      "csrf_token": csrf_from(page)})
        sent += 1
        if resp.status_code >= 500:
            failures.append(f"POST /login {v!r} -> {resp.status_code}")
    assert sent >= 100 and forms >= 8
    assert failures == [], "\n".join(failures[:20])
