"""Set-wise validation of a staged survey delivery in PostGIS.

Each check is one SQL statement over the whole batch (or, where a judgement is needed — which
of two duplicates or of two overlapping parcels is at fault — a small Python step over the few
rows the SQL found).  Every fault names its feature or row, its rule and where it is.
"""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import text

from app.extensions import db

# rule -> (Chinese label, English label, source)
RULES = {
    "self_intersection": ("自相交", "self-intersection", "OGC Simple Features; NY/T 2539-2016 §6"),
    "invalid_geometry": ("几何无效", "invalid geometry", "OGC Simple Features; NY/T 2539-2016 §6"),
    "missing_shape": ("无图形", "no geometry", "NY/T 2539-2016 §6"),
    "overlap": ("地块重叠", "overlapping parcels", "NY/T 2539-2016 §6 (地块不得重叠)"),
    "overlap_register": ("与登记簿重叠", "overlaps the register", "NY/T 2539-2016 §6"),
    "duplicate_parcel_code": ("地块编码重复", "duplicate parcel code", "NY/T 2539-2016 地块编码唯一"),
    "code_registered": ("编码已登记", "code already registered", "NY/T 2539-2016 地块编码唯一"),
    "bad_code": ("编码格式错误", "malformed code", "NY/T 2539-2016; GB/T 37346-2019"),
    "unknown_issuing_party": ("发包方不存在", "unknown issuing party", "NY/T 2539-2016 FBF"),
    "code_list": ("代码不在代码表中", "value outside the code list", "NY/T 2539-2016 代码表"),
    "area_mismatch": ("面积不符", "area mismatch", "NY/T 2539-2016 SCMJ; 计算面积"),
    "bad_id_checksum": ("身份号码校验码错误", "ID number check digit", "GB 11643-1999"),
    "two_homesteads": ("一户多宅", "household holds two homesteads", "土地管理法 第六十二条 一户一宅"),
    "missing_geometry": ("地块缺少图形", "parcel without geometry", "NY/T 2539-2016 CBDKXX"),
    "unknown_household": ("承包方不存在", "unknown household", "NY/T 2539-2016 CBF"),
}

CODE_LISTS = {
    "SYQXZ": ("10", "30", "31", "32", "33", "34"),
    "DKLB": ("10", "21", "22", "23", "99"),
    "DLDJ": tuple(f"{i:02d}" for i in range(1, 11)),
    "TDYT": ("1", "2", "3", "4", "5"),
    "SFJBNT": ("1", "2"),
}


# The geometry as it will be stored: repeated vertices (within 1 mm) dropped, in CGCS2000.
CLEAN = ("ST_RemoveRepeatedPoints({g}, CASE WHEN ST_SRID({g}) IN (4326, 4490) THEN 1e-8 "
         "ELSE 0.001 END)")
STORED = "ST_Transform(" + CLEAN + ", 4490)"


def _exec(sql: str, **params):
    return db.session.execute(text(sql), params)


def _fault(batch_id, rule, code, detail, feature_id=None, record_id=None, location_sql=None):
    _exec(
        "INSERT INTO import_fault (batch_id, feature_id, record_id, rule, code, detail, location)"
        " VALUES (:b, :f, :r, :rule, :code, :detail, "
        + (location_sql or "NULL") + ")",
        b=batch_id, f=feature_id, r=record_id, rule=rule, code=code, detail=detail)


POINT_OF = ("(SELECT ST_Transform(ST_PointOnSurface(ST_MakeValid(geom)), 4490) "
            "FROM import_feature WHERE id = :f)")


def validate(batch_id: int, tolerance_m2: float, area_tolerance_m2: float, progress=None,
             checked_upto: tuple[int, int] = (0, 0)) -> dict:
    """Check the features and rows staged after `checked_upto` (feature id, record id); return
    {rule: count} of the batch's open faults.  Faulty rows get status 'faulty'."""
    steps = [
        _geometry, _attributes, _codes, _duplicates, _overlaps, _register_overlaps,
        _ids, _households, _homesteads,
    ]
    after, after_r = checked_upto
    # No JIT: the work is in PostGIS's functions, which JIT cannot compile; compiling the
    # expressions around them cost ~0.5 s per large query (1.7 s of CPU in 3 processes).
    _exec("SET LOCAL jit = off")
    ctx = {"b": batch_id, "tol": tolerance_m2, "atol": area_tolerance_m2, "explained": set(),
           "after": after, "after_r": after_r}
    for i, step in enumerate(steps):
        if progress:
            progress(i, len(steps), step.__name__.strip("_"))
        step(ctx)
    # Only the faulty change status: staged rows are 'valid' until a fault says otherwise.
    _exec("""UPDATE import_feature f SET status = 'faulty' WHERE f.id IN (
               SELECT x.feature_id FROM import_fault x WHERE x.batch_id = :b
                 AND x.resolved_at IS NULL AND x.feature_id > :after)
             AND f.status = 'valid'""", b=batch_id, after=after)
    _exec("""UPDATE import_record r SET status = 'faulty' WHERE r.id IN (
               SELECT x.record_id FROM import_fault x WHERE x.batch_id = :b
                 AND x.resolved_at IS NULL AND x.record_id > :after_r)
             AND r.status = 'valid'""", b=batch_id, after_r=after_r)
    rows = _exec("SELECT rule, count(*) FROM import_fault WHERE batch_id = :b "
                 "AND resolved_at IS NULL GROUP BY rule", b=batch_id).all()
    if progress:
        progress(len(steps), len(steps), "done")
    return dict(rows)


def _pending(alias="f"):
    """Features not yet checked: staged (or corrected) since the last validation."""
    return f"{alias}.batch_id = :b AND {alias}.id > :after AND {alias}.status = 'valid'"


def _geometry(ctx):
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail)
        SELECT f.batch_id, f.id, 'missing_shape', f.code, 'feature has no polygon geometry'
        FROM import_feature f WHERE {_pending()} AND (f.geom IS NULL OR ST_IsEmpty(f.geom)
          OR GeometryType(f.geom) NOT IN ('POLYGON', 'MULTIPOLYGON'))""", **ctx)
    # One pass: ST_IsValid on both geometries (cheap); the detail only for the invalid ones.
    bad = _exec(f"""
        SELECT f.id, ST_IsValid(f.geom) AS ok, ST_IsValid(f.geom_stored) AS ok_stored
        FROM import_feature f WHERE {_pending()} AND f.geom IS NOT NULL AND NOT ST_IsEmpty(f.geom)
          AND GeometryType(f.geom) IN ('POLYGON', 'MULTIPOLYGON')
          AND NOT (ST_IsValid(f.geom) AND ST_IsValid(f.geom_stored))""", **ctx).all()
    as_delivered = [r.id for r in bad if not r.ok]
    only_stored = [r.id for r in bad if r.ok and not r.ok_stored]
    if as_delivered:
        _exec("""
            INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
            SELECT f.batch_id, f.id,
                   CASE WHEN (f.d).reason ILIKE '%%self-intersection%%' THEN 'self_intersection'
                        ELSE 'invalid_geometry' END,
                   f.code, (f.d).reason,
                   ST_Transform(ST_SetSRID((f.d).location, ST_SRID(f.geom)), 4490)
            FROM (SELECT f.*, ST_IsValidDetail(f.geom) AS d FROM import_feature f
                  WHERE f.id = ANY(:ids)) f""", ids=as_delivered)
    if only_stored:
        # Valid as delivered but not once cleaned and put in CGCS2000 (near-coincident vertices).
        _exec("""
            INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
            SELECT f.batch_id, f.id, 'invalid_geometry', f.code,
                   'invalid in CGCS2000 (EPSG:4490): ' || (f.d).reason, (f.d).location
            FROM (SELECT f.*, ST_IsValidDetail(f.geom_stored) AS d FROM import_feature f
                  WHERE f.id = ANY(:ids)) f""", ids=only_stored)
    ctx["bad"] = _bad_geometry(ctx)


def _codes(ctx):
    # The issuing party: in this delivery's FBF table, or already registered (a hash join).
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail)
        SELECT f.batch_id, f.id, 'unknown_issuing_party', f.code,
               'issuing party ' || substr(f.code, 1, 14) || ' is neither in FBF nor registered'
        FROM import_feature f
        LEFT JOIN (SELECT r.attrs->>'FBFBM' AS fb FROM import_record r
                   WHERE r.batch_id = :b AND r.tbl = 'FBF' AND r.status <> 'superseded'
                   UNION SELECT fbfbm FROM collective) k ON k.fb = substr(f.code, 1, 14)
        WHERE {_pending()} AND f.layer = 'DK' AND f.code ~ '^[0-9]{{19}}$' AND k.fb IS NULL
        """, **ctx)


def _attributes(ctx):
    """Code formats, code lists and the delivered area (cheap scans, no geometry work but
    the area)."""
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail)
        SELECT f.batch_id, f.id, 'bad_code', f.code,
               CASE WHEN f.layer = 'DK' THEN 'DKBM must be 19 digits (FBFBM + 5-digit sequence)'
                    ELSE 'BDCDYH must be 28 characters with zone type JC (GB/T 37346-2019)' END
        FROM import_feature f WHERE {_pending()} AND (
          (f.layer = 'DK' AND coalesce(f.code, '') !~ '^[0-9]{{19}}$') OR
          (f.layer = 'ZJD' AND coalesce(f.code, '') !~ '^[0-9]{{12}}JC[0-9]{{5}}[FLQW][0-9]{{8}}$'))
        """, **ctx)
    checks = " OR ".join(
        f"(coalesce(f.attrs->>'{field}', '') <> '' AND NOT (f.attrs->>'{field}' = ANY(:{field})))"
        for field in CODE_LISTS)
    suspects = _exec(f"""SELECT f.id, f.code, f.attrs FROM import_feature f
                         WHERE {_pending()} AND f.layer = 'DK' AND ({checks})""",
                     **ctx, **{k: list(v) for k, v in CODE_LISTS.items()}).all()
    for fid, code, attrs in suspects:
        for field, allowed in CODE_LISTS.items():
            value = attrs.get(field)
            if value not in (None, "") and str(value) not in allowed:
                _fault(ctx["b"], "code_list", code, f"{field} = {value} is not in the code list",
                       feature_id=fid)
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
        SELECT f.batch_id, f.id, 'area_mismatch', f.code,
               'delivered area ' || round(x.delivered::numeric, 2) || ' m², computed ' ||
               round(x.computed::numeric, 2) || ' m²',
               ST_Transform(ST_PointOnSurface(f.geom), 4490)
        FROM import_feature f,
             LATERAL (SELECT (coalesce(f.attrs->>'SCMJ', f.attrs->>'ZDMJ'))::float8 AS delivered,
                             ST_Area(f.geom) AS computed) x
        WHERE {_pending()} AND NOT (f.id = ANY(:bad)) AND x.delivered IS NOT NULL
          AND abs(x.delivered - x.computed) > :atol""", **ctx)


def _duplicates(ctx):
    """Features sharing a code: the one whose area fits the contract's record keeps it; each
    other one is at fault, with the unmatched CBDKXX code it most likely is."""
    # The shared codes first (a hash aggregate over the codes alone), then the few features
    # that carry them with their areas.
    groups = _exec("""
        WITH shared AS (
          SELECT f.layer, f.code FROM import_feature f WHERE f.batch_id = :b
            AND f.status = 'valid' AND f.id > :after AND f.code IS NOT NULL
          GROUP BY f.layer, f.code HAVING count(*) > 1)
        SELECT f.layer, f.code, array_agg(f.id ORDER BY f.fid) AS ids,
               array_agg(coalesce((f.attrs->>'SCMJ')::float8, ST_Area(f.geom)) ORDER BY f.fid)
                 AS areas
        FROM import_feature f JOIN shared s ON s.layer = f.layer AND s.code = f.code
        WHERE f.batch_id = :b AND f.status = 'valid' AND f.id > :after
        GROUP BY f.layer, f.code""", **ctx).all()
    if not groups:
        return
    contract_area = dict(_exec("""SELECT attrs->>'DKBM', (attrs->>'HTMJ')::float8 FROM import_record
                                  WHERE batch_id = :b AND tbl = 'CBDKXX'
                                    AND status <> 'superseded'""", **ctx).all())
    unmatched = set(_exec("""
        SELECT DISTINCT r.attrs->>'DKBM' FROM import_record r WHERE r.batch_id = :b
          AND r.tbl = 'CBDKXX' AND NOT EXISTS (SELECT 1 FROM import_feature f
              WHERE f.batch_id = r.batch_id AND f.layer = 'DK' AND f.code = r.attrs->>'DKBM')""",
                          **ctx).scalars())
    for layer, code, ids, areas in groups:
        ref = contract_area.get(code)
        order = sorted(range(len(ids)), key=lambda i: abs(areas[i] - ref) if ref else i)
        for i in order[1:]:
            guess = None
            candidates = [c for c in unmatched if c[:14] == code[:14] and c in contract_area]
            if candidates and layer == "DK":
                guess = min(candidates, key=lambda c: abs(contract_area[c] - areas[i]))
                if abs(contract_area[guess] - areas[i]) > 0.1 * areas[i]:
                    guess = None
            if guess:
                unmatched.discard(guess)
                ctx["explained"].add(guess)
                detail = (f"feature carries code {code}, which another feature also carries; its "
                          f"area {areas[i]:.2f} m² fits parcel {guess} (contract area "
                          f"{contract_area[guess]:.2f} m²), listed in CBDKXX without geometry")
            else:
                detail = f"code {code} is carried by {len(ids)} features"
            _fault(ctx["b"], "duplicate_parcel_code", guess or code, detail, feature_id=ids[i],
                   location_sql=POINT_OF)
    # Codes already registered in the register (current versions).
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail)
        SELECT f.batch_id, f.id, 'code_registered', f.code, 'a current parcel already has this code'
        FROM import_feature f WHERE {_pending()} AND EXISTS (
          SELECT 1 FROM parcel p WHERE p.code = f.code AND p.end_lifespan IS NULL)""", **ctx)


def _bad_geometry(ctx) -> list[int]:
    return list(_exec("""SELECT feature_id FROM import_fault WHERE batch_id = :b
                         AND feature_id > :after AND resolved_at IS NULL AND rule IN
                         ('missing_shape', 'self_intersection', 'invalid_geometry')""",
                      **ctx).scalars())


def _overlaps(ctx):
    """Pairs overlapping by more than the tolerance.  The fault goes to the feature that fits
    its neighbours worst: the one in most overlaps, then the one sharing the least boundary."""
    ctx["bad"] = _bad_geometry(ctx)
    b = int(ctx["b"])
    # The batch's own spatial index, built once its rows are loaded (faster than maintaining
    # one index row by row during COPY); a literal predicate so the planner can use it.
    _exec(f"SELECT staging_batch_index({b})")  # the owner builds it (the app's role owns nothing)
    pairs = _exec(f"""
        SELECT a.id AS a, b.id AS b, a.code AS ca, b.code AS cb,
               ST_Area(ST_Intersection(a.geom, b.geom)) AS area
        FROM import_feature a JOIN import_feature b
          ON a.geom && b.geom AND (a.id + 0) < (b.id + 0)
        WHERE a.batch_id = {b} AND b.batch_id = {b} AND {_pending('a')}
          AND b.status = 'valid' AND b.id > :after
          AND NOT (a.id = ANY(:bad)) AND NOT (b.id = ANY(:bad))
          AND ST_Relate(a.geom, b.geom, '2********')
          AND ST_Area(ST_Intersection(a.geom, b.geom)) > :tol""", **ctx).all()
    if not pairs:
        return
    degree = defaultdict(int)
    for p in pairs:
        degree[p.a] += 1
        degree[p.b] += 1
    fit = dict(_exec(f"""
        SELECT f.id, coalesce(sum(ST_Length(ST_Intersection(ST_Boundary(f.geom),
                                                            ST_Boundary(n.geom)))), 0)
                     / nullif(ST_Perimeter(f.geom), 0)
        FROM import_feature f JOIN import_feature n ON n.batch_id = {b}
          AND n.id <> f.id AND n.geom && f.geom AND NOT (n.id = ANY(:bad))
        WHERE f.id = ANY(:ids) GROUP BY f.id""", ids=list(degree), bad=ctx["bad"]).all())
    blamed: dict[int, list] = defaultdict(list)
    for p in pairs:
        key_a = (-degree[p.a], fit.get(p.a) or 0)
        key_b = (-degree[p.b], fit.get(p.b) or 0)
        culprit, other, other_code = (p.a, p.b, p.cb) if key_a <= key_b else (p.b, p.a, p.ca)
        blamed[culprit].append((other_code, p.area, other))
    codes = dict(_exec("SELECT id, code FROM import_feature WHERE id = ANY(:ids)",
                       ids=list(blamed)).all())
    for fid, hits in blamed.items():
        detail = "overlaps " + ", ".join(f"{c} by {a:.2f} m²" for c, a, _ in hits)
        _exec("""
            INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
            SELECT :b, :f, 'overlap', :code, :detail,
                   ST_Transform(ST_PointOnSurface(ST_Intersection(a.geom, o.geom)), 4490)
            FROM import_feature a, import_feature o WHERE a.id = :f AND o.id = :o""",
              b=ctx["b"], f=fid, code=codes[fid], detail=detail, o=hits[0][2])


def _register_overlaps(ctx):
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
        SELECT x.batch_id, x.id, 'overlap_register', x.code,
               'overlaps registered parcel ' || x.other || ' by ' || round(x.area::numeric, 2)
               || ' m²', ST_Transform(ST_PointOnSurface(x.geom), 4490)
        FROM (SELECT f.batch_id, f.id, f.code, f.geom, p.code AS other,
                     overlap_m2_ng(f.geom_stored, p.geom, ST_SRID(f.geom)) AS area
              FROM import_feature f
              JOIN parcel p ON p.end_lifespan IS NULL AND p.geom && f.geom_stored
              WHERE {_pending()} AND NOT (f.id = ANY(:bad))) x
        WHERE x.area > :tol""", **ctx)


def _ids(ctx):
    """ID check digits of household heads (CBF), members (CBF_JTCY) and issuing-party leaders
    (FBF); one fault per household and number, whichever table carries it."""
    _exec("""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT DISTINCT ON (x.hh, x.num) :b, x.rid, 'bad_id_checksum', x.hh,
               x.who || ' ' || x.name || ' id ' || x.num
        FROM (
          SELECT r.id AS rid, r.attrs->>'CBFBM' AS hh, r.attrs->>'CYZJHM' AS num,
                 r.attrs->>'CYXM' AS name, 'member' AS who, 1 AS pri
          FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBF_JTCY'
            AND r.status = 'valid' AND r.id > :after_r AND coalesce(r.attrs->>'CYZJLX', '1') = '1'
          UNION ALL
          SELECT r.id, r.attrs->>'CBFBM', r.attrs->>'CBFZJHM', r.attrs->>'CBFMC', 'head', 2
          FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBF'
            AND r.status = 'valid' AND r.id > :after_r AND coalesce(r.attrs->>'CBFZJLX', '1') = '1'
          UNION ALL
          SELECT r.id, r.attrs->>'FBFBM', r.attrs->>'FZRZJHM', r.attrs->>'FBFFZRXM', 'leader', 3
          FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'FBF'
            AND r.status = 'valid' AND r.id > :after_r AND coalesce(r.attrs->>'FZRZJLX', '1') = '1'
        ) x
        WHERE coalesce(x.num, '') <> '' AND NOT gb11643_valid(upper(x.num))
        ORDER BY x.hh, x.num, x.pri""", **ctx)


def _households(ctx):
    # CBDKXX rows naming a household absent from CBF.
    _exec("""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'unknown_household', r.attrs->>'DKBM',
               'CBDKXX row names household ' || (r.attrs->>'CBFBM') || ', which is not in CBF'
        FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBDKXX'
          AND r.status = 'valid' AND r.id > :after_r
          AND NOT EXISTS (SELECT 1 FROM import_record h WHERE h.batch_id = r.batch_id
                          AND h.tbl = 'CBF' AND h.status <> 'superseded'
                          AND h.attrs->>'CBFBM' = r.attrs->>'CBFBM')
          AND NOT EXISTS (SELECT 1 FROM household h WHERE h.cbfbm = r.attrs->>'CBFBM')""", **ctx)
    # CBDKXX parcels with no geometry (unless a duplicate-coded feature explains them).
    _exec("""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'missing_geometry', r.attrs->>'DKBM',
               'listed in CBDKXX for household ' || (r.attrs->>'CBFBM') || ' but absent from the DK layer'
        FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBDKXX'
          AND r.status = 'valid' AND r.id > :after_r
          AND EXISTS (SELECT 1 FROM import_feature f WHERE f.batch_id = r.batch_id AND f.layer = 'DK')
          AND NOT EXISTS (SELECT 1 FROM import_feature f WHERE f.batch_id = r.batch_id
                          AND f.layer = 'DK' AND f.code = r.attrs->>'DKBM')
          AND NOT EXISTS (SELECT 1 FROM parcel p WHERE p.code = r.attrs->>'DKBM')
          AND NOT (r.attrs->>'DKBM' = ANY(:explained))""",
          b=ctx["b"], after_r=ctx["after_r"], explained=sorted(ctx["explained"]))
    # Household codes: 18 digits, within their issuing party, sequence in range of their type.
    _exec("""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'bad_code', r.attrs->>'CBFBM',
               'CBFBM must be FBFBM + a sequence in the range of its type (NY/T 2539-2016)'
        FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBF'
          AND r.status = 'valid' AND r.id > :after_r
          AND NOT (
          coalesce(r.attrs->>'CBFBM', '') ~ '^[0-9]{18}$' AND (
            (r.attrs->>'CBFLX' = '1' AND substr(r.attrs->>'CBFBM', 15) BETWEEN '0001' AND '8000') OR
            (r.attrs->>'CBFLX' = '2' AND substr(r.attrs->>'CBFBM', 15) BETWEEN '8001' AND '9000') OR
            (r.attrs->>'CBFLX' = '3' AND substr(r.attrs->>'CBFBM', 15) BETWEEN '9001' AND '9999')))
        """, **ctx)


def _homesteads(ctx):
    """One household, one homestead: the first homestead stays, each further one is at fault."""
    _exec("""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
        SELECT :b, x.id, 'two_homesteads', x.hh,
               'household holds ' || x.n || ' homestead parcels: ' || x.codes,
               ST_Transform(ST_PointOnSurface(x.geom), 4490)
        FROM (SELECT f.id, f.geom, f.attrs->>'CBFBM' AS hh,
                     row_number() OVER w AS k, count(*) OVER (PARTITION BY f.attrs->>'CBFBM') AS n,
                     string_agg(f.code, ', ') OVER (PARTITION BY f.attrs->>'CBFBM') AS codes
              FROM import_feature f WHERE f.batch_id = :b AND f.layer = 'ZJD'
                AND f.status = 'valid' AND f.id > :after AND coalesce(f.attrs->>'CBFBM', '') <> ''
              WINDOW w AS (PARTITION BY f.attrs->>'CBFBM' ORDER BY f.fid)) x
        WHERE x.n > 1 AND x.k > 1""", **ctx)
    _exec("""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
        SELECT :b, f.id, 'two_homesteads', f.attrs->>'CBFBM',
               'household already holds registered homestead ' || p.code,
               ST_Transform(ST_PointOnSurface(f.geom), 4490)
        FROM import_feature f JOIN parcel p ON p.kind = 'homestead' AND p.end_lifespan IS NULL
          AND p.household_code = f.attrs->>'CBFBM'
        WHERE f.batch_id = :b AND f.layer = 'ZJD' AND f.status = 'valid' AND f.id > :after""", **ctx)
