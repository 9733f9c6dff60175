"""Attacks on the staff search by index (a UNION of a code range, a household-code range and a
match on the holder's name, 0035_search and 0041_search2) and on OGC items' paging and counting (issue
18 §2).  Input is generated (hypothesis, seeded draws from the register); every expectation comes
from a plain, slow formulation of the same question on the same data, never from a literal."""
import json
import random
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from app.access import division_prefix
from app.collectives.models import Collective
from app.ogc import queries as ogc_queries
from app.ogc.views import MAX_LIMIT
from app.parcels import operations as pops
from app.parcels import queries
from app.parcels.models import Parcel

# No LIKE, no range, no index: substr() for a prefix, position() for "contains", starts_with()
# for the jurisdiction (a division prefix).  The holder's name (0041_search2): the first :n
# households by code that hold a current parcel in the jurisdiction, among those named exactly
# :q if there are :n of them, else among all whose name contains :q (starts with it, for 1–2
# characters) — unless more than :cap households holding a current parcel in the jurisdiction
# match, then the exact ones alone (counted outside it, the cut leaked other villages' names).
SLOW = """
WITH m AS (
  SELECT h.cbfbm, h.name = :q AS exact,
         EXISTS (SELECT 1 FROM parcel p JOIN collective c ON c.id = p.collective_id
                 WHERE p.household_code = h.cbfbm AND p.end_lifespan IS NULL
                   AND (CAST(:pre AS text) IS NULL OR starts_with(c.fbfbm, :pre))) AS holds
  FROM household h
  WHERE CASE WHEN char_length(:q) >= 3 THEN position(:q IN h.name) > 0
             ELSE substr(h.name, 1, char_length(:q)) = :q END),
k AS (SELECT count(*) FILTER (WHERE exact AND holds) AS exact_n,
          count(*) FILTER (WHERE holds) AS all_n FROM m),
picked AS (
  SELECT m.cbfbm FROM m, k
  WHERE m.holds AND (m.exact OR (k.exact_n < :n AND k.all_n <= :cap))
  ORDER BY m.cbfbm COLLATE "C" LIMIT :n)
SELECT p.id, p.code, p.kind, p.household_code, h.name FROM parcel p
JOIN collective c ON c.id = p.collective_id
LEFT JOIN household h ON h.cbfbm = p.household_code
WHERE p.end_lifespan IS NULL
  AND (substr(p.code, 1, char_length(:q)) = :q
       OR substr(p.household_code, 1, char_length(:q)) = :q
       OR p.household_code IN (SELECT cbfbm FROM picked))
  AND (CAST(:pre AS text) IS NULL OR starts_with(c.fbfbm, :pre))
ORDER BY p.code COLLATE "C" LIMIT :n"""

# the characters at the edges of byte order and of the LIKE / SQL syntax
EDGE = ["0", "9", "z", "Z", "\x7f", "\x80", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\uffff",
        "\U00010000", "\U0010fffe", "\U0010ffff", "王", "伟", "%", "_", "\\", "'", '"', ";",
        " ", "--", "/*", "$1"]


def slow(dbs, q, prefix, n):
    return [tuple(r) for r in dbs.execute(text(SLOW), {"q": q, "pre": prefix, "n": n,
                                                        "cap": queries.NAME_CAP})]


def fast(q, prefix, n):
    like = None if prefix is None else prefix + "%"
    return [(h["id"], h["code"], h["kind"], h["household"], h["holder"])
            for h in queries.search(q, like, n)]


def _current(dbs):
    return dbs.execute(text(
        "SELECT p.code, p.household_code, h.name, c.fbfbm FROM parcel p "
        "JOIN collective c ON c.id = p.collective_id "
        "LEFT JOIN household h ON h.cbfbm = p.household_code "
        "WHERE p.end_lifespan IS NULL ORDER BY p.id")).all()


def _prefixes(dbs):
    villages = dbs.scalars(select(Collective.village_code).distinct()
                           .order_by(Collective.village_code)).all()
    county = villages[0][:6]
    other = f"{county[:4]}{(int(county[4:6]) + 1) % 100:02d}"  # a county the register lacks
    return [None, division_prefix(villages[0]), division_prefix(villages[-1]), other]


def _successor(s: str) -> str:
    """`s` with its last character one code point higher (a neighbouring prefix)."""
    c = ord(s[-1]) + 1
    if 0xD800 <= c <= 0xDFFF:
        c = 0xE000
    return s[:-1] + chr(min(c, 0x10FFFF))


def _query(rows):
    """A strategy of search strings drawn from the register's current rows, bent at the edges."""
    def bend(row, i, j, edge, how):
        code, hh, name, _ = row
        base = [code, hh or code, name or code][how % 3][i:j] if how < 3 else code[:j]
        if how == 3:
            return base + edge  # a real prefix followed by an edge character
        if how == 4 and base:
            return _successor(base)  # the neighbouring prefix: none of the first's parcels
        if how == 5:
            return edge + base
        return base

    drawn = st.builds(bend, st.sampled_from(rows), st.integers(0, 3), st.integers(1, 28),
                      st.sampled_from(EDGE), st.integers(0, 6))
    anything = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                       max_size=24)
    return st.one_of(drawn, anything, st.sampled_from(EDGE))


def test_search_equals_the_slow_query_for_generated_strings(dbs):
    rows = _current(dbs)
    prefixes = _prefixes(dbs)
    seen = {"hit": 0}

    @settings(max_examples=160, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(q=_query(rows), prefix=st.sampled_from(prefixes), n=st.sampled_from([1, 20, 5000]))
    def check(q, prefix, n):
        want = slow(dbs, q, prefix, n)
        assert fast(q, prefix, n) == want
        seen["hit"] += bool(want)

    check()
    assert seen["hit"] > 20  # the drawn strings do find parcels, not only nothing


def test_a_prefix_and_its_neighbour_split_the_register_exactly(dbs):
    """'14040' finds every current parcel whose code or household code starts so ('140409…'
    included) or whose holder's name holds it, and nothing else; the same for the neighbouring
    prefix ('14041') and for a prefix followed by the highest character.  The expectation is
    computed in Python over the register's rows, not in SQL."""
    rnd = random.Random(18)
    rows = _current(dbs)

    def expected(p):
        return sorted(code for code, hh, name, _ in rows
                      if code.startswith(p) or (hh or "").startswith(p) or p in (name or ""))

    for code, hh, _, _ in rnd.sample(rows, 4):
        for source in (code, hh or code):
            for k in range(2, len(source) + 1):
                for p in (source[:k], _successor(source[:k]), source[:k] + "\U0010ffff",
                          source[:k] + "\uffff", source[:k] + "9", source[:k] + "z"):
                    got = [h[1] for h in fast(p, None, 100_000)]
                    assert got == expected(p), p


def test_ended_versions_never_appear(dbs):
    """A parcel amended (its old version ended, same code, same household, same holder) is found
    once, as its new version, by each of the three branches."""
    row = dbs.execute(text(
        "SELECT p.id, h.name FROM parcel p JOIN household h ON h.cbfbm = p.household_code "
        "WHERE p.end_lifespan IS NULL ORDER BY p.id LIMIT 1")).one()
    old = dbs.get(Parcel, row[0])
    code, hh = old.code, old.household_code
    pops.amend("test", old, "search attack: a new version", name=(old.name or "") + "改")
    dbs.flush()
    new_id = dbs.scalar(select(Parcel.id).where(Parcel.code == code,
                                                Parcel.end_lifespan.is_(None)))
    assert new_id != old.id
    for q in (code, code[:-1], hh, row[1]):
        ids = [h[0] for h in fast(q, None, 100_000)]
        assert old.id not in ids and ids.count(new_id) == 1, q
        assert fast(q, None, 100_000) == slow(dbs, q, None, 100_000), q


def test_search_leaves_the_transaction_settings_as_it_found_them(dbs):
    """SET LOCAL lasts to the end of the transaction: the rest of the request (its after-request
    hooks, signals, any later statement) must not run under the search's planner setting."""
    code = _current(dbs)[0][0]
    for found in (None, "force_generic_plan", "auto"):
        if found:
            dbs.execute(text("SELECT set_config('plan_cache_mode', :v, true)"), {"v": found})
        before = dbs.execute(text("SHOW plan_cache_mode")).scalar()
        assert fast(code[:6], None, 20) == slow(dbs, code[:6], None, 20)
        assert dbs.execute(text("SHOW plan_cache_mode")).scalar() == before
    # while it runs, the search's statement is planned for its own values
    assert dbs.execute(text(queries._FORCE_CUSTOM_PLAN)).scalar() == before
    assert dbs.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"


# ------------------------------------------------------------------------------------- HTTP

def _hostile(rows, rnd):
    code, hh, name, _ = rows[rnd.randrange(len(rows))]
    long = (name or code) * (10_000 // len(name or code) + 1)
    return [
        "", " ", "   \t ", "\u3000", code[:1], (name or "王")[:1], (name or "王伟")[:2],
        f" {code[:8]} ", "'; DROP TABLE parcel; --", "%' OR '1'='1", "%%", "__", "\\",
        code[:5] + "%", hh[:4] + "_" if hh else "_", "王伟", long[:10_000], code + "x" * 10_000,
    ]


def _status_and_hits(c, raw_query):
    r = c.get("/parcels/search?q=" + raw_query)
    assert r.status_code in (200, 400), (raw_query[:80], r.status_code)
    return r.status_code, (r.get_json() if r.status_code == 200 else None)


def test_hostile_strings_are_answered_never_500(login_as, dbs):
    rows = _current(dbs)
    c = login_as("bureau")
    for q in _hostile(rows, random.Random(7)):
        status, hits = _status_and_hits(c, quote(q))
        assert status == 200, q[:40]
        s = q.strip()
        want = [] if len(s) < 2 else [r[1] for r in slow(dbs, s, None, 20)]
        assert [h["code"] for h in hits] == want, q[:40]
    # bytes no text can hold: NUL, invalid UTF-8, an encoded lone surrogate, overlong forms
    for raw in ("%00", "ab%00cd", "%FF%FE", "14%C0%AF", "%ED%A0%80", "%F4%90%80%80", "%E7%8E"):
        status, hits = _status_and_hits(c, raw)
        assert status == 400 or hits == [] or all(set(h) >= {"code"} for h in hits), raw


def test_jurisdiction_holds_in_every_branch(app, login_as, dbs):
    """Codes, household codes and holders' names of the first village, searched by the second
    village's officer and by another county's staff: never a parcel outside their jurisdiction,
    and exactly what the slow query finds inside it."""
    from app.auth import operations as auth_ops
    from tests.conftest import PASSWORD

    rows = _current(dbs)
    villages = dbs.scalars(select(Collective.village_code).distinct()
                           .order_by(Collective.village_code)).all()
    first, second = division_prefix(villages[0]), division_prefix(villages[1])
    other = f"{villages[0][:4]}{(int(villages[0][4:6]) + 1) % 100:02d}"
    auth_ops.create_user(None, "bureau_far", PASSWORD, "bureau_staff", "外县 科员", other,
                         reason="test account")
    dbs.flush()
    rnd = random.Random(1818)
    mine = [r for r in rows if r[3].startswith(first)]
    qs = []
    for code, hh, name, _ in rnd.sample(mine, 15):
        qs += [code[:rnd.randint(2, len(code))], code]
        if hh:
            qs += [hh, hh[:rnd.randint(2, len(hh))]]
        if name:
            qs += [name, name[:2], name[-2:]]
    fbfbm_of = dict(dbs.execute(text(
        "SELECT p.id, c.fbfbm FROM parcel p JOIN collective c ON c.id = p.collective_id")).all())
    for user, prefix in (("officer2", second), ("bureau_far", division_prefix(other))):
        c = login_as(user)
        for q in qs:
            status, hits = _status_and_hits(c, quote(q))
            assert status == 200
            assert all(fbfbm_of[h["id"]].startswith(prefix) for h in hits), (user, q)
            assert [h["id"] for h in hits] == [r[0] for r in slow(dbs, q, prefix, 20)], (user, q)
    # and the first village's officer finds them (the queries are not empty by construction)
    c = login_as("officer")
    assert sum(bool(_status_and_hits(c, quote(q))[1]) for q in qs) >= len(qs) // 2


def test_results_page_and_api_carry_no_personal_data(login_as, dbs):
    rows = dbs.execute(text(
        "SELECT h.cbfbm, h.name, h.phone, pe.id_number FROM household h "
        "JOIN household_member m ON m.household_id = h.id JOIN person pe ON pe.id = m.person_id "
        "WHERE EXISTS (SELECT 1 FROM parcel p WHERE p.household_code = h.cbfbm "
        "AND p.end_lifespan IS NULL) ORDER BY h.id LIMIT 40")).all()
    secrets = {s for r in rows for s in (r[2], r[3]) if s}
    assert secrets
    c = login_as("bureau")
    for cbfbm, name, *_ in rows[::7]:
        for q in (cbfbm, name):
            page = c.get("/parcels/search?q=" + quote(q)).get_data(as_text=True)
            api = c.get("/api/parcels?q=" + quote(q[:50])).get_data(as_text=True)
            assert not any(s in page or s in api for s in secrets), q


# -------------------------------------------------------------------------------------- OGC

ITEMS = "/ogc/collections/parcels/items"


def _rels(page):
    return {link["rel"]: link["href"] for link in page["links"]}


def _bbox_ids(dbs, bbox):
    return dbs.scalars(text(
        "SELECT id FROM parcel WHERE end_lifespan IS NULL AND geom && "
        "ST_MakeEnvelope(:a, :b, :c, :d, 4490) ORDER BY id"),
        dict(zip("abcd", bbox, strict=True))).all()


def _small_bbox(dbs, lo, hi):
    """A bbox around a parcel holding between lo and hi current parcels."""
    lon, lat = json.loads(dbs.execute(text(
        "SELECT ST_AsGeoJSON(ST_Centroid(geom)) FROM parcel WHERE end_lifespan IS NULL "
        "ORDER BY id LIMIT 1")).scalar())["coordinates"]
    d = 0.0002
    while d < 1:
        bbox = (lon - d, lat - d, lon + d, lat + d)
        if lo <= len(_bbox_ids(dbs, bbox)) <= hi:
            return bbox
        d *= 1.3
    raise AssertionError("no bbox of that size")


def test_paging_by_next_links_visits_every_match_once(client, dbs):
    bbox = _small_bbox(dbs, 4, 30)
    want = _bbox_ids(dbs, bbox)
    n = len(want)
    for limit in (1, 2, n - 1, n, n + 1, MAX_LIMIT):
        url = f"{ITEMS}?limit={limit}&bbox={','.join(map(str, bbox))}"
        seen, pages = [], 0
        while url:
            page = client.get(url).get_json()
            pages += 1
            assert page["numberMatched"] == n and page["numberReturned"] == len(page["features"])
            assert page["numberReturned"] == min(limit, n - len(seen))
            seen += [f["id"] for f in page["features"]]
            url = _rels(page).get("next")
            if url:
                url = url[url.index("/ogc/"):]
            assert pages <= n + 1
        assert seen == want, limit
        assert pages == max(1, -(-n // limit)), limit  # no empty page after an exactly full one


def test_limits_out_of_range_are_400(client):
    for bad in ("0", "-1", str(MAX_LIMIT + 1), "1.5", "x", "", "99999999999999999999"):
        assert client.get(f"{ITEMS}?limit={bad}").status_code == 400, bad
    for bad in ("-1", "x", "99999999999999999999"):
        assert client.get(f"{ITEMS}?offset={bad}").status_code == 400, bad


def test_unfiltered_pages_never_count_and_the_last_full_page_has_no_next(client, dbs):
    total = dbs.scalar(text("SELECT count(*) FROM parcel WHERE end_lifespan IS NULL"))
    rnd = random.Random(5)
    for limit in (1, rnd.randint(2, 50), total, MAX_LIMIT):
        for offset in (0, max(0, total - limit), total - 1, total):
            page = client.get(f"{ITEMS}?limit={limit}&offset={offset}").get_json()
            assert "numberMatched" not in page
            assert page["numberReturned"] == len(page["features"]) == \
                max(0, min(limit, total - offset))
            assert ("next" in _rels(page)) == (offset + limit < total), (limit, offset)


def test_cql2_counts_are_exact_under_the_cap_and_absent_above(client, dbs, monkeypatch):
    village = dbs.scalar(select(Collective.village_code).order_by(Collective.fbfbm))
    filters = {
        f"village = '{village}'": "c.village_code = :v",
        "class = 'contract'": "p.kind = 'contract'",
        f"village = '{village}' AND class = 'homestead'":
            "c.village_code = :v AND p.kind = 'homestead'",
        "code = 'nosuchcode'": "false",
    }
    for cql, where in filters.items():
        n = dbs.scalar(text(
            "SELECT count(*) FROM parcel p JOIN collective c ON c.id = p.collective_id "
            f"WHERE p.end_lifespan IS NULL AND {where}"), {"v": village})
        url = f"{ITEMS}?limit=3&filter={quote(cql)}"
        page = client.get(url).get_json()
        assert page["numberMatched"] == n and page["numberReturned"] == min(3, n), cql
        for cap, shown in ((n - 1, False), (n, True), (n + 1, True)):
            if cap < 0:
                continue
            monkeypatch.setattr(ogc_queries, "COUNT_CAP", cap)
            capped = client.get(url).get_json()
            assert ("numberMatched" in capped) == shown, (cql, cap)
            if shown:
                assert capped["numberMatched"] == n
            assert capped["features"] == page["features"]
            monkeypatch.undo()


def test_bad_bboxes_are_400_never_500(client):
    rnd = random.Random(11)
    bad = ["170,30,-170,40", "112,38,111,39", "112,39,113,38", "1,2,3", "1,2,3,4,5",
           "nan,1,2,3", "inf,1,2,3", "1e400,1,2,3", ",,,", "a,b,c,d", "1,2,3,4,5,6,7",
           "-181,-91,181,91e9"]
    for _ in range(20):
        v = [rnd.uniform(-1e9, 1e9) for _ in range(4)]
        bad.append(",".join(map(str, v)))
    for b in bad:
        for extra in ("", "&bbox-crs=" + quote("http://www.opengis.net/def/crs/EPSG/0/4547")):
            r = client.get(f"{ITEMS}?bbox={quote(b)}{extra}")
            assert r.status_code in (200, 400), (b, extra, r.status_code)
            if r.status_code == 200:
                assert r.get_json()["numberReturned"] == len(r.get_json()["features"])
    # six numbers (a 3D bbox, OGC API – Features 7.15.3): answered, never 500
    assert client.get(f"{ITEMS}?bbox=110,30,0,115,40,10").status_code in (200, 400)


@pytest.mark.parametrize("limit", [1, 7])
def test_prev_and_next_links_are_consistent(client, dbs, limit):
    total = dbs.scalar(text("SELECT count(*) FROM parcel WHERE end_lifespan IS NULL"))
    for offset in (0, limit - 1, limit, total - limit, total - 1):
        page = client.get(f"{ITEMS}?limit={limit}&offset={offset}").get_json()
        rels = _rels(page)
        if "next" in rels:
            assert f"offset={offset + limit}" in rels["next"]
        if offset > 0:
            assert f"offset={max(0, offset - limit)}" in rels["prev"]
        else:
            assert "prev" not in rels


def test_api_search_takes_wildcards_literally_like_the_page(login_as, dbs):
    """`/api/parcels?q=` is the same search for programs: `%`, `_` and `\\` are characters there
    too (a `%` must not list the whole jurisdiction), checked against the slow query."""
    rnd = random.Random(19)
    rows = _current(dbs)
    code, hh, name, _ = rows[rnd.randrange(len(rows))]
    qs = ["%", "_", "\\", "%%", "__", code[:3] + "%", code[:4] + "_" + code[5:9], "1_", "_1",
          (hh or code)[:5] + "%", "%" + (name or "")[-1:], code[:8]]
    c = login_as("bureau")
    for q in qs:
        r = c.get(f"/api/parcels?per_page=500&q={quote(q)}")
        assert r.status_code == 200, q
        body = r.get_json()
        want = slow(dbs, q, None, 100_000)
        assert body["total"] == len(want), q
        assert [i["code"] for i in body["items"]] == [w[1] for w in want[:500]], q


def test_only_staff_search_and_the_farmer_sees_nothing(app, login_as, dbs):
    """A farmer (whose own parcels are on the map, not in the staff search) and an anonymous
    visitor get no result rows, whatever they ask; a compliance supervisor is no search role."""
    code, hh, name, _ = _current(dbs)[0]
    anonymous = app.test_client()
    for c in (login_as("farmer"), login_as("supervisor"), anonymous):
        for q in (code[:4], hh or code, name or code):
            r = c.get("/parcels/search?q=" + quote(q))
            assert r.status_code in (302, 401, 403), (q, r.status_code)
            assert code not in r.get_data(as_text=True)


def test_generated_cql2_filters_count_what_they_return_or_are_400(client, dbs):
    """Generated CQL2 text (queryables, every operator, literals drawn from the register and
    literals of the wrong type or at the edges of their type): 200 or 400, never 500; on 200 the
    numberMatched is the number of features the same filter returns in one full page."""
    values = {k: [v for v in dbs.scalars(text(
        f"SELECT DISTINCT {col} FROM parcel p JOIN collective c ON c.id = p.collective_id "
        f"WHERE p.end_lifespan IS NULL AND {col} IS NOT NULL LIMIT 5")).all()]
        for k, col in {"code": "p.code", "class": "p.kind", "township": "substr(c.fbfbm, 1, 9)",
                       "village": "substr(c.fbfbm, 1, 12)", "dklb": "p.dklb",
                       "scmj": "p.scmj", "version": "p.version"}.items()}
    odd = ["'x''y'", "''", "'%'", "'_'", "'\\'", "-0", "9223372036854775807",
           "9223372036854775808", "1e308", "-1e308", "0.5", "TRUE", "NULL", "'王'"]

    def lit(k, v):
        return f"'{v}'" if isinstance(v, str) else str(v)

    atom = st.one_of(
        st.builds(lambda k, op, i: f"{k} {op} {lit(k, values[k][i % len(values[k])])}",
                  st.sampled_from(sorted(values)),
                  st.sampled_from(["=", "<>", "<", ">", "<=", ">="]), st.integers(0, 4)),
        st.builds(lambda k, op, o: f"{k} {op} {o}", st.sampled_from(sorted(values)),
                  st.sampled_from(["=", "<", ">="]), st.sampled_from(odd)),
        st.builds(lambda k, i: f"{k} LIKE '{str(values[k][i % len(values[k])])[:5]}%'",
                  st.sampled_from(["code", "township", "village"]), st.integers(0, 4)),
        st.builds(lambda k, i: f"{k} IN ({lit(k, values[k][i % len(values[k])])}, "
                               f"{lit(k, values[k][(i + 1) % len(values[k])])})",
                  st.sampled_from(sorted(values)), st.integers(0, 4)),
        st.builds(lambda a, b: f"scmj BETWEEN {a} AND {b}", st.sampled_from(values["scmj"]),
                  st.sampled_from(values["scmj"] + [-1, 1e308])),
        st.sampled_from(["dklb IS NULL", "name IS NOT NULL", "code = code", "scmj = code"]),
    )
    expr = st.recursive(atom, lambda e: st.one_of(
        st.builds(lambda a, b: f"({a}) AND ({b})", e, e),
        st.builds(lambda a, b: f"({a}) OR ({b})", e, e),
        st.builds(lambda a: f"NOT ({a})", e)), max_leaves=4)
    statuses = {200: 0, 400: 0}

    @settings(max_examples=80, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(f=expr)
    def check(f):
        r = client.get(f"{ITEMS}?limit={MAX_LIMIT}&filter={quote(f)}")
        assert r.status_code in (200, 400), (f, r.status_code, r.get_data(as_text=True)[:300])
        statuses[r.status_code] += 1
        if r.status_code == 200:
            page = r.get_json()
            assert page["numberMatched"] == page["numberReturned"] == len(page["features"]), f
            assert "next" not in _rels(page)

    check()
    assert statuses[200] > 20 and statuses[400] > 0


def test_concurrent_searches_by_different_jurisdictions_keep_their_answers(app, live_server):
    """Many searches at once, by the county's staff and by the two villages' officers, over the
    threaded server and its pool: each answer is the slow query's for that user's jurisdiction
    (no planner setting, result or scope carried from one request to another)."""
    import http.cookiejar
    import re
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from app.extensions import db
    from tests.conftest import PASSWORD

    with app.app_context():
        rows = _current(db.session)
        villages = db.session.scalars(select(Collective.village_code).distinct()
                                      .order_by(Collective.village_code)).all()
        users = {"bureau": None, "officer": division_prefix(villages[0]),
                 "officer2": division_prefix(villages[1])}
        rnd = random.Random(2718)
        qs = []
        for code, hh, name, _ in rnd.sample(rows, 12):
            qs += [code[:rnd.randint(2, len(code))], hh or code, (name or code)[:2]]
        want = {(u, q): [r[0] for r in slow(db.session, q, p, 20)]
                for u, p in users.items() for q in qs}
        db.session.rollback()
    assert sum(bool(v) for v in want.values()) > len(want) // 3

    openers = {}
    for u in users:
        jar = http.cookiejar.CookieJar()
        op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = op.open(live_server + "/login").read().decode()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        data = f"username={u}&password={quote(PASSWORD)}&csrf_token={quote(token)}".encode()
        op.open(live_server + "/login", data=data).read()
        openers[u] = op

    jobs = [(u, q) for u in users for q in qs] * 2
    rnd.shuffle(jobs)

    def run(job):
        u, q = job
        with openers[u].open(live_server + "/parcels/search?q=" + quote(q)) as r:
            return job, [h["id"] for h in json.loads(r.read())]

    with ThreadPoolExecutor(8) as pool:
        for (u, q), ids in pool.map(run, jobs):
            assert ids == want[(u, q)], (u, q)
