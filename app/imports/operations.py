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
import psycopg
import pyogrio
import shapely
from flask import current_app
from flask_babel import lazy_gettext as _l
from psycopg.types.json import Jsonb
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.access import reaches
from app.audit import operations as audit
from app.divisions.models import Division
from app.errors import DomainError, Rule
from app.extensions import db
from app.grounds import guard_text
from app.parcels.models import RegistrySetting
from app.security import csv_writer
from gis import io as gio
from gis.stored import STORED

from . import queries, registration, uploads, validation
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
ENCODING_MISMATCH = Rule("import.encoding_mismatch",
                         _l("The text of %(path)s is %(found)s, but %(declared)s is declared (by "
                            "its .cpg or by you); nothing was staged. Declare the encoding the "
                            "file is really in."), NYT)
ENCODING_UNSUPPORTED = Rule("import.encoding_unsupported",
                            _l("The .cpg of %(path)s declares the encoding %(declared)s, which "
                               "the import does not read; nothing was staged. Declare UTF-8 or "
                               "GBK (GB18030), the encodings of Chinese survey deliveries."), NYT)
LAYER_UNKNOWN = Rule("import.layer_unknown",
                     _l("Layer %(layer)s is neither a contract-parcel (DK) nor a homestead (ZJD) "
                        "layer."), NYT)
REG = _l("不动产登记暂行条例 第七条 (registration where the property lies, by its authority); "
         "NY/T 2539-2016")
SECURITY = _l("网络安全法 第二十一条 (network security obligations); NY/T 2539-2016 data formats")
OUT_OF_JURISDICTION = Rule(
    "import.out_of_jurisdiction",
    _l("The delivery lies in district(s) %(districts)s, outside your jurisdiction %(mine)s; "
       "nothing was staged. A land bureau imports only deliveries of the districts it serves."),
    REG, 403)
NO_DISTRICT = Rule("import.no_district",
                   _l("No parcel, homestead or issuing-party code of the delivery says which "
                      "district it belongs to; nothing was staged."), REG)
UNSAFE_FILE = Rule("import.unsafe_file",
                   _l("The file %(name)s is refused: %(reason)s. Only Shapefile, GeoPackage, "
                      "GeoJSON and CSV files are opened, and each must be what its name says."),
                   SECURITY)
UNREADABLE = Rule("import.unreadable",
                  _l("The file %(name)s could not be read (%(reason)s); check that it is a "
                     "complete Shapefile, GeoPackage or GeoJSON file."), NYT)
NOTHING = Rule("import.empty", _l("The delivery holds no parcel layer."), NYT)
NOT_VALIDATED = Rule("import.state",
                     _l("This batch is %(status)s; only a validated batch can be accepted."), NYT,
                     409)
HAS_FAULTS = Rule("import.faults",
                  _l("The delivery has %(n)s fault(s); accept the valid part, or correct them first."),
                  NYT, 409)
JOB_FAILED = Rule("import.job_failed",
                  _l("The import stopped on an unexpected error (job %(ref)s); it is logged for "
                     "the administrator. Nothing was registered."), NYT, 500)
ACCEPT_FAILED = Rule("import.accept_failed",
                     _l("Acceptance failed and nothing of the batch was registered (%(what)s); "
                        "the failure is in the report."), NYT, 409)
DUPLICATE_TABLE = Rule("import.duplicate_table",
                       _l("Table %(table)s is delivered twice (%(files)s); nothing was staged. "
                          "Deliver each table once."), NYT)
BAD_WKT = Rule("import.bad_wkt",
               _l("The geometry could not be read (%(reason)s); give it as WKT in the layer's "
                  "coordinate system EPSG:%(srid)s, e.g. POLYGON((x y, …))."), NYT, 400)
CORRECTION_OUT_OF_JURISDICTION = Rule(
    "import.correction_out_of_jurisdiction",
    _l("The correction names code(s) of district(s) %(districts)s, outside your jurisdiction "
       "%(mine)s; nothing was changed."), REG, 403)
BAD_ATTRS = Rule("import.bad_attrs",
                 _l("The attributes must be a JSON object of texts, numbers or nulls (%(why)s)."),
                 NYT, 400)
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
    if e.reason == "encoding_unsupported":
        raise DomainError(ENCODING_UNSUPPORTED, path=Path(i["path"]).name, declared=i["declared"])
    if e.reason == "encoding_mismatch":
        raise DomainError(ENCODING_MISMATCH, path=Path(i["path"]).name, found=i["found"],
                          declared=i["declared"])
    raise DomainError(LAYER_UNKNOWN, layer=i.get("layer", "?"))


def limits() -> gio.Limits:
    cfg = current_app.config
    return gio.Limits(max_vertices=int(cfg.get("IMPORT_MAX_VERTICES", 100_000)),
                      max_extent_m=float(cfg.get("IMPORT_MAX_EXTENT_M", 20_000)))


def read(path: Path, declared_srid: int | None = None, encoding: str | None = None):
    try:
        delivery = gio.read_delivery(Path(path), declared_srid, encoding, limits())
    except gio.CrsError as e:
        _refuse_crs(e)
    except gio.UnsafeFile as e:
        raise DomainError(UNSAFE_FILE, name=Path(e.path).name, reason=e.reason) from None
    except gio.DuplicateTable as e:
        raise DomainError(DUPLICATE_TABLE, table=e.table, files=", ".join(e.paths)) from None
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
            pyogrio.errors.FieldError, pyogrio.errors.GeometryError, OSError,
            csv.Error, UnicodeError) as e:
        name = getattr(e, "filename", None) or Path(path).name
        raise DomainError(UNREADABLE, name=Path(str(name)).name,
                          reason=type(e).__name__) from None
    if not delivery.layers:
        raise DomainError(NOTHING)
    return delivery


def current_district(code: str) -> str:
    """The district that serves a district code today: data surveyed before the 2018
    reorganisation carries retired codes (140421 长治县 → 140404 上党区, domain.md §3)."""
    seen = set()
    while code not in seen:
        seen.add(code)
        div = db.session.get(Division, code)
        if div is None or not div.successor_code:
            return code
        code = div.successor_code
    return code


def check_jurisdiction(actor, delivery) -> None:
    """The delivery's districts must lie in the uploader's jurisdiction: checked when it is
    read, before anything is staged."""
    mine = getattr(actor, "jurisdiction_code", None)
    if getattr(actor, "role", None) in (None, "admin"):
        return  # the command line (a name, not an account) and the administrator
    districts = sorted({c[:6] for c in delivery.codes()})
    if not districts:
        raise DomainError(NO_DISTRICT)
    foreign = [d for d in districts if not mine or not reaches(mine, current_district(d))]
    if foreign:
        raise DomainError(OUT_OF_JURISDICTION, districts=", ".join(foreign), mine=mine or "—")


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
    """COPY the delivery, exactly as delivered, into import_feature and import_record.  A
    feature whose geometry the reader refused (or that has none) is staged without one and
    carries the reader's fault; nothing is left out."""
    done = 0
    raw = db.session.connection().connection.driver_connection
    geometry_oid = _binary_geometry(raw)
    with raw.cursor() as cur:
        index_ids = {}
        for layer in delivery.layers:
            with raw.cursor() as c2:
                c2.execute("SELECT coalesce(max(id), 0) FROM import_feature WHERE batch_id = %s",
                           (batch.id,))
                before = c2.fetchone()[0]
            geoms = layer.geometries()
            delivered = shapely.to_wkb(geoms, include_srid=True).tolist()
            stored = shapely.to_wkb(gio.to_cgcs2000(geoms, layer.srid),
                                    include_srid=True).tolist()
            bid, kind = batch.id, layer.kind  # not an ORM attribute read per row
            code_field = "DKBM" if layer.kind == "DK" else "BDCDYH"
            # Binary COPY: geometries go as EWKB bytes, no hex round trip.  The reader made
            # every value storable (gis.io: NUL and lone surrogates are faults, staged as
            # U+FFFD); should the database still refuse a value, the layer is copied again
            # with every row made storable one by one, and nothing of it is lost.
            def copy_layer(rows, layer=layer, delivered=delivered, stored=stored, bid=bid,
                           kind=kind, code_field=code_field, start=done):
                n = start
                with cur.copy("COPY import_feature (batch_id, layer, fid, code, attrs, geom, "
                              "geom_stored, status) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(["int4", "varchar", "int4", "varchar", "jsonb", geometry_oid,
                                  geometry_oid, "varchar"])
                    for i, (fid, attrs, _) in enumerate(rows()):
                        if not 0 <= fid < 2 ** 31:  # a 64-bit FID: kept in the attributes
                            attrs = {**attrs, "_fid": fid}
                            fid = i + 1
                        code = attrs.get(code_field)
                        code = str(code).strip()[:40] if code not in (None, "") else None
                        d, st = delivered[i], stored[i]
                        cp.write_row((bid, kind, fid, code,
                                      Jsonb(attrs, dumps=_dumps), None if d is None else EWKB(d),
                                      None if st is None else EWKB(st), "valid"))
                        n += 1
                        if progress and n % COPY_CHUNK == 0:
                            progress(n, total, f"staging {layer.name}")

            _copy_or_retry(cur, copy_layer, layer.rows,
                           lambda layer=layer: _storable_features(layer))
            done += len(layer)
            if layer.issues or layer.unparsed or layer.value_issues:  # staged ids, in order
                with raw.cursor() as c2:
                    c2.execute("SELECT id FROM import_feature WHERE batch_id = %s AND id > %s "
                               "ORDER BY id", (batch.id, before))
                    index_ids[id(layer)] = [r[0] for r in c2.fetchall()]
        # The tables as the features: binary COPY, attributes as jsonb by orjson (the text
        # COPY with json.dumps cost ~2× the features' staging per row, issue 18).  One table at
        # a time, so a table the database refuses is copied again alone, made storable.
        bid = batch.id
        for tbl, rows in delivery.tables.items():
            def copy_table(rows_, tbl=tbl):
                with cur.copy("COPY import_record (batch_id, tbl, rownum, attrs, status) "
                              "FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(["int4", "varchar", "int4", "jsonb", "varchar"])
                    for n, row in enumerate(rows_(), start=1):
                        cp.write_row((bid, tbl, n, Jsonb(row, dumps=_dumps), "valid"))

            _copy_or_retry(cur, copy_table, lambda rows=rows: rows,
                           lambda tbl=tbl, rows=rows: _storable_rows(delivery, tbl, rows))
            done += len(rows)
    _reader_findings(batch, delivery, index_ids)


def _copy_or_retry(cur, copy, rows, storable_rows) -> None:
    """COPY `rows()` in a savepoint; when the database refuses a value (a NUL, a text that is not
    UTF-8: jsonb and text refuse them and the whole COPY with them), COPY again from
    `storable_rows()`, in which every such value is a fault of its row."""
    cur.execute("SAVEPOINT staging_copy")
    try:
        copy(rows)
    except (psycopg.Error, orjson.JSONEncodeError, UnicodeError):
        current_app.logger.warning("staging COPY refused a value; copied again row by row "
                                   "made storable", exc_info=True)
        cur.execute("ROLLBACK TO SAVEPOINT staging_copy")
        copy(storable_rows)
    cur.execute("RELEASE SAVEPOINT staging_copy")


def _note_values(issues: dict, i: int, values: dict, where: str) -> None:
    """Every value of row `i` the database cannot store made a fault of it in `issues` (once)."""
    from gis.io import check_row_values

    known = {d for _, d in issues.get(i, [])}
    for rule, detail in check_row_values(values, where):
        if detail not in known:
            issues.setdefault(i, []).append((rule, detail))


def _storable_features(layer):
    """The layer's rows with every value the database cannot store made a fault (slow path)."""
    for i, (fid, attrs, wkb) in enumerate(layer.rows()):
        _note_values(layer.value_issues, i, attrs, f"{layer.name} feature {fid}")
        yield fid, attrs, wkb


def _storable_rows(delivery, tbl: str, rows: list[dict]):
    from gis.io import Table

    table = delivery.checked.setdefault(tbl, Table(rows))
    for i, row in enumerate(rows):
        _note_values(table.issues, i, row, f"{tbl} row {i + 1}")
    return rows


def _reader_findings(batch: ImportBatch, delivery, index_ids: dict) -> None:
    """Curves go to PostGIS to be linearised; what the reader refused or found in a value
    becomes a fault of its feature or row (rule and detail as the reader named them); what is
    wrong with a table file as a whole, a fault of the batch naming the file."""
    _table_findings(batch, delivery)
    for layer in delivery.layers:
        if not layer.issues and not layer.unparsed and not layer.value_issues:
            continue
        staged = index_ids[id(layer)]
        rows = []
        for issues in (layer.issues, layer.value_issues):
            for i, found in issues.items():
                for rule, detail in found:
                    rows.append({"b": batch.id, "f": staged[i], "rule": rule,
                                 "detail": detail})
        for i, wkb in layer.unparsed.items():
            fid = staged[i]
            try:
                with db.session.begin_nested():
                    db.session.execute(text(
                        "UPDATE import_feature SET geom = ST_CurveToLine(ST_Force2D("
                        "ST_GeomFromWKB(:w, :srid))) WHERE id = :f"),
                        {"w": wkb, "srid": layer.srid, "f": fid})
                    db.session.execute(text(
                        f"UPDATE import_feature SET geom_stored = "
                        f"{STORED.format(g='geom')} WHERE id = :f"), {"f": fid})
            except DBAPIError:
                rows.append({"b": batch.id, "f": fid, "rule": "unreadable_geometry",
                             "detail": f"the geometry ({gio.wkb_type_name(wkb)}) cannot be read"})
        if rows:
            db.session.execute(text(
                "INSERT INTO import_fault (batch_id, feature_id, rule, code, detail) "
                "SELECT :b, :f, :rule, (SELECT code FROM import_feature WHERE id = :f), :detail"),
                rows)


def _table_findings(batch: ImportBatch, delivery) -> None:
    rows = []
    for tbl, table in delivery.checked.items():
        for rule, detail in table.file_issues:
            rows.append({"b": batch.id, "t": None, "n": None, "rule": rule,
                         "code": tbl[:40], "detail": detail})
        for i, found in table.issues.items():
            for rule, detail in found:
                rows.append({"b": batch.id, "t": tbl, "n": i + 1, "rule": rule, "code": None,
                             "detail": detail})
    if rows:
        key = "CASE r.tbl " + " ".join(f"WHEN '{t}' THEN '{c}'" for t, c in
                                       validation.ROW_KEY.items()) + " ELSE 'CBFBM' END"
        db.session.execute(text(f"""
            INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
            SELECT :b, r.id, :rule, coalesce(:code, left(r.attrs->>({key}), 40)), :detail
            FROM (SELECT 1) one LEFT JOIN import_record r ON r.batch_id = :b AND r.tbl = :t
              AND r.rownum = :n"""), rows)


def stage(actor, path: Path, declared_srid: int | None = None, encoding: str | None = None,
          tolerance_m2: float | None = None, progress=None, job_id: int | None = None
          ) -> ImportBatch:
    """Read a delivery and copy it, exactly as delivered, into the staging tables."""
    with _gc_paused():
        delivery = read(path, declared_srid, encoding)
        check_jurisdiction(actor, delivery)
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
                    "tables": {k: len(v) for k, v in delivery.tables.items()},
                    "notes": delivery.notes()}
    db.session.execute(text("SELECT refresh_statistics('import_feature')"))  # as the owner
    # The staged tables too: without their statistics the planner met a batch's thousands of
    # rows as if there were none (nested loops: 40 s for 3,000 parcels, migration 0026).
    if delivery.tables:
        db.session.execute(text("SELECT refresh_statistics('import_record')"))
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
        job_id=None, source_name: str | None = None, upload_path: str | None = None
        ) -> ImportBatch:
    """Stage and validate in one go (the CLI and the background job)."""
    batch = stage(actor, path, declared_srid, encoding, tolerance_m2, progress, job_id)
    if source_name:
        batch.source = source_name[:300]
    batch.upload_path = upload_path
    db.session.commit()
    validate(batch, lambda i, n, what: progress and progress(i, n, f"checking: {what}"))
    audit.record(actor, "import.validate", "import_batch", batch.id, batch.counts.get("faults"))
    _audit_reassignments(actor, batch)
    db.session.commit()
    return batch


def discard_failed(job_id: int) -> list[int]:
    """The staging of a failed (or reaped) import job: its batches still in `staging` become
    `failed` and their staged rows and faults go — nothing of them was checked, so nothing of
    them may be shown as checked or accepted.  Returns the batch ids."""
    ids = list(db.session.scalars(text(
        "UPDATE import_batch SET status = 'failed', counts = counts || "
        "jsonb_build_object('job_failed', :j) "
        "WHERE job_id = :j AND status = 'staging' RETURNING id"), {"j": job_id}))
    for b in ids:
        db.session.execute(text("SELECT discard_failed_staging(:b)"), {"b": b})
        db.session.execute(text("SELECT drop_staging_batch_index(:b)"), {"b": b})
        audit.record("system", "import.job_failed", "import_batch", b, {"job": job_id},
                     "the import job failed before its checks completed; staging discarded")
    db.session.flush()
    return ids


def _audit_reassignments(actor, batch: ImportBatch) -> None:
    """A delivery that would move registered parcels to another household is refused for
    those parcels; the attempt is audited (who delivered it, which parcels, to whom)."""
    rows = db.session.execute(text(
        "SELECT code, detail FROM import_fault WHERE batch_id = :b AND rule = 'parcel_reassigned'"
        " AND resolved_at IS NULL ORDER BY code"), {"b": batch.id}).all()
    if rows:
        audit.record(actor, "import.reassignment_refused", "import_batch", batch.id,
                     {"parcels": [r.code for r in rows], "details": [r.detail for r in rows]},
                     "a survey delivery may not re-assign registered parcels")


def faults(batch_id: int, open_only: bool = True) -> list[ImportFault]:
    q = select(ImportFault).where(ImportFault.batch_id == batch_id)
    if open_only:
        q = q.where(ImportFault.resolved_at.is_(None))
    return list(db.session.scalars(q.order_by(ImportFault.rule, ImportFault.code)))


def report_csv(batch_id: int) -> str:
    rows = db.session.execute(text("""
        SELECT x.id, x.cause_id, c.rule AS cause_rule, c.code AS cause_code,
               x.rule, x.code, x.detail, f.layer, f.fid, r.tbl, r.rownum,
               ST_X(x.location) AS lon, ST_Y(x.location) AS lat,
               CASE WHEN x.resolved_at IS NULL THEN 'open' ELSE 'resolved' END AS state
        FROM import_fault x LEFT JOIN import_feature f ON f.id = x.feature_id
        LEFT JOIN import_record r ON r.id = x.record_id
        LEFT JOIN import_fault c ON c.id = x.cause_id
        WHERE x.batch_id = :b ORDER BY x.rule, x.code"""), {"b": batch_id}).all()
    out = io.StringIO()
    w = csv_writer(out)
    w.writerow(["rule", "rule_zh", "code", "detail", "layer", "fid", "table", "row", "lon", "lat",
                "state", "source", "fault_id", "caused_by"])
    for r in rows:
        zh, _en, src = validation.RULES.get(r.rule, (r.rule, r.rule, ""))
        w.writerow([r.rule, zh, r.code, r.detail, r.layer or "", r.fid if r.fid is not None else "",
                    r.tbl or "", r.rownum or "", f"{r.lon:.7f}" if r.lon is not None else "",
                    f"{r.lat:.7f}" if r.lat is not None else "", r.state, src, r.id,
                    f"{r.cause_id} {r.cause_rule} {r.cause_code or ''}".strip()
                    if r.cause_id else ""])
    return out.getvalue()


def accept(actor, batch: ImportBatch, valid_part: bool = False, reason: str | None = None) -> dict:
    """Register the delivery.  With faults, only when `valid_part` is asked for: the valid
    features are registered and the faulty ones wait in quarantine."""
    guard_text(actor, "register", {"reason": reason}, "import.refused.text", "import_batch",
               batch.id, reason=reason)
    # Two people pressing "accept" at once: the batch row is locked and its status read afresh.
    status = db.session.execute(text("SELECT status FROM import_batch WHERE id = :b FOR UPDATE"),
                                {"b": batch.id}).scalar()
    if status != "validated":
        db.session.refresh(batch)
        raise DomainError(NOT_VALIDATED, status=status)
    open_faults = db.session.scalar(text(
        "SELECT count(*) FROM import_fault WHERE batch_id = :b AND resolved_at IS NULL"),
        {"b": batch.id})
    if open_faults and not valid_part:
        raise DomainError(HAS_FAULTS, n=open_faults)
    try:
        with db.session.begin_nested():  # the whole batch, or nothing of it
            result = registration.register_batch(actor, batch)
            _unregistered_are_faults(batch)
    except DBAPIError as e:
        current_app.logger.exception("acceptance of batch %s failed", batch.id)
        reason = (getattr(getattr(e, "orig", None), "diag", None))
        what = getattr(reason, "message_primary", None) or type(e.orig).__name__
        db.session.execute(text(
            "INSERT INTO import_fault (batch_id, rule, code, detail) VALUES "
            "(:b, 'acceptance_failed', NULL, :d)"),
            {"b": batch.id, "d": f"nothing was registered: {what}"[:2000]})
        audit.record(actor, "import.accept_failed", "import_batch", batch.id,
                     {"error": what[:500]}, reason if isinstance(reason, str) else None)
        batch.counts = {**batch.counts, "accept_failed": what[:300]}
        db.session.flush()
        return {"parcels": 0, "quarantined": 0, "failed": str(DomainError(ACCEPT_FAILED,
                                                                            what=what[:300]))}
    db.session.execute(text("UPDATE import_feature SET status = 'quarantined' "
                            "WHERE batch_id = :b AND status = 'faulty'"), {"b": batch.id})
    db.session.execute(text("UPDATE import_record SET status = 'quarantined' "
                            "WHERE batch_id = :b AND status = 'faulty'"), {"b": batch.id})
    quarantined = db.session.scalar(text(
        "SELECT count(*) FROM import_feature WHERE batch_id = :b AND status = 'quarantined'"),
        {"b": batch.id})
    open_faults = db.session.scalar(text(
        "SELECT count(*) FROM import_fault WHERE batch_id = :b AND resolved_at IS NULL"),
        {"b": batch.id})
    batch.status = "partly_accepted" if open_faults else "accepted"
    batch.finished_at = db.session.scalar(text("SELECT clock_timestamp()"))
    batch.counts = {**batch.counts, "registered": result, "quarantined": quarantined}
    audit.record(actor, "import.accept", "import_batch", batch.id,
                 {"registered": result, "quarantined": quarantined, "valid_part": valid_part},
                 reason)
    return {**result, "quarantined": quarantined}


def _unregistered_are_faults(batch: ImportBatch, feature_ids=None, record_ids=None) -> None:
    """The status never lies: a row or feature still 'valid' after registration was not
    registered (the register refused it); it gets a fault and waits in quarantine."""
    for tbl, col in (("import_feature", "feature_id"), ("import_record", "record_id")):
        ids = feature_ids if tbl == "import_feature" else record_ids
        only = "AND t.id = ANY(:ids)" if ids else ""
        if (feature_ids is not None or record_ids is not None) and not ids:
            continue
        db.session.execute(text(f"""
            INSERT INTO import_fault (batch_id, {col}, rule, code, detail)
            SELECT t.batch_id, t.id, 'not_registered', t.{'code' if col == 'feature_id'
                                                          else "attrs->>'CBFBM'"},
                   'the register did not take this ' ||
                   {"'feature'" if col == 'feature_id' else "t.tbl || ' row'"} ||
                   '; nothing else of it was registered'
            FROM {tbl} t WHERE t.batch_id = :b AND t.status = 'valid' {only}"""),
            {"b": batch.id, "ids": ids or []})
        db.session.execute(text(f"UPDATE {tbl} t SET status = 'faulty' WHERE t.batch_id = :b "
                                f"AND t.status = 'valid' {only}"),
                           {"b": batch.id, "ids": ids or []})


# free-text remarks and 四至 (DKDZ/DKNZ/DKXZ/DKBZ: east, south, west, north) of a delivery
REMARK_FIELDS = ("DKBZXX", "BZ", "BZXX", "DKDZ", "DKNZ", "DKXZ", "DKBZ")


def _guard_correction(actor, obj_type: str, obj_id: int, attrs: dict | None,
                      reason: str | None) -> None:
    """A correction's reason and the free-text remarks it writes go through the rights guard's
    detector: a correction is never a right lost in disguise (app.grounds.guard_text)."""
    remarks = {k: v for k, v in (attrs or {}).items()
               if str(k).upper() in REMARK_FIELDS and isinstance(v, str)}
    guard_text(actor, "register", {"reason": reason}, "import.refused.text",
               obj_type, obj_id, reason=reason)
    # remarks and 四至 describe the land: only trades and surrenders are refused there
    guard_text(actor, "register_remark", remarks, "import.refused.text", obj_type, obj_id,
               reason=reason)


def correct_feature(actor, feature: ImportFeature, attrs: dict | None = None,
                    wkt: str | None = None, reason: str | None = None) -> ImportFeature:
    """Correct a quarantined feature and re-submit it: a new staged feature replaces it (the
    old one stays, superseded), is validated against the register, and registered if valid."""
    _guard_correction(actor, "import_feature", feature.id, attrs, reason)
    _lock_quarantined("import_feature", feature)
    attrs = parse_attrs(json.dumps(attrs or {}, ensure_ascii=False))
    code_field = "DKBM" if feature.layer == "DK" else "BDCDYH"
    _check_correction_jurisdiction(actor, attrs, ("DKBM", "BDCDYH", "FBFBM", "CBFBM"))
    srid = _layer_srid(feature)
    issues = []
    if wkt:
        try:
            wkb, issues = gio.check_geometry(wkt, srid, limits())
        except ValueError as e:
            raise DomainError(BAD_WKT, reason=str(e), srid=srid) from None
    new_attrs = {**feature.attrs, **(attrs or {})}
    code = new_attrs.get(code_field)
    code = str(code).strip()[:40] if code not in (None, "") else feature.code
    fixed = ImportFeature(batch_id=feature.batch_id, layer=feature.layer, fid=feature.fid,
                          code=code, attrs=new_attrs, status="valid",
                          corrected_from_id=feature.id)
    db.session.add(fixed)
    db.session.flush()
    if wkt:  # what the reader refuses is kept out of the geometry and is the feature's fault
        db.session.execute(text("UPDATE import_feature SET geom = ST_SetSRID(ST_GeomFromWKB(:w),"
                                " :srid) WHERE id = :n"),
                           {"n": fixed.id, "w": None if issues else wkb, "srid": srid})
    else:
        db.session.execute(text("UPDATE import_feature n SET geom = o.geom FROM import_feature o "
                                "WHERE n.id = :n AND o.id = :o"),
                           {"n": fixed.id, "o": feature.id})
    db.session.execute(text(f"UPDATE import_feature SET geom_stored = "
                            f"{STORED.format(g='geom')} WHERE id = :n"),
                       {"n": fixed.id})
    for rule, detail in issues:
        db.session.execute(text("INSERT INTO import_fault (batch_id, feature_id, rule, code, "
                                "detail) VALUES (:b, :f, :r, :c, :d)"),
                           {"b": fixed.batch_id, "f": fixed.id, "r": rule, "c": fixed.code,
                            "d": f"correction: {detail}"})
    feature.status = "superseded"
    db.session.execute(text("UPDATE import_fault SET resolved_at = now() WHERE feature_id = :f"),
                       {"f": feature.id})
    db.session.flush()
    audit.record(actor, "import.correct", "import_feature", fixed.id,
                 {"replaces": feature.id, "attrs": attrs or {}, "geometry_changed": bool(wkt)},
                 reason)
    return _resubmit(actor, fixed, feature_ids=[fixed.id])


def parse_attrs(raw: str) -> dict:
    """The attributes typed on the correction page: a flat JSON object of finite numbers,
    texts without NUL, booleans and nulls — what a delivered table row can hold."""
    def no_constant(name):
        raise ValueError(f"{name} is not a number")

    def finite(text_):
        v = float(text_)
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"{text_[:20]} is not a finite number")
        return v

    try:
        attrs = json.loads(raw, parse_constant=no_constant, parse_float=finite)
    except RecursionError:
        raise DomainError(BAD_ATTRS, why="nested too deeply") from None
    except ValueError as e:
        raise DomainError(BAD_ATTRS, why=str(e).split("\n")[0][:120]) from None
    if not isinstance(attrs, dict):
        raise DomainError(BAD_ATTRS, why=f"a JSON {type(attrs).__name__} was given")
    for k, v in attrs.items():
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2 ** 63:
            raise DomainError(BAD_ATTRS, why=f"{k[:40]}: the number is too large")
        if v is not None and not isinstance(v, (str, int, float, bool)):
            raise DomainError(BAD_ATTRS, why=f"{k[:40]} holds a {type(v).__name__}")
        if "\x00" in k or (isinstance(v, str) and "\x00" in v):
            raise DomainError(BAD_ATTRS, why=f"{k[:40]} holds a NUL character")
    return attrs


def _lock_quarantined(table: str, obj) -> None:
    """Two people correcting the same fault at once: the row is locked and its status read
    afresh, so the second one finds it superseded instead of registering a second copy."""
    status = db.session.execute(text(f"SELECT status FROM {table} WHERE id = :i FOR UPDATE"),
                                {"i": obj.id}).scalar()
    if status != "quarantined":
        db.session.refresh(obj)
        raise DomainError(NOT_QUARANTINED)


def _layer_srid(feature: ImportFeature) -> int:
    """The CRS the feature was delivered in: its own geometry's, else that of its layer's
    other features, else the batch's."""
    return db.session.scalar(text("""
        SELECT coalesce((SELECT ST_SRID(geom) FROM import_feature WHERE id = :f
                           AND geom IS NOT NULL),
                        (SELECT ST_SRID(geom) FROM import_feature WHERE batch_id = :b
                           AND layer = :l AND geom IS NOT NULL LIMIT 1),
                        (SELECT srid FROM import_batch WHERE id = :b))"""),
        {"f": feature.id, "b": feature.batch_id, "l": feature.layer})


def _check_correction_jurisdiction(actor, attrs: dict | None, fields) -> None:
    """A correction may not move a feature or row into a district the corrector does not
    serve (the same rule as the upload's)."""
    if getattr(actor, "role", None) in (None, "admin") or not attrs:
        return
    mine = getattr(actor, "jurisdiction_code", None)
    import unicodedata

    codes = [unicodedata.normalize("NFKC", str(attrs[f])).strip() for f in fields
             if attrs.get(f) not in (None, "")]
    districts = sorted({c[:6] for c in codes if c[:6].isascii() and c[:6].isdigit()
                        and len(c) >= 12})
    foreign = [d for d in districts if not mine or not reaches(mine, current_district(d))]
    if foreign:
        raise DomainError(CORRECTION_OUT_OF_JURISDICTION, districts=", ".join(foreign),
                          mine=mine or "—")


def _resubmit(actor, fixed, feature_ids=None, record_ids=None):
    """Check a corrected feature or row against the batch and the register; register it when
    it passes, else it waits in quarantine with its new faults."""
    batch = db.session.get(ImportBatch, fixed.batch_id)
    _revalidate(batch)
    db.session.refresh(fixed)
    if fixed.status == "valid":
        registration.register_batch(actor, batch, feature_ids=feature_ids,
                                    record_ids=record_ids)
        _unregistered_are_faults(batch, feature_ids or [], record_ids or [])
        db.session.refresh(fixed)
    if fixed.status != "registered":
        fixed.status = "quarantined"
    db.session.flush()
    _release_dependants(actor, batch)
    db.session.refresh(fixed)
    return fixed


def _release_dependants(actor, batch: ImportBatch) -> dict:
    """After a correction: a duplicate key that is now unique is no longer a fault, a knock-on
    whose cause is resolved is resolved with it, and what then has no open fault is registered
    (or, if the register still refuses it, waits with a new fault).  Repeated until stable."""
    released = {"records": 0, "features": 0}
    for _ in range(5):
        for tbl, cols in validation.KEYS.items():
            key = " || '|' || ".join(f"coalesce(r.attrs->>'{c}', '')" for c in cols)
            okey = key.replace("r.attrs", "o.attrs")
            db.session.execute(text(f"""
                UPDATE import_fault x SET resolved_at = clock_timestamp()
                FROM import_record r WHERE x.record_id = r.id AND x.batch_id = :b
                  AND x.rule = 'duplicate_key' AND x.resolved_at IS NULL AND r.tbl = '{tbl}'
                  AND r.status <> 'superseded'
                  AND (SELECT count(*) FROM import_record o WHERE o.batch_id = r.batch_id
                       AND o.tbl = r.tbl AND o.status <> 'superseded' AND {okey} = {key}) = 1"""),
                {"b": batch.id})
        db.session.execute(text(f"""
            UPDATE import_fault x SET resolved_at = clock_timestamp()
            FROM import_record r WHERE x.record_id = r.id AND x.batch_id = :b
              AND x.rule = 'duplicate_key' AND x.resolved_at IS NULL AND r.tbl = 'CBDKXX'
              AND r.attrs->>'DKBM' NOT IN ({validation.SAME_PARCEL_TWO_HOUSEHOLDS.format(
                  resolves=validation.RESOLVES)})"""), {"b": batch.id})
        n = db.session.execute(text("""
            UPDATE import_fault x SET resolved_at = clock_timestamp() FROM import_fault c
            WHERE c.id = x.cause_id AND x.batch_id = :b AND x.resolved_at IS NULL
              AND c.resolved_at IS NOT NULL"""), {"b": batch.id}).rowcount
        recs = db.session.execute(text("""
            UPDATE import_record r SET status = 'valid' WHERE r.batch_id = :b
              AND r.status = 'quarantined' AND NOT EXISTS (SELECT 1 FROM import_fault x
                  WHERE x.record_id = r.id AND x.resolved_at IS NULL) RETURNING r.id"""),
            {"b": batch.id}).scalars().all()
        feats = db.session.execute(text("""
            UPDATE import_feature f SET status = 'valid' WHERE f.batch_id = :b
              AND f.status = 'quarantined' AND NOT EXISTS (SELECT 1 FROM import_fault x
                  WHERE x.feature_id = f.id AND x.resolved_at IS NULL) RETURNING f.id"""),
            {"b": batch.id}).scalars().all()
        if recs:
            registration.register_ownership(actor, batch, recs)
        if feats:
            registration.register_features(actor, batch, feats)
        if recs or feats:
            _unregistered_are_faults(batch, feats, recs)
            db.session.execute(text("UPDATE import_feature SET status = 'quarantined' "
                                    "WHERE batch_id = :b AND status = 'faulty'"), {"b": batch.id})
            db.session.execute(text("UPDATE import_record SET status = 'quarantined' "
                                    "WHERE batch_id = :b AND status = 'faulty'"), {"b": batch.id})
            audit.record(actor, "import.release", "import_batch", batch.id,
                         {"records": recs, "features": feats}, "cause corrected")
        released["records"] += len(recs)
        released["features"] += len(feats)
        if not (n or recs or feats):
            break
    db.session.flush()
    return released


def correct_record(actor, record: ImportRecord, attrs: dict, reason: str | None = None
                   ) -> ImportRecord:
    """Correct a quarantined ownership row (e.g. an ID number) and re-submit it."""
    _guard_correction(actor, "import_record", record.id, attrs, reason)
    _lock_quarantined("import_record", record)
    attrs = parse_attrs(json.dumps(attrs or {}, ensure_ascii=False))
    _check_correction_jurisdiction(actor, attrs, ("FBFBM", "CBFBM", "DKBM", "CBHTBM"))
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


def housekeeping(actor="system", keep_days: int | None = None) -> dict:
    """Remove uploads kept longer than IMPORT_UPLOAD_KEEP_DAYS (by the app's clock, the
    database's), of batches and of refused uploads that made none; drop the per-batch staging
    indexes of finished batches.  Staged rows, faults and the audit trail stay."""
    import shutil

    keep = int(keep_days if keep_days is not None
               else current_app.config.get("IMPORT_UPLOAD_KEEP_DAYS", 90))
    now = db.session.scalar(text("SELECT clock_timestamp()"))
    root = uploads.upload_root().resolve()
    removed = []
    old = db.session.scalars(select(ImportBatch).where(
        ImportBatch.upload_path.is_not(None), ImportBatch.upload_removed_at.is_(None),
        ImportBatch.created_at < text(f"clock_timestamp() - interval '{keep} days'"))).all()
    for b in old:
        folder = Path(b.upload_path).resolve()
        if folder.is_relative_to(root) and folder != root:
            shutil.rmtree(folder, ignore_errors=True)
        b.upload_removed_at = now
        removed.append(b.id)
    known = {str(Path(p).resolve()) for p in db.session.scalars(
        select(ImportBatch.upload_path).where(ImportBatch.upload_path.is_not(None)))}
    orphans = 0
    cutoff = now.timestamp() - keep * 86400
    for folder in root.iterdir():
        if folder.is_dir() and not folder.is_symlink() and str(folder.resolve()) not in known \
                and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            orphans += 1
    finished = db.session.execute(text("""
        SELECT b.id, i.indexname FROM pg_indexes i JOIN import_batch b
          ON i.indexname = 'import_feature_geom_b' || b.id
        WHERE i.tablename = 'import_feature'
          AND b.status IN ('accepted', 'partly_accepted', 'refused', 'failed')""")).all()
    for batch_id, _ in finished:  # the owner drops it (the app's role owns nothing)
        db.session.execute(text("SELECT drop_staging_batch_index(:b)"), {"b": batch_id})
    indexes = [name for _, name in finished]
    out = {"uploads_removed": removed, "orphans_removed": orphans, "indexes_dropped": indexes,
           "keep_days": keep}
    audit.record(actor, "import.housekeeping", "import_batch", None, out, None)
    return out


# ---------------------------------------------------------------------------------------------
# Queries for the JSON API (issue 19)

def batches_query(like: str | None = None, username: str | None = None):
    """Import batches, newest first (a select of ImportBatch), inside a jurisdiction or
    uploaded by `username` (queries.in_jurisdiction): another county's deliveries (their file
    names, who uploaded them, their errors) are not listed to a county's staff."""
    return queries.in_jurisdiction(select(ImportBatch).order_by(ImportBatch.id.desc()), like,
                                   username)


def batch_of_job(job_id: int) -> ImportBatch | None:
    return db.session.scalar(select(ImportBatch).where(ImportBatch.job_id == job_id))


def report(batch: ImportBatch) -> dict:
    """The batch's report as data: status, features per status, every fault with its rule
    (Chinese and English) and legal source."""
    rows = []
    for f in faults(batch.id, open_only=False):
        zh, en, src = validation.RULES.get(f.rule, (f.rule, f.rule, ""))
        rows.append({"id": f.id, "rule": f.rule, "rule_zh": str(zh), "rule_en": str(en),
                     "legal_source": str(src), "code": f.code, "detail": f.detail,
                     "feature_id": f.feature_id, "record_id": f.record_id,
                     "cause_id": f.cause_id, "open": f.resolved_at is None})
    return {"batch_id": batch.id, "status": batch.status, "srid": batch.srid,
            "source": batch.source, "features": progress_of(batch), "faults": rows}


def feature_wkt(feature: ImportFeature) -> str | None:
    return db.session.execute(text("SELECT ST_AsText(geom) FROM import_feature WHERE id = :i"),
                              {"i": feature.id}).scalar()
