"""Registering validated survey data: collectives, households and members from the ownership
tables, parcels from the features — set-wise, under a table lock, with the overlap check redone
against the register inside the lock so that nothing registered in the meantime slips past.

The import owns its staging tables (import_record, import_feature, import_fault) and writes only
those; each register table is written by its owner's set-wise operation (divisions, collectives,
people, parcels), which reads the validated staging rows of the batch."""
from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.audit import operations as audit
from app.collectives import operations as collectives
from app.divisions import operations as divisions
from app.extensions import db
from app.parcels import operations as parcels
from app.people import operations as people


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
        divisions.ensure_village(code[:12], _village_name(a.get("FBFMC"), code[:12]))
        made["collectives"] += collectives.register_from_delivery(
            actor, code, a.get("FBFMC") or code, code[:12], a.get("FBFFZRXM"), a.get("FBFDZ"))
    made["households"] = people.insert_households_from_staging(b, record_ids)
    made["persons"] = people.insert_persons_from_staging(b, record_ids)
    made["members"] = people.insert_members_from_staging(b, record_ids)
    people.set_missing_heads()
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


def _refuse_late_overlaps(batch, only: str, ids: list[int]) -> list[int]:
    """The valid features overlapping a parcel registered since validation, reported as
    faults and set faulty (inside the register's lock); by the tolerance the database's
    check applies (the batch's, or the registry's if smaller)."""
    late = _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
        SELECT f.batch_id, f.id, 'overlap_register', f.code,
               'overlaps registered parcel ' || p.code || ' (registered meanwhile)',
               ST_PointOnSurface(t.g)
        FROM import_feature f CROSS JOIN LATERAL (SELECT f.geom_stored AS g) t
        JOIN parcel p ON p.end_lifespan IS NULL AND p.geom && t.g
        WHERE f.batch_id = :b AND f.status = 'valid' {only}
          AND overlap_area_m2(t.g, p.geom, ST_SRID(f.geom)) > least(:tol, coalesce((
            SELECT value::float8 FROM registry_setting WHERE key = 'overlap_tolerance_m2'), 1.0))
        RETURNING feature_id""", b=batch.id, ids=ids,
                 tol=float(batch.tolerance_m2)).scalars().all()
    if late:
        _exec("UPDATE import_feature SET status = 'faulty' WHERE id = ANY(:late)", late=late)
    return late


def register_features(actor, batch, feature_ids: list[int] | None = None) -> dict:
    """Valid features → current parcels, under a SHARE ROW EXCLUSIVE lock on the register.

    The database's bulk insert (parcel_register_staged, 0041_bulk) checks every inserted
    parcel against the register and the others inside the lock and refuses the whole insert
    on an overlap.  Validation found the batch's faults against the register as it then
    was; only a parcel registered since can still collide, and then — the insert undone to
    its savepoint — the features lying on such parcels are reported as faults and set
    faulty, and the rest registered.  (The re-check used to run on every registration; it
    now runs only when the database finds something.)"""
    b = batch.id
    only = "AND f.id = ANY(:ids)" if feature_ids else ""
    ids = feature_ids or []
    _exec("SET LOCAL jit = off")  # PostGIS functions are not compiled; see imports.validation
    parcels.lock_register()
    collectives.insert_homestead_collectives_from_staging(b)
    late: list[int] = []
    try:
        with db.session.begin_nested():
            n = parcels.insert_from_staging(actor, b, feature_ids, float(batch.tolerance_m2))
    except DBAPIError as e:
        if getattr(e.orig, "sqlstate", None) != "23P01":  # exclusion_violation: parcel.overlap
            raise
        late = _refuse_late_overlaps(batch, only, ids)
        if not late:
            raise  # not a parcel registered meanwhile: the staging is not what was validated
        n = parcels.insert_from_staging(actor, b, feature_ids, float(batch.tolerance_m2))
    # the parcel's county named here (the composite foreign key checks it), so the trigger
    # that would look it up per row has nothing to do (migration 0041_citus2)
    _exec(f"""UPDATE import_feature f SET status = 'registered', parcel_id = p.id,
                     parcel_county_code = p.county_code
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
