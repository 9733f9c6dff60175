"""Survey import: stage a delivery, validate it, accept it in whole or in part, correct and
re-submit what waits in quarantine.  Nothing delivered is ever lost: every feature and row stays
in the staging tables with its status, and registered parcels point back to their batch."""
from __future__ import annotations

import contextlib
import csv
import gc
import io
import json
from pathlib import Path

import orjson
import shapely
from flask_babel import lazy_gettext as _l
from psycopg.types.json import Jsonb
from sqlalchemy import select, text

from app.audit import operations as audit
from app.errors import DomainError, Rule
from app.extensions import db
from app.parcels.models import RegistrySetting
from gis import io as gio

from . import validation
from .models import ImportBatch, ImportFault, ImportFeature, ImportRecord

NYT = _l("NY/T 2539-2016; domain.md §4 (an import must know its CRS)")
CRS_UNKNOWN = Rule("import.crs_unknown",
                   _l("The file %(path)s says nothing of its coordinate reference system; "
                      "declare it (e.g. EPSG:4547)."), NYT)
CRS_IMPLAUSIBLE = Rule("import.crs_implausible",
                       _l("The coordinates of the delivery (%(bounds)s) cannot lie in EPSG:%(srid)s "
                          "(area of use: %(area)s). Check the declared CRS: eastings with the zone "
                          "prefix 38 are EPSG:4526, without it EPSG:4547."), NYT)
CRS_CONFLICT = Rule("import.crs_conflict",
                    _l("The file says EPSG:%(file)s but EPSG:%(declared)s was declared."), NYT)
ENCODING_UNKNOWN = Rule("import.encoding_unknown",
                        _l("The shapefile %(path)s has no .cpg file: declare its encoding "
                           "(Chinese survey shapefiles are usually GBK)."), NYT)
LAYER_UNKNOWN = Rule("import.layer_unknown",
                     _l("Layer %(layer)s is neither a contract-parcel (DK) nor a homestead (ZJD) "
                        "layer."), NYT)
NOTHING = Rule("import.empty", _l("The delivery holds no parcel layer."), NYT)
NOT_VALIDATED = Rule("import.state",
                     _l("This batch is %(status)s; only a validated batch can be accepted."), NYT,
                     409)
HAS_FAULTS = Rule("import.faults",
                  _l("The delivery has %(n)s fault(s); accept the valid part, or correct them first."),
                  NYT, 409)
NOT_QUARANTINED = Rule("import.not_quarantined",
                       _l("Only a feature waiting in quarantine can be corrected."), NYT, 409)

COPY_CHUNK = 20000


class EWKB(bytes):
    """Extended WKB, sent to PostGIS in binary COPY."""


def _dumps(obj) -> bytes:
    """JSON for staged attributes: orjson (UTF-8, about 15× faster than json.dumps)."""
    return orjson.dumps(obj, default=str)


def _binary_geometry(conn) -> int:
    """Teach this connection to send EWKB bytes as PostGIS geometry in binary format."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format
    from psycopg.types import TypeInfo

    info = TypeInfo.fetch(conn, "geometry")

    class GeometryBinaryDumper(Dumper):
        format = Format.BINARY
        oid = info.oid

        def dump(self, obj):
            return bytes(obj)

    conn.adapters.register_dumper(EWKB, GeometryBinaryDumper)
    return info.oid


def setting(key: str, default: float) -> float:
    row = db.session.get(RegistrySetting, key)
    return float(row.value) if row else default


def _refuse_crs(e: gio.CrsError):
    i = e.info
    if e.reason == "crs_unknown":
        raise DomainError(CRS_UNKNOWN, path=Path(i["path"]).name)
    if e.reason == "implausible":
        b = ", ".join(f"{v:.1f}" for v in i["bounds"])
        area = f"{i['name']} {', '.join(f'{v:.2f}' for v in i['area'])}"
        raise DomainError(CRS_IMPLAUSIBLE, bounds=b, srid=i["srid"], area=area)
    if e.reason == "crs_conflict":
        raise DomainError(CRS_CONFLICT, file=i["file"], declared=i["declared"])
    if e.reason == "encoding_unknown":
        raise DomainError(ENCODING_UNKNOWN, path=Path(i["path"]).name)
    raise DomainError(LAYER_UNKNOWN, layer=i.get("layer", "?"))


def read(path: Path, declared_srid: int | None = None, encoding: str | None = None):
    try:
        delivery = gio.read_delivery(Path(path), declared_srid, encoding)
    except gio.CrsError as e:
        _refuse_crs(e)
    if not delivery.layers:
        raise DomainError(NOTHING)
    return delivery


@contextlib.contextmanager
def _gc_paused():
    """Staging makes hundreds of thousands of short-lived objects and no reference cycles; the
    cyclic collector would walk all of them again and again (~0.5 s of 100k parcels here)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _copy(batch: ImportBatch, delivery, total: int, progress=None) -> None:
    """COPY the delivery, exactly as delivered, into import_feature and import_record."""
    done = 0
    raw = db.session.connection().connection.driver_connection
    geometry_oid = _binary_geometry(raw)
    with raw.cursor() as cur:
        for layer in delivery.layers:
            geoms = layer.geometries()
            delivered = shapely.to_wkb(geoms, include_srid=True)
            stored = shapely.to_wkb(gio.to_cgcs2000(geoms, layer.srid), include_srid=True)
            code_field = "DKBM" if layer.kind == "DK" else "BDCDYH"
            # Binary COPY: geometries go as EWKB bytes, no hex round trip.
            with cur.copy("COPY import_feature (batch_id, layer, fid, code, attrs, geom, "
                          "geom_stored, status) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int4", "varchar", "int4", "varchar", "jsonb", geometry_oid,
                              geometry_oid, "varchar"])
                for i, (fid, attrs, _) in enumerate(layer.rows()):
                    code = attrs.get(code_field)
                    cp.write_row((batch.id, layer.kind, fid, str(code).strip() if code else None,
                                  Jsonb(attrs, dumps=_dumps), EWKB(delivered[i]),
                                  EWKB(stored[i]), "valid"))
                    done += 1
                    if progress and done % COPY_CHUNK == 0:
                        progress(done, total, f"staging {layer.name}")
        for tbl, rows in delivery.tables.items():
            with cur.copy("COPY import_record (batch_id, tbl, rownum, attrs, status) "
                          "FROM STDIN") as cp:
                for n, row in enumerate(rows, start=1):
                    cp.write_row((batch.id, tbl, n, json.dumps(row, ensure_ascii=False),
                                  "valid"))
            done += len(rows)


def stage(actor, path: Path, declared_srid: int | None = None, encoding: str | None = None,
          tolerance_m2: float | None = None, progress=None, job_id: int | None = None
          ) -> ImportBatch:
    """Read a delivery and copy it, exactly as delivered, into the staging tables."""
    with _gc_paused():
        delivery = read(path, declared_srid, encoding)
        srids = {layer.srid for layer in delivery.layers}
        batch = ImportBatch(
            source=Path(path).name, srid=min(srids), crs_from=delivery.layers[0].crs_from,
            encoding=encoding or "cpg", created_by=getattr(actor, "username", actor or "system"),
            tolerance_m2=tolerance_m2 if tolerance_m2 is not None else setting(
                "overlap_tolerance_m2", 1.0), job_id=job_id)
        db.session.add(batch)
        db.session.flush()
        total = delivery.feature_count + sum(len(v) for v in delivery.tables.values())
        _copy(batch, delivery, total, progress)
    batch.counts = {"features": delivery.feature_count,
                    "layers": {x.name: len(x) for x in delivery.layers},
                    "tables": {k: len(v) for k, v in delivery.tables.items()}}
    db.session.execute(text("SELECT refresh_statistics('import_feature')"))  # as the owner
    audit.record(actor, "import.stage", "import_batch", batch.id,
                 {"source": batch.source, "srid": batch.srid, "crs_from": batch.crs_from,
                  **batch.counts}, None)
    if progress:
        progress(total, total, "staged")
    return batch


def _checked_upto(batch: ImportBatch) -> tuple[int, int]:
    c = batch.counts.get("checked_upto") or [0, 0]
    return int(c[0]), int(c[1])


def _mark_checked(batch: ImportBatch) -> None:
    top = db.session.execute(text(
        "SELECT (SELECT coalesce(max(id), 0) FROM import_feature WHERE batch_id = :b), "
        "(SELECT coalesce(max(id), 0) FROM import_record WHERE batch_id = :b)"),
        {"b": batch.id}).one()
    batch.counts = {**batch.counts, "checked_upto": [top[0], top[1]]}


def _revalidate(batch: ImportBatch) -> dict:
    found = validation.validate(batch.id, float(batch.tolerance_m2),
                                setting("area_tolerance_m2", 1.0),
                                checked_upto=_checked_upto(batch))
    _mark_checked(batch)
    return found


def validate(batch: ImportBatch, progress=None) -> dict:
    found = validation.validate(batch.id, float(batch.tolerance_m2),
                                setting("area_tolerance_m2", 1.0), progress,
                                checked_upto=_checked_upto(batch))
    _mark_checked(batch)
    batch.status = "validated"
    batch.counts = {**batch.counts, "faults": found, "fault_total": sum(found.values())}
    db.session.flush()
    return found


def run(actor, path: Path, declared_srid=None, encoding=None, tolerance_m2=None, progress=None,
        job_id=None) -> ImportBatch:
    """Stage and validate in one go (the CLI and the background job)."""
    batch = stage(actor, path, declared_srid, encoding, tolerance_m2, progress, job_id)
    db.session.commit()
    validate(batch, lambda i, n, what: progress and progress(i, n, f"checking: {what}"))
    audit.record(actor, "import.validate", "import_batch", batch.id, batch.counts.get("faults"))
    db.session.commit()
    return batch


def faults(batch_id: int, open_only: bool = True) -> list[ImportFault]:
    q = select(ImportFault).where(ImportFault.batch_id == batch_id)
    if open_only:
        q = q.where(ImportFault.resolved_at.is_(None))
    return list(db.session.scalars(q.order_by(ImportFault.rule, ImportFault.code)))


def report_csv(batch_id: int) -> str:
    rows = db.session.execute(text("""
        SELECT x.rule, x.code, x.detail, f.layer, f.fid, r.tbl, r.rownum,
               ST_X(x.location) AS lon, ST_Y(x.location) AS lat,
               CASE WHEN x.resolved_at IS NULL THEN 'open' ELSE 'resolved' END AS state
        FROM import_fault x LEFT JOIN import_feature f ON f.id = x.feature_id
        LEFT JOIN import_record r ON r.id = x.record_id
        WHERE x.batch_id = :b ORDER BY x.rule, x.code"""), {"b": batch_id}).all()
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["rule", "rule_zh", "code", "detail", "layer", "fid", "table", "row", "lon", "lat",
                "state", "source"])
    for r in rows:
        zh, _en, src = validation.RULES.get(r.rule, (r.rule, r.rule, ""))
        w.writerow([r.rule, zh, r.code, r.detail, r.layer or "", r.fid if r.fid is not None else "",
                    r.tbl or "", r.rownum or "", f"{r.lon:.7f}" if r.lon is not None else "",
                    f"{r.lat:.7f}" if r.lat is not None else "", r.state, src])
    return out.getvalue()


def accept(actor, batch: ImportBatch, valid_part: bool = False, reason: str | None = None) -> dict:
    """Register the delivery.  With faults, only when `valid_part` is asked for: the valid
    features are registered and the faulty ones wait in quarantine."""
    if batch.status != "validated":
        raise DomainError(NOT_VALIDATED, status=batch.status)
    open_faults = db.session.scalar(text(
        "SELECT count(*) FROM import_fault WHERE batch_id = :b AND resolved_at IS NULL"),
        {"b": batch.id})
    if open_faults and not valid_part:
        raise DomainError(HAS_FAULTS, n=open_faults)
    from app.parcels import registration

    result = registration.register_batch(actor, batch)
    db.session.execute(text("UPDATE import_feature SET status = 'quarantined' "
                            "WHERE batch_id = :b AND status = 'faulty'"), {"b": batch.id})
    db.session.execute(text("UPDATE import_record SET status = 'quarantined' "
                            "WHERE batch_id = :b AND status = 'faulty'"), {"b": batch.id})
    quarantined = db.session.scalar(text(
        "SELECT count(*) FROM import_feature WHERE batch_id = :b AND status = 'quarantined'"),
        {"b": batch.id})
    batch.status = "partly_accepted" if open_faults else "accepted"
    batch.counts = {**batch.counts, "registered": result, "quarantined": quarantined}
    audit.record(actor, "import.accept", "import_batch", batch.id,
                 {"registered": result, "quarantined": quarantined, "valid_part": valid_part},
                 reason)
    return {**result, "quarantined": quarantined}


def correct_feature(actor, feature: ImportFeature, attrs: dict | None = None,
                    wkt: str | None = None, reason: str | None = None) -> ImportFeature:
    """Correct a quarantined feature and re-submit it: a new staged feature replaces it (the
    old one stays, superseded), is validated against the register, and registered if valid."""
    if feature.status != "quarantined":
        raise DomainError(NOT_QUARANTINED)
    new_attrs = {**feature.attrs, **(attrs or {})}
    code_field = "DKBM" if feature.layer == "DK" else "BDCDYH"
    fixed = ImportFeature(batch_id=feature.batch_id, layer=feature.layer, fid=feature.fid,
                          code=str(new_attrs.get(code_field) or feature.code),
                          attrs=new_attrs, status="valid", corrected_from_id=feature.id)
    db.session.add(fixed)
    db.session.flush()
    geom_sql = ("ST_GeomFromText(:wkt, ST_SRID(o.geom))" if wkt else "o.geom")
    db.session.execute(text(f"UPDATE import_feature n SET geom = {geom_sql} FROM import_feature o "
                            "WHERE n.id = :n AND o.id = :o"),
                       {"n": fixed.id, "o": feature.id, "wkt": wkt})
    db.session.execute(text(f"UPDATE import_feature SET geom_stored = "
                            f"{validation.STORED.format(g='geom')} WHERE id = :n"),
                       {"n": fixed.id})
    feature.status = "superseded"
    db.session.execute(text("UPDATE import_fault SET resolved_at = now() WHERE feature_id = :f"),
                       {"f": feature.id})
    db.session.flush()
    audit.record(actor, "import.correct", "import_feature", fixed.id,
                 {"replaces": feature.id, "attrs": attrs or {}, "geometry_changed": bool(wkt)},
                 reason)
    return _resubmit(actor, fixed, feature_ids=[fixed.id])


def _resubmit(actor, fixed, feature_ids=None, record_ids=None):
    """Check a corrected feature or row against the batch and the register; register it when
    it passes, else it waits in quarantine with its new faults."""
    from app.parcels import registration

    batch = db.session.get(ImportBatch, fixed.batch_id)
    _revalidate(batch)
    db.session.refresh(fixed)
    if fixed.status == "valid":
        registration.register_batch(actor, batch, feature_ids=feature_ids,
                                    record_ids=record_ids)
        db.session.refresh(fixed)
    if fixed.status != "registered":
        fixed.status = "quarantined"
    db.session.flush()
    return fixed


def correct_record(actor, record: ImportRecord, attrs: dict, reason: str | None = None
                   ) -> ImportRecord:
    """Correct a quarantined ownership row (e.g. an ID number) and re-submit it."""
    if record.status != "quarantined":
        raise DomainError(NOT_QUARANTINED)
    fixed = ImportRecord(batch_id=record.batch_id, tbl=record.tbl, rownum=record.rownum,
                         attrs={**record.attrs, **attrs}, status="valid")
    db.session.add(fixed)
    record.status = "superseded"
    db.session.execute(text("UPDATE import_fault SET resolved_at = now() WHERE record_id = :r"),
                       {"r": record.id})
    db.session.flush()
    audit.record(actor, "import.correct_record", "import_record", fixed.id,
                 {"replaces": record.id, "table": record.tbl, "fields": sorted(attrs)}, reason)
    return _resubmit(actor, fixed, record_ids=[fixed.id])


def progress_of(batch: ImportBatch) -> dict:
    rows = dict(db.session.execute(text(
        "SELECT status, count(*) FROM import_feature WHERE batch_id = :b GROUP BY status"),
        {"b": batch.id}).all())
    return rows


__all__ = ["stage", "validate", "run", "accept", "correct_feature", "correct_record", "faults",
           "report_csv"]
