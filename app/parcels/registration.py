"""Registering validated survey data: collectives, households and members from the ownership
tables, parcels from the features — set-wise, under a table lock, with the overlap check redone
against the register inside the lock so that nothing registered in the meantime slips past."""
from __future__ import annotations

import re

from sqlalchemy import text

from app.audit import operations as audit
from app.extensions import db

# Area in the survey's Gauss-Krüger 3-degree zone: the survey CRS when it is such a zone,
# otherwise the zone of the parcel's longitude (CGCS2000 EPSG:4534–4554).
ZONE_SRID_SQL = """CASE WHEN ST_SRID({g}) BETWEEN 4513 AND 4554 THEN ST_SRID({g})
  ELSE 4509 + floor((ST_X(ST_Centroid(ST_Transform({g}, 4490))) + 1.5) / 3)::int END"""


def _exec(sql: str, **params):
    return db.session.execute(text(sql), params)


def _village_name(fbfmc: str | None, fallback: str) -> str:
    if not fbfmc:
        return fallback
    m = re.search(r"([^区县市镇乡]+村)", fbfmc)
    return m.group(1) if m else fbfmc


def register_ownership(actor, batch, record_ids: list[int] | None = None) -> dict:
    """FBF → divisions and collectives; CBF → households (and heads); CBF_JTCY → persons and
    household members.  CBHT and CBDKXX rows are kept for the rights register."""
    only = "AND r.id = ANY(:ids)" if record_ids else ""
    ids = record_ids or []
    b = batch.id
    fbf = _exec(f"""SELECT r.id, r.attrs FROM import_record r WHERE r.batch_id = :b
                    AND r.tbl = 'FBF' AND r.status = 'valid' {only}""", b=b, ids=ids).all()
    made = {"collectives": 0, "households": 0, "persons": 0, "members": 0}
    for _rid, a in fbf:
        code = a["FBFBM"]
        township, village = code[:9], code[:12]
        _exec("""INSERT INTO division (code, name, level, parent_code)
                 SELECT :t, :tn, 'township', CAST(:c AS varchar)
                 WHERE EXISTS (SELECT 1 FROM division WHERE code = CAST(:c AS varchar))
                 ON CONFLICT DO NOTHING""", t=township, tn=f"乡镇{township}", c=code[:6])
        _exec("""INSERT INTO division (code, name, level, parent_code) VALUES (:v, :vn, 'village', :t)
                 ON CONFLICT DO NOTHING""", v=village, vn=_village_name(a.get("FBFMC"), village),
              t=township)
        n = _exec("""INSERT INTO collective (fbfbm, name, village_code, leader_name, address)
                     VALUES (:f, :n, :v, :l, :addr) ON CONFLICT (fbfbm) DO NOTHING""",
                  f=code, n=a.get("FBFMC") or code, v=village, l=a.get("FBFFZRXM"),
                  addr=a.get("FBFDZ")).rowcount
        made["collectives"] += n
    made["households"] = _exec(f"""
        INSERT INTO household (cbfbm, collective_id, cbflx, name, address, phone)
        SELECT r.attrs->>'CBFBM', c.id, r.attrs->>'CBFLX', r.attrs->>'CBFMC', r.attrs->>'CBFDZ',
               r.attrs->>'LXDH'
        FROM import_record r JOIN collective c ON c.fbfbm = substr(r.attrs->>'CBFBM', 1, 14)
        WHERE r.batch_id = :b AND r.tbl = 'CBF' AND r.status = 'valid' {only}
        ON CONFLICT (cbfbm) DO NOTHING""", b=b, ids=ids).rowcount
    # Persons: every member with a valid resident ID (household heads are members too).
    made["persons"] = _exec(f"""
        INSERT INTO person (id_number, name, sex, birth_date, hukou_division_code, hukou_address)
        SELECT DISTINCT ON (upper(r.attrs->>'CYZJHM')) upper(r.attrs->>'CYZJHM'), r.attrs->>'CYXM',
               CASE WHEN substr(r.attrs->>'CYZJHM', 17, 1)::int % 2 = 1 THEN '1' ELSE '2' END,
               to_date(substr(r.attrs->>'CYZJHM', 7, 8), 'YYYYMMDD'),
               (SELECT code FROM division WHERE code = substr(r.attrs->>'CBFBM', 1, 12)),
               h.attrs->>'CBFDZ'
        FROM import_record r LEFT JOIN import_record h ON h.batch_id = r.batch_id
          AND h.tbl = 'CBF' AND h.status <> 'superseded' AND h.attrs->>'CBFBM' = r.attrs->>'CBFBM'
        WHERE r.batch_id = :b AND r.tbl = 'CBF_JTCY' AND r.status = 'valid' {only}
          AND coalesce(r.attrs->>'CYZJLX', '1') = '1'
        ON CONFLICT (id_number) DO NOTHING""", b=b, ids=ids).rowcount
    made["members"] = _exec(f"""
        INSERT INTO household_member (household_id, person_id, relation, is_coholder, remark)
        SELECT h.id, p.id, r.attrs->>'YHZGX', coalesce(r.attrs->>'SFGYR', '1') = '1',
               nullif(r.attrs->>'CYBZ', '')
        FROM import_record r JOIN household h ON h.cbfbm = r.attrs->>'CBFBM'
        JOIN person p ON p.id_number = upper(r.attrs->>'CYZJHM')
        WHERE r.batch_id = :b AND r.tbl = 'CBF_JTCY' AND r.status = 'valid' {only}
          AND NOT EXISTS (SELECT 1 FROM household_member m WHERE m.household_id = h.id
                          AND m.person_id = p.id AND m.left_on IS NULL)""", b=b, ids=ids).rowcount
    _exec("""UPDATE household h SET head_person_id = m.person_id FROM household_member m
             WHERE m.household_id = h.id AND m.relation = '02' AND h.head_person_id IS NULL""")
    # Registered only what the register now holds (the import's safety net reports the rest).
    _exec(f"""UPDATE import_record r SET status = 'registered' WHERE r.batch_id = :b
              AND r.status = 'valid' {only} AND CASE r.tbl
                WHEN 'FBF' THEN EXISTS (SELECT 1 FROM collective c
                                        WHERE c.fbfbm = r.attrs->>'FBFBM')
                WHEN 'CBF' THEN EXISTS (SELECT 1 FROM household h
                                        WHERE h.cbfbm = r.attrs->>'CBFBM')
                WHEN 'CBF_JTCY' THEN EXISTS (
                  SELECT 1 FROM household_member m JOIN household h ON h.id = m.household_id
                  JOIN person p ON p.id = m.person_id WHERE h.cbfbm = r.attrs->>'CBFBM'
                    AND p.id_number = upper(r.attrs->>'CYZJHM') AND m.left_on IS NULL)
                ELSE true END""", b=b, ids=ids)
    return made


def register_features(actor, batch, feature_ids: list[int] | None = None) -> dict:
    """Valid features → current parcels, under a SHARE ROW EXCLUSIVE lock on the register."""
    b = batch.id
    only = "AND f.id = ANY(:ids)" if feature_ids else ""
    ids = feature_ids or []
    _exec("SET LOCAL jit = off")  # PostGIS functions are not compiled; see imports.validation
    _exec("LOCK TABLE parcel IN SHARE ROW EXCLUSIVE MODE")
    # Re-check, inside the lock, against everything registered since validation.
    late = _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
        SELECT f.batch_id, f.id, 'overlap_register', f.code,
               'overlaps registered parcel ' || p.code || ' (registered meanwhile)',
               ST_PointOnSurface(t.g)
        FROM import_feature f CROSS JOIN LATERAL (SELECT f.geom_stored AS g) t
        JOIN parcel p ON p.end_lifespan IS NULL AND p.geom && t.g
        WHERE f.batch_id = :b AND f.status = 'valid' {only}
          AND overlap_m2_ng(t.g, p.geom, ST_SRID(f.geom)) > :tol
        RETURNING feature_id""", b=b, ids=ids, tol=float(batch.tolerance_m2)).scalars().all()
    if late:
        _exec("UPDATE import_feature SET status = 'faulty' WHERE id = ANY(:late)", late=late)
    _exec("""INSERT INTO collective (fbfbm, name, village_code)
             SELECT DISTINCT substr(f.code, 1, 12) || '00', d.name || '集体经济组织', d.code
             FROM import_feature f JOIN division d ON d.code = substr(f.code, 1, 12)
             WHERE f.batch_id = :b AND f.layer = 'ZJD' AND f.status = 'valid'
               AND coalesce(f.attrs->>'FBFBM', '') = ''
             ON CONFLICT (fbfbm) DO NOTHING""", b=b)
    _exec("SET LOCAL sanquan.bulk_checked = 'on'")
    zone = ZONE_SRID_SQL.format(g="f.geom")
    n = _exec(f"""
        INSERT INTO parcel (kind, code, collective_id, household_code, name, syqxz, dklb, tdlylx,
          dldj, tdyt, sfjbnt, scmj, scmjm, east, south, west, north, witness, remarks,
          survey_srid, geom, attrs, import_batch_id, change_kind, change_reason, changed_by)
        SELECT CASE f.layer WHEN 'DK' THEN 'contract' ELSE 'homestead' END, f.code, c.id,
               CASE f.layer WHEN 'DK' THEN hh.cbfbm ELSE nullif(f.attrs->>'CBFBM', '') END,
               f.attrs->>'DKMC', coalesce(f.attrs->>'SYQXZ', '30'), f.attrs->>'DKLB',
               f.attrs->>'TDLYLX', f.attrs->>'DLDJ', coalesce(f.attrs->>'TDYT', '5'),
               f.attrs->>'SFJBNT', round(a.m2::numeric, 2), round(round(a.m2::numeric, 2) * 0.0015, 2),
               f.attrs->>'DKDZ', f.attrs->>'DKNZ', f.attrs->>'DKXZ', f.attrs->>'DKBZ',
               f.attrs->>'ZJRXM', f.attrs->>'DKBZXX', a.zone,
               ST_Multi(f.geom_stored), f.attrs, f.batch_id, 'register',
               'survey import ' || f.batch_id, :who
        FROM import_feature f
        CROSS JOIN LATERAL (SELECT {zone} AS zone) z
        CROSS JOIN LATERAL (SELECT z.zone AS zone,
            CASE WHEN ST_SRID(f.geom) = z.zone THEN ST_Area(f.geom)
                 ELSE ST_Area(ST_Transform(f.geom, z.zone)) END AS m2) a
        -- Each parcel's household from CBDKXX, gathered once and joined by hash (a lateral
        -- lookup per parcel scanned the batch's CBDKXX rows for every parcel: 32,000 parcels
        -- of a complete delivery took minutes — bench/, issue 18).
        LEFT JOIN (
            SELECT DISTINCT ON (r.attrs->>'DKBM') r.attrs->>'DKBM' AS dkbm,
                   r.attrs->>'CBFBM' AS cbfbm
            FROM import_record r JOIN household h ON h.cbfbm = r.attrs->>'CBFBM'
            WHERE r.batch_id = :b AND r.tbl = 'CBDKXX' AND r.status <> 'superseded'
            ORDER BY r.attrs->>'DKBM', r.id) hh ON f.layer = 'DK' AND hh.dkbm = f.code
        JOIN collective c ON c.fbfbm = CASE
            WHEN f.layer = 'DK' THEN substr(f.code, 1, 14)
            WHEN coalesce(f.attrs->>'FBFBM', '') <> '' THEN f.attrs->>'FBFBM'
            ELSE substr(f.code, 1, 12) || '00' END
        WHERE f.batch_id = :b AND f.status = 'valid' {only}""",
              b=b, ids=ids, who=getattr(actor, "username", actor or "system")).rowcount
    _exec("SET LOCAL sanquan.bulk_checked = 'off'")
    if n > 1000:
        _exec("SELECT refresh_statistics('parcel')")  # by the owner: fresh statistics, or the
        # planner may leave the spatial index
    _exec(f"""UPDATE import_feature f SET status = 'registered', parcel_id = p.id
              FROM parcel p WHERE p.import_batch_id = f.batch_id AND p.code = f.code
                AND p.end_lifespan IS NULL AND f.batch_id = :b AND f.status = 'valid' {only}""",
          b=b, ids=ids)
    return {"parcels": n, "refused_late": len(late)}


def register_batch(actor, batch, feature_ids=None, record_ids=None) -> dict:
    out = {}
    if feature_ids is None:
        out.update(register_ownership(actor, batch, record_ids))
    if record_ids is None:
        out.update(register_features(actor, batch, feature_ids))
    audit.record(actor, "parcel.register_batch", "import_batch", batch.id, out,
                 f"survey import {batch.source}")
    return out
