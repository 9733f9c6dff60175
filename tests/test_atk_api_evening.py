"""Attacks of the evening (atkapi) on the staff search's holder-name cap (0041_search2), the
API's error bodies and concealed export ids, and the tile path without pre-ping.

Every expectation is computed from the data the test made or read (a slow Python oracle over
the register's rows), never copied from the sample; each test fails if the hole is there."""
from __future__ import annotations

import random
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select, text

from app.access import division_prefix
from app.auth.models import User
from app.collectives.models import Collective
from app.parcels import queries
from app.people import operations as people

# ------------------------------------------------------------------------ the Python oracle


def _register(dbs):
    """(current parcels as (id, code, kind, household, holder, collective code), {cbfbm: name})"""
    parcels = [tuple(r) for r in dbs.execute(text(
        "SELECT p.id, p.code, p.kind, p.household_code, h.name, c.fbfbm FROM parcel p "
        "JOIN collective c ON c.id = p.collective_id "
        "LEFT JOIN household h ON h.cbfbm = p.household_code WHERE p.end_lifespan IS NULL"))]
    names = dict(dbs.execute(text("SELECT cbfbm, name FROM household")).all())
    return parcels, names


def _c(s):
    return s.encode("utf-8")  # byte order, as COLLATE "C"


def oracle(parcels, names, q, prefix, n=20, cap=None):
    """(hits, cut) within the jurisdiction `prefix` (None: everywhere), by the rule of
    queries.search_page: only households holding a current parcel *in the jurisdiction* are
    candidates, and the cut counts only them."""
    cap = queries.NAME_CAP if cap is None else cap
    mine = [p for p in parcels if prefix is None or p[5].startswith(prefix)]
    holders = {p[3] for p in mine if p[3]}
    exact = sorted((h for h in holders if names.get(h) == q), key=_c)
    match = sorted((h for h in holders if names.get(h) is not None and (
        q in names[h] if len(q) >= 3 else names[h].startswith(q))), key=_c)
    cut = len(exact) < n and len(match) > cap
    picked = set(exact[:n] if len(exact) >= n or cut else match[:n])
    hits = sorted((p for p in mine if p[1].startswith(q) or (p[3] or "").startswith(q)
                   or p[3] in picked), key=lambda p: _c(p[1]))[:n]
    return [p[:5] for p in hits], cut


def _fast(q, prefix, n=20):
    hits, cut = queries.search_page(q, None if prefix is None else prefix + "%", n)
    return [(h["id"], h["code"], h["kind"], h["household"], h["holder"]) for h in hits], cut


def _villages(dbs):
    return dbs.scalars(select(Collective).order_by(Collective.fbfbm)).all()


def _unused_name(names, rnd, length):
    pool = "".join(chr(c) for c in range(0x4E00 + 7000, 0x4E00 + 7400))
    while True:
        s = "".join(rnd.sample(pool, length))
        if not any(s in (nm or "") for nm in names.values()):
            return s


# ------------------------------------------------------------ 1. the search's cap and cut

@pytest.mark.parametrize("length", [2, 3])
def test_other_villages_holders_neither_cut_nor_hide_an_officers_own(login_as, dbs, length):
    """Many households of *another* village (and households holding nothing) named like one
    of the officer's own holders: the officer still finds their holder's parcels and is told
    nothing (no X-Search-Cut) — the cut is about their own jurisdiction, or it is a side
    channel telling them another village or county holds many of that name."""
    officer = dbs.scalar(select(User).where(User.username == "officer"))
    parcels, names = _register(dbs)
    mine = division_prefix(officer.jurisdiction_code)
    cols = _villages(dbs)
    other = next(c for c in cols if not c.fbfbm.startswith(mine))
    rnd = random.Random(length)
    token = _unused_name(names, rnd, length)
    own = next(p for p in parcels if p[5].startswith(mine) and p[3])
    dbs.execute(text("UPDATE household SET name = :n WHERE cbfbm = :c"),
                {"n": token + "甲", "c": own[3]})
    for i in range(queries.NAME_CAP + 1):
        people.register_household("test", other, f"{token}{i}", reason="atk: namesakes")
    dbs.flush()
    parcels, names = _register(dbs)
    want, want_cut = oracle(parcels, names, token, mine)
    assert want and not want_cut and own[1] in [w[1] for w in want]  # by construction
    assert _fast(token, mine) == (want, want_cut)
    r = login_as("officer").get("/parcels/search?q=" + quote(token))
    assert r.status_code == 200 and "X-Search-Cut" not in r.headers
    assert [h["id"] for h in r.get_json()] == [w[0] for w in want]
    # the county's bureau: the namesakes hold no parcel, so no cut either
    county = mine[:6]
    assert _fast(token, county) == oracle(parcels, names, token, county)
    assert not _fast(token, county)[1]


def test_the_cut_answers_the_same_whatever_other_counties_hold(dbs):
    """Same request, same jurisdiction: whether another village holds 0 or NAME_CAP + 1
    namesakes (holding parcels there), the officer's answer (hits and cut) is identical."""
    officer = dbs.scalar(select(User).where(User.username == "officer"))
    mine = division_prefix(officer.jurisdiction_code)
    parcels, names = _register(dbs)
    theirs = next(p for p in parcels if not p[5].startswith(mine) and p[3])
    other = dbs.scalar(select(Collective).where(Collective.fbfbm == theirs[5]))
    token = _unused_name(names, random.Random(5), 3)
    before = _fast(token, mine)
    for i in range(queries.NAME_CAP + 1):
        people.register_household("test", other, f"乙{token}{i}", reason="atk: namesakes")
    dbs.execute(text("UPDATE household SET name = :n WHERE cbfbm = :c"),
                {"n": token, "c": theirs[3]})
    dbs.flush()
    assert _fast(token, mine) == before
    parcels, names = _register(dbs)
    assert _fast(token[:2], mine) == oracle(parcels, names, token[:2], mine)


EDGE = ["%", "_", "\\", "%%", "_%", "\\%", "'", "''", "\u3000", "\uff05", "\uff3f", "王伟",
        "Ａ１", "a\u0301", "ℌ", "\U0001F600", "\u200b", "\ufeff"]


def test_search_equals_the_python_oracle_for_every_jurisdiction(dbs):
    parcels, names = _register(dbs)
    cols = _villages(dbs)
    prefixes = [None, cols[0].fbfbm[:6], division_prefix(cols[0].village_code),
                division_prefix(cols[-1].village_code), cols[0].fbfbm]
    sample = [p for p in parcels if p[3]]
    seen = {"hit": 0}

    def bend(p, i, j, edge, how):
        src = [p[1], p[3], p[4] or p[1]][how % 3]
        base = src[i:j]
        return [base, base + edge, edge + base, edge][how // 3]

    @settings(max_examples=120, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(q=st.one_of(st.builds(bend, st.sampled_from(sample), st.integers(0, 3),
                                 st.integers(1, 20), st.sampled_from(EDGE),
                                 st.integers(0, 11)),
                       st.text(st.characters(blacklist_categories=("Cs",),
                                             blacklist_characters="\x00"), min_size=1,
                               max_size=12)),
           prefix=st.sampled_from(prefixes), n=st.sampled_from([1, 20]),
           cap=st.sampled_from([None, 2]))
    def check(q, prefix, n, cap):
        want = oracle(parcels, names, q, prefix, n, cap)
        old = queries.NAME_CAP
        if cap is not None:
            queries.NAME_CAP = cap
        try:
            got = _fast(q, prefix, n)
        finally:
            queries.NAME_CAP = old
        assert got == want, (q, prefix, n, cap)
        seen["hit"] += bool(want[0])

    check()
    assert seen["hit"] > 10


def test_hostile_search_strings_for_each_role(app, login_as, dbs):
    """Metacharacters, full-width, whitespace, very long, control bytes: never a 500; staff get
    what the oracle gives within their jurisdiction; a farmer and anonymous get nothing."""
    parcels, names = _register(dbs)
    name = next(p[4] for p in parcels if p[4])
    code = parcels[0][1]
    qs = ["", " ", "\u3000\u3000", "%", "%%", "_", "__", "\\", "\\\\", "%_\\", code[:4] + "%",
          code[:4] + "_", name[:1], name[:2], name, "Ｈ" + name, name * 400, code * 200,
          "王" * 10_000]
    users = {"officer": None, "officer2": None, "bureau": None}
    for u in users:
        users[u] = division_prefix(dbs.scalar(select(User.jurisdiction_code)
                                              .where(User.username == u)))
    for u, prefix in users.items():
        c = login_as(u)
        for q in qs:
            r = c.get("/parcels/search?q=" + quote(q))
            assert r.status_code == 200, (u, q[:20], r.status_code)
            s = q.strip()
            want, cut = oracle(parcels, names, s, prefix) if len(s) >= 2 else ([], False)
            assert [h["id"] for h in r.get_json()] == [w[0] for w in want], (u, q[:20])
            assert ("X-Search-Cut" in r.headers) == cut
        for raw in ("%00", "ab%00", "%FF", "%ED%A0%80"):
            assert c.get("/parcels/search?q=" + raw).status_code in (200, 400)
    farmer = dbs.scalar(select(User.username).where(User.role == "farmer"))
    if farmer:
        r = login_as(farmer).get("/parcels/search?q=" + quote(name))
        assert r.status_code in (302, 403, 404) and name not in r.get_data(as_text=True)
    r = app.test_client().get("/parcels/search?q=" + quote(name))
    assert r.status_code in (302, 401) and name not in r.get_data(as_text=True)


def test_search_page_refuses_nothing_with_a_500_for_nul_or_lone_surrogates(dbs):
    """Called directly (the CLI, another feature): a NUL or a lone surrogate is a string no
    parcel or name holds — an empty answer, not a database error."""
    for q in ("\x00", "ab\x00cd", "\ud800", "a\udfffb"):
        assert queries.search_page(q, None) == ([], False)


# ------------------------------------------------------------------- the API's q search

def _api_oracle(parcels, names, q, prefix):
    return sorted((p for p in parcels if (prefix is None or p[5].startswith(prefix)) and (
        p[1].startswith(q) or (p[3] or "").startswith(q) or q in (p[4] or ""))),
        key=lambda p: (p[1], p[0]))


def test_api_search_is_literal_and_within_the_jurisdiction(app, login_as, dbs):
    from tests.test_exports import _bearer

    parcels, names = _register(dbs)
    name = next(p[4] for p in parcels if p[4])
    code = parcels[0][1]
    qs = [name, name[:1], name[-2:], code[:5], code[:5] + "%", "%", "_", "\\", "%_",
          code[:3] + "_" + code[4:6], "\u3000"]
    for u in ("officer", "officer2", "bureau"):
        prefix = division_prefix(dbs.scalar(select(User.jurisdiction_code)
                                            .where(User.username == u)))
        h = _bearer(u)
        for q in qs:
            r = app.test_client().get("/api/parcels?per_page=100&q=" + quote(q), headers=h)
            assert r.status_code == 200, (u, q, r.get_data(as_text=True)[:200])
            body = r.get_json()
            want = _api_oracle(parcels, names, q.strip(), prefix)
            assert body["total"] == len(want), (u, q)
            assert [i["id"] for i in body["items"]] == [w[0] for w in want[:100]], (u, q)
    r = app.test_client().get("/api/parcels?q=" + "王" * 51, headers=_bearer("bureau"))
    assert r.status_code == 422 and r.get_json()["code"] == "request.schema"


# ------------------------------------------------------ 2. API error bodies and export ids

def _problem(r, *statuses):
    assert r.status_code in statuses, (r.status_code, r.get_data(as_text=True)[:300])
    assert r.mimetype == "application/problem+json", (r.status_code, r.mimetype,
                                                      r.get_data(as_text=True)[:200])
    body = r.get_json()
    assert body["status"] == r.status_code and body.get("title")


def test_every_api_error_is_problem_json(app, dbs, monkeypatch):
    from tests.test_exports import _bearer

    c, h = app.test_client(), _bearer("bureau")
    _problem(c.get("/api/parcels"), 401)
    _problem(c.get("/api/parcels", headers={"Authorization": "Bearer nope"}), 401)
    _problem(c.delete("/api/parcels", headers=h), 405)
    _problem(c.put("/api/exports/1", headers=h), 405)
    _problem(c.get("/api/no-such-thing", headers=h), 404)
    _problem(c.get("/api/parcels?page=x", headers=h), 400, 422)
    _problem(c.get("/api/parcels?kind=x", headers=h), 422)
    _problem(c.post("/api/exports", data="scope=1404", headers=h,
                    content_type="text/plain"), 400, 415, 422)
    _problem(c.post("/api/exports", data="{", headers=h, content_type="application/json"),
             400, 422)
    _problem(c.post("/api/exports", json=[1, 2], headers=h), 400, 422)
    _problem(c.post("/api/exports", json={"scope": "1" * 10_000}, headers=h), 422)
    big = app.config.get("MAX_CONTENT_LENGTH")
    if big:
        _problem(c.post("/api/exports", data=b"x" * (big + 1), headers=h,
                        content_type="application/json"), 413)
    # an unexpected fault inside an operation: a 500, and still problem JSON, no traceback
    from app.parcels import operations as pops

    def boom(*a, **k):
        raise RuntimeError("secret internals /work/wt/atkapi")

    monkeypatch.setattr(pops, "search_query", boom)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    r = c.get("/api/parcels?q=x", headers=h)
    _problem(r, 500)
    assert "secret internals" not in r.get_data(as_text=True)


def _strip(r):
    skip = {"Date", "X-Request-ID", "Set-Cookie", "Server-Timing", "Vary"}
    return (r.status_code, r.get_data(), sorted((k, v) for k, v in r.headers.items()
                                                if k not in skip))


def test_an_outsider_cannot_tell_an_existing_export_from_a_missing_one(app, dbs, monkeypatch,
                                                                      tmp_path):
    from tests.test_exports import _bearer

    monkeypatch.setitem(app.config, "JOBS_MODE", "sync")
    monkeypatch.setitem(app.config, "EXPORT_DIR", str(tmp_path / "exports"))
    village = _villages(dbs)[0].village_code
    c = app.test_client()
    r = c.post("/api/exports", json={"format": "geojson", "scope": village},
               headers=_bearer("bureau"))
    assert r.status_code == 202, r.get_data(as_text=True)
    job = r.get_json()["id"]
    full = c.post("/api/exports", json={"format": "geojson", "scope": village, "full": True,
                                        "purpose": "征地补偿核对名单"}, headers=_bearer("bureau"))
    assert full.status_code == 202, full.get_data(as_text=True)
    fjob = full.get_json()["id"]
    missing = dbs.scalar(text("SELECT coalesce(max(id), 0) + 1000 FROM job"))
    cols = _villages(dbs)
    mine = division_prefix(cols[0].village_code)
    outsiders = {"officer2": _bearer("officer2")}
    for name, role, jur in (("atk-far-bureau", "bureau_staff",
                             f"{village[:4]}{(int(village[4:6]) + 1) % 100:02d}"),
                            ("atk-auditor-ev", "auditor", village[:6])):
        dbs.add(User(username=name, display_name=name, role=role, jurisdiction_code=jur,
                     password_hash="x"))
        dbs.flush()
        outsiders[name] = _bearer(name)
    assert mine
    # the requester: conditional and range errors of the file are problems too
    own = _bearer("bureau")
    file_url = f"/api/exports/{job}/file"
    size = len(c.get(file_url, headers=own).data)
    _problem(c.get(file_url, headers={**own, "Range": f"bytes={size + 10}-"}), 416)
    etag = '"' + "0" * 64 + '"'
    for who, h in outsiders.items():
        for ident in ([job, fjob] if who != "atk-auditor-ev" else [fjob]):
            for tail in ("", "/file"):
                for method in ("get", "head"):
                    for extra in ({}, {"If-None-Match": etag}, {"If-None-Match": "*"},
                                  {"Range": "bytes=0-1"}):
                        a = getattr(c, method)(f"/api/exports/{ident}{tail}",
                                               headers={**h, **extra})
                        b = getattr(c, method)(f"/api/exports/{missing}{tail}",
                                               headers={**h, **extra})
                        assert a.status_code == 404, (who, ident, tail, method, extra)
                        assert _strip(a) == _strip(b), (who, ident, tail, method, extra)


# ------------------------------------------------------------------------------ 3. tiles

def _tile_url(app):
    from tests.test_ops import _a_parcel_tile

    return _a_parcel_tile(app)


def _kill_tile_backends(app):
    eng = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with eng.connect() as conn:
        n = conn.execute(text(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
            "FROM pg_stat_activity WHERE application_name = 'sanquan-tiles'")).scalar()
    eng.dispose()
    return n


def test_tiles_bad_coordinates_are_404_without_a_database_call(app, monkeypatch):
    from app.parcels import tiles

    calls = []
    monkeypatch.setattr(tiles, "tile_if_changed", lambda *a, **k: calls.append(a))
    c = app.test_client()
    for path in ("-1/0/0", "23/0/0", "99/0/0", "1/2/0", "1/0/2", "0/0/1", "a/b/c", "1.5/0/0",
                 "1/0/0.5", "1/0/-0", "00000000000000000001/0/0", "1/0/0.png", "1/0/0.pbf/x",
                 "%2d1/0/0", "１/0/0", "1/0/0%0a",
                 "1//0", "1/0/%00", "22/4194304/0", "3/99/0"):
        r = c.get(f"/tiles/{path}.pbf" if not path.endswith(("png", "/x")) else f"/tiles/{path}")
        assert r.status_code == 404, (path, r.status_code)
    assert calls == []


def test_a_tile_after_every_pooled_connection_died_and_its_etag_still_revalidates(app):
    """Several stale connections in the pool (a restart drops all of them): the tile is still
    a 200 with the same bytes and ETag, and a 304 for that ETag — one retry is enough because
    the pool checks its idle ones before it."""
    import threading

    c = app.test_client()
    url = _tile_url(app)
    first = c.get(url)
    assert first.status_code == 200 and first.data
    # fill the pool: a few tiles at once
    out = []
    ts = [threading.Thread(target=lambda: out.append(app.test_client().get(url).status_code))
          for _ in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert set(out) == {200}
    for _ in range(2):
        assert _kill_tile_backends(app) >= 1
        again = c.get(url)
        assert again.status_code == 200 and again.data == first.data
        assert again.headers["ETag"] == first.headers["ETag"]
        assert _kill_tile_backends(app) >= 1
        nm = c.get(url, headers={"If-None-Match": first.headers["ETag"]})
        assert nm.status_code == 304 and nm.data == b""


def test_a_failing_tile_statement_is_not_retried(app, monkeypatch):
    """A statement error that is not a dropped link (here a cancel by statement_timeout) is
    answered 503 after one attempt, never looped."""
    import psycopg

    from app.parcels import tiles

    attempts = []

    def work_fails(conn):
        # a pooled link an earlier test dropped fails here and is rightly asked again: only a
        # statement that reached the server counts as an attempt
        conn.execute("SET statement_timeout = 1")
        attempts.append(1)
        try:
            conn.execute("SELECT pg_sleep(1)")
        finally:
            conn.execute("RESET statement_timeout")

    with pytest.raises(psycopg.errors.QueryCanceled):
        tiles._run(tiles.libpq_url(app.config["SQLALCHEMY_DATABASE_URI"]), work_fails)
    assert len(attempts) == 1


def test_a_tile_while_the_database_is_away_is_a_quick_503_then_200_when_back(app):
    """The database refusing connections (tests/test_ops_faults.py's Outage): the tile path
    retries once, then answers 503 with Retry-After promptly — not after the pool's 30-second
    wait for a connection it cannot make (a map asks dozens of tiles: every worker thread
    would hang) — and a 200 with the same bytes once it is back."""
    import time

    from tests.test_ops_faults import Outage, outage

    c = app.test_client()
    url = _tile_url(app)
    first = c.get(url)
    assert first.status_code == 200
    with outage(app, Outage) as o:
        o.down()
        t0 = time.monotonic()
        r = c.get(url)
        took = time.monotonic() - t0
        assert r.status_code == 503 and r.headers["Retry-After"] and r.data == b""
        assert r.headers["Cache-Control"] == "no-store" and "ETag" not in r.headers
        assert took < 10, took
        o.up()
    # back: the pool reconnects in the background (its backoff after the failed attempts), so
    # a client following Retry-After gets the tile again within seconds — bounded, never hangs
    deadline = time.monotonic() + 60
    while (back := c.get(url)).status_code == 503 and time.monotonic() < deadline:
        assert back.headers["Retry-After"]
    assert back.status_code == 200 and back.data == first.data


def test_a_requester_moved_to_another_county_reads_their_export_no_more(app, dbs, monkeypatch,
                                                                        tmp_path):
    """The requester's own job, masked or unmasked: once their jurisdiction no longer reaches
    its selection (moved to another county's bureau), they are told the rule (403
    access.forbidden) and get no file; nobody else learns anything from it (404)."""
    from tests.test_exports import _bearer

    monkeypatch.setitem(app.config, "JOBS_MODE", "sync")
    monkeypatch.setitem(app.config, "EXPORT_DIR", str(tmp_path / "exports"))
    village = _villages(dbs)[0].village_code
    dbs.add(User(username="atk-mover", display_name="atk-mover", role="bureau_staff",
                 jurisdiction_code=village[:6], password_hash="x"))
    dbs.flush()
    c, h = app.test_client(), _bearer("atk-mover")
    ids = []
    for body in ({"format": "geojson", "scope": village},
                 {"format": "geojson", "scope": village, "full": True,
                  "purpose": "征地补偿核对名单"}):
        r = c.post("/api/exports", json=body, headers=h)
        assert r.status_code == 202, r.get_data(as_text=True)
        ids.append(r.get_json()["id"])
        assert c.get(f"/api/exports/{ids[-1]}/file", headers=h).status_code == 200
    far = f"{village[:4]}{(int(village[4:6]) + 1) % 100:02d}"
    dbs.execute(text("UPDATE app_user SET jurisdiction_code = :j WHERE username = 'atk-mover'"),
                {"j": far})
    dbs.expire_all()
    for i in ids:
        for tail in ("", "/file"):
            r = c.get(f"/api/exports/{i}{tail}", headers=h)
            _problem(r, 403)
            assert r.get_json()["code"] == "access.forbidden"
