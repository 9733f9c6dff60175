"""Exports of a selection of the register: GeoPackage, Shapefile (GBK .dbf with .cpg and .prj),
GeoJSON (one FeatureCollection; each feature's `layer` says DK or ZJD), and the NY/T 2539
package (vector layers and ownership tables, zipped).  Each feature
carries the attributes as delivered, updated by what the register changed since."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import tempfile
import unicodedata
import zipfile
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text

from app.access import Scope, reaches
from app.audit import operations as audit
from app.auth.models import User
from app.errors import NOT_ALLOWED, DomainError, Rule
from app.extensions import db
from app.jobs import operations as jobs
from app.jobs.models import Job
from app.people.idnumber import mask, mask_phone
from gis import io as gio

FORMATS = ("gpkg", "shp", "geojson", "nyt")
EMPTY = Rule("export.empty", _l("The selection %(scope)s holds no current parcel."),
             _l("NY/T 2539-2016"), 404)
BAD_FORMAT = Rule("export.format", _l("Unknown export format %(fmt)s."), _l("NY/T 2539-2016"))
BAD_SCOPE = Rule("export.scope",
                 _l("An export's selection is a code of 6 to 28 digits or capital letters "
                    "(township, village, villagers' group, household or parcel), not "
                    "%(scope)s."),
                 _l("NY/T 2539-2016; GB/T 2260"), 422)
# The selection is matched with LIKE and names the file: only ASCII digits and capitals (a
# homestead's 不动产单元代码 holds letters: 140404101201JC00001F00010001), the whole string —
# a "%" or "_" would widen it beyond the jurisdiction checked; "/" or ".." would leave EXPORT_DIR
_SCOPE = re.compile(r"[0-9]{6}[0-9A-Z]{0,22}")


def check_scope(scope) -> str:
    if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
        raise DomainError(BAD_SCOPE, scope=repr(scope)[:40])
    return scope

DK_FIELDS = ["BSM", "YSDM", "DKBM", "DKMC", "SYQXZ", "DKLB", "TDLYLX", "DLDJ", "TDYT", "SFJBNT",
             "SCMJ", "SCMJM", "DKDZ", "DKNZ", "DKXZ", "DKBZ", "DKBZXX", "ZJRXM"]
ZJD_FIELDS = ["BDCDYH", "ZDMJ", "FBFBM", "CBFBM", "QLRMC", "QLRZJHM", "YT"]
# Registered columns that override the delivered attribute of the same meaning.
DK_COLUMNS = {"DKBM": "code", "DKMC": "name", "SYQXZ": "syqxz", "DKLB": "dklb",
              "TDLYLX": "tdlylx", "DLDJ": "dldj", "TDYT": "tdyt", "SFJBNT": "sfjbnt",
              "DKDZ": "east", "DKNZ": "south", "DKXZ": "west", "DKBZ": "north",
              "ZJRXM": "witness", "DKBZXX": "remarks"}
ZJD_COLUMNS = {"BDCDYH": "code", "CBFBM": "household_code"}


def survey_srids(scope: str) -> set[int]:
    """The survey CRSs of the selection's current parcels (empty: the selection is empty)."""
    return {r[0] for r in db.session.execute(text(
        "SELECT DISTINCT p.survey_srid FROM parcel p JOIN collective c ON c.id = p.collective_id "
        "WHERE p.end_lifespan IS NULL "
        "AND (c.fbfbm LIKE :l OR p.code LIKE :l OR p.household_code LIKE :l)"),
        {"l": scope + "%"})}


def selection(scope: str, kind: str | None = None, srid: int | None = None):
    """Current parcels whose issuing party, code or holder household code starts with `scope`
    (a township, a village, a villagers' group, a household, a parcel)."""
    rows = db.session.execute(text("""
        SELECT p.id, p.kind, p.code, p.household_code, p.name, p.syqxz, p.dklb, p.tdlylx, p.dldj,
               p.tdyt, p.sfjbnt, p.scmj, p.scmjm, p.east, p.south, p.west, p.north, p.witness,
               p.remarks, p.attrs, p.survey_srid, c.fbfbm,
               ST_AsBinary(ST_Transform(p.geom, coalesce(:srid, p.survey_srid))) AS wkb
        FROM parcel p JOIN collective c ON c.id = p.collective_id
        WHERE p.end_lifespan IS NULL
          AND (c.fbfbm LIKE :like OR p.code LIKE :like OR p.household_code LIKE :like)
          AND (CAST(:kind AS text) IS NULL OR p.kind = :kind)
        ORDER BY p.kind, p.code"""), {"like": scope + "%", "kind": kind, "srid": srid}).all()
    return rows


def _record(r) -> dict:
    out = dict(r.attrs or {})
    mapping = DK_COLUMNS if r.kind == "contract" else ZJD_COLUMNS
    for field, col in mapping.items():
        value = getattr(r, col)
        if value is not None or field not in out:
            out[field] = value
    if r.kind == "contract":
        out.setdefault("SCMJ", float(r.scmj))
        out.setdefault("SCMJM", float(r.scmjm))
    else:
        out.setdefault("ZDMJ", float(r.scmj))
        out.setdefault("FBFBM", r.fbfbm)
    return out


def _fields(standard: list[str], records: list[dict]) -> list[str]:
    extra = sorted({k for rec in records for k in rec} - set(standard))
    return [f for f in standard if any(f in rec for rec in records)] + extra


def _is_id_field(name: str) -> bool:
    return name.upper().endswith("ZJHM")  # 证件号码: QLRZJHM, CBFZJHM, CYZJHM …


def _is_phone_field(name: str) -> bool:
    return name.upper() in ("LXDH", "DH", "PHONE") or name.upper().endswith("LXDH")


def _is_code_field(name: str) -> bool:
    """Codes (DKBM, CBFBM, BDCDYH, YSDM …): digits that are no one's ID number or phone."""
    n = name.upper()
    return n.endswith(("BM", "BSM", "DYH", "DM")) or n in ("LAYER", "YZBM")


_D = "[0-9\uff10-\uff19]"  # ASCII and full-width digits
_SEP = "[\\s\\-\u2010-\u2015\u3000]?"
# 18- and 15-digit ID numbers (a plausible birth date inside), mainland mobiles (spaced or not)
# and landlines with an area code, standing alone inside free text
_ID_IN_TEXT = re.compile(
    f"(?<![0-9\uff10-\uff19A-Za-z])(?:{_D}{{6}}(?:[12１２]){_D}{{3}}{_D}{{4}}{_D}{{3}}"
    f"[0-9\uff10-\uff19XxＸｘ]|{_D}{{15}})(?![0-9\uff10-\uff19A-Za-z])")
_PHONE_IN_TEXT = re.compile(
    f"(?<![0-9\uff10-\uff19])(?:[1１]{_SEP}[3-9３-９](?:{_SEP}{_D}){{9}}"
    f"|[0０]{_D}{{2,3}}[\\-\u2010-\u2015－]{_D}{{7,8}})(?![0-9\uff10-\uff19])")


def redact_text(value: str) -> str:
    """ID numbers and phones written inside free text (a remark, an address) masked the same
    way as the fields that hold them."""
    value = _ID_IN_TEXT.sub(lambda m: mask(unicodedata.normalize("NFKC", m.group(0))), value)
    return _PHONE_IN_TEXT.sub(
        lambda m: mask_phone(re.sub(r"\D", "", unicodedata.normalize("NFKC", m.group(0)))),
        value)


def masked_record(rec: dict) -> dict:
    """The default export: ID numbers and phones masked — in their fields and wherever free
    text (a remark, an address, a delivered attribute of any name) carries one — and birth
    dates reduced to the year (个人信息保护法 arts 6, 28, 51)."""
    out = dict(rec)
    for k, v in rec.items():
        if v in (None, ""):
            continue
        if _is_id_field(k):
            out[k] = mask(str(v))
        elif _is_phone_field(k):
            out[k] = mask_phone(str(v))
        elif k.upper() == "CSRQ":
            out[k] = str(v)[:4]
        elif isinstance(v, str) and not _is_code_field(k):
            out[k] = redact_text(v)
    return out


def write(fmt: str, scope: str, out_dir: Path, full: bool = False,
          stats: dict | None = None, progress=None) -> Path:
    """Write the selection; returns the file (a .zip for Shapefile and the NY/T package).

    ID numbers and phones are masked unless `full` (a separate privilege the view checks);
    `stats`, when given, receives the number of rows written; `progress(done, total, message)`,
    when given, hears of each step (an export job's progress)."""
    stats = stats if stats is not None else {}
    step = progress or (lambda done, total, message="": None)
    stats["rows"] = 0
    if fmt not in FORMATS:
        raise DomainError(BAD_FORMAT, fmt=fmt)
    check_scope(scope)
    srids = survey_srids(scope)
    if not srids:
        raise DomainError(EMPTY, scope=scope)
    # One CRS per file: the survey zone when the selection has one, else CGCS2000.
    srid = 4490 if fmt == "geojson" or len(srids) > 1 else srids.pop()
    layers = {}
    for i, (kind, name, standard) in enumerate((("contract", "DK", DK_FIELDS),
                                                ("homestead", "ZJD", ZJD_FIELDS))):
        step(i, 4, f"selecting {name}")
        rows = selection(scope, kind, srid)
        if rows:
            records = [_record(r) for r in rows]
            if not full:
                records = [masked_record(r) for r in records]
            stats["rows"] += len(records)
            layers[name] = (rows, records, _fields(standard, records))
    step(2, 4, f"writing {stats['rows']} features")
    stem = f"{scope}_{dt.date.today():%Y%m%d}"
    if fmt == "gpkg":
        path = out_dir / f"{stem}.gpkg"
        for i, (name, (rows, recs, fields)) in enumerate(layers.items()):
            gio.write_layer(path, name, srid, [bytes(r.wkb) for r in rows], recs, fields,
                            "GPKG", append=i > 0)
        return path
    if fmt == "geojson":
        # One FeatureCollection holding every layer of the selection: each feature names its
        # layer (DK contract land, ZJD homestead) in `layer`, so nothing is left behind.
        path = out_dir / f"{stem}.geojson"
        wkb, recs, fields = [], [], ["layer"]
        for name, (rows, lrecs, lfields) in layers.items():
            wkb += [bytes(r.wkb) for r in rows]
            recs += [{"layer": name, **rec} for rec in lrecs]
            fields += [f for f in lfields if f not in fields]
        gio.write_layer(path, stem, srid, wkb, recs, fields, "GeoJSON")
        return path
    folder = out_dir / stem
    vec = folder / ("矢量数据" if fmt == "nyt" else "")
    vec.mkdir(parents=True, exist_ok=True)
    year = dt.date.today().year
    for name, (rows, recs, fields) in layers.items():
        gio.write_layer(vec / f"{name}{scope[:6]}{year}.shp", f"{name}{scope[:6]}{year}", srid,
                        [bytes(r.wkb) for r in rows], recs, fields, "ESRI Shapefile",
                        encoding="GBK")
    if fmt == "nyt":
        step(3, 4, "writing the ownership tables")
        stats["rows"] += _ownership_tables(scope, folder / "权属数据", full)
    path = out_dir / f"{stem}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(folder))
    shutil.rmtree(folder)
    return path


def _ownership_tables(scope: str, folder: Path, full: bool = False) -> int:
    """FBF, CBF, CBF_JTCY, CBDKXX from the register; CBHT as delivered (kept with the import).
    Returns the number of rows written."""
    folder.mkdir(parents=True, exist_ok=True)
    count = [0]

    def q(sql):
        rows = [dict(r._mapping) for r in db.session.execute(text(sql), {"l": scope + "%"})]
        count[0] += len(rows)
        return rows if full else [masked_record(r) if "attrs" not in r else
                                  {"attrs": masked_record(r["attrs"] or {})} for r in rows]

    fbf = q("""SELECT fbfbm AS "FBFBM", name AS "FBFMC", leader_name AS "FBFFZRXM",
                      address AS "FBFDZ" FROM collective WHERE fbfbm LIKE :l ORDER BY fbfbm""")
    gio.write_table(folder / "FBF.csv", fbf, ["FBFBM", "FBFMC", "FBFFZRXM", "FBFDZ"])
    cbf = q("""SELECT h.cbfbm AS "CBFBM", h.cbflx AS "CBFLX", h.name AS "CBFMC",
                      CASE WHEN p.id IS NULL THEN NULL ELSE '1' END AS "CBFZJLX",
                      p.id_number AS "CBFZJHM", h.address AS "CBFDZ", h.phone AS "LXDH",
                      (SELECT count(*) FROM household_member m WHERE m.household_id = h.id
                         AND m.left_on IS NULL) AS "CBFCYSL"
               FROM household h LEFT JOIN person p ON p.id = h.head_person_id
               WHERE h.cbfbm LIKE :l ORDER BY h.cbfbm""")
    gio.write_table(folder / "CBF.csv", cbf, ["CBFBM", "CBFLX", "CBFMC", "CBFZJLX", "CBFZJHM",
                                              "CBFDZ", "LXDH", "CBFCYSL"])
    jtcy = q("""SELECT h.cbfbm AS "CBFBM", p.name AS "CYXM", p.sex AS "CYXB", '1' AS "CYZJLX",
                       p.id_number AS "CYZJHM", m.relation AS "YHZGX", m.remark AS "CYBZ",
                       CASE WHEN m.is_coholder THEN '1' ELSE '2' END AS "SFGYR",
                       p.birth_date AS "CSRQ"
                FROM household_member m JOIN household h ON h.id = m.household_id
                JOIN person p ON p.id = m.person_id
                WHERE h.cbfbm LIKE :l AND m.left_on IS NULL ORDER BY h.cbfbm, m.id""")
    gio.write_table(folder / "CBF_JTCY.csv", jtcy, ["CBFBM", "CYXM", "CYXB", "CYZJLX", "CYZJHM",
                                                    "YHZGX", "CYBZ", "SFGYR", "CSRQ"])
    cbdkxx = q("""SELECT p.code AS "DKBM", c.fbfbm AS "FBFBM", p.household_code AS "CBFBM",
                         coalesce(r.attrs->>'CBJYQQDFS', '110') AS "CBJYQQDFS",
                         coalesce(r.attrs->>'HTMJ', p.scmj::text) AS "HTMJ",
                         coalesce(r.attrs->>'CBHTBM', p.household_code || 'J') AS "CBHTBM",
                         r.attrs->>'LZHTBM' AS "LZHTBM",
                         coalesce(r.attrs->>'CBJYQZBM', p.household_code || 'J') AS "CBJYQZBM"
                  FROM parcel p JOIN collective c ON c.id = p.collective_id
                  LEFT JOIN LATERAL (SELECT attrs FROM import_record r WHERE r.tbl = 'CBDKXX'
                       AND r.attrs->>'DKBM' = p.code AND r.attrs->>'CBFBM' = p.household_code
                       ORDER BY r.id DESC LIMIT 1) r ON true
                  WHERE p.end_lifespan IS NULL AND p.kind = 'contract'
                    AND p.household_code IS NOT NULL AND c.fbfbm LIKE :l ORDER BY p.code""")
    gio.write_table(folder / "CBDKXX.csv", cbdkxx, ["DKBM", "FBFBM", "CBFBM", "CBJYQQDFS", "HTMJ",
                                                    "CBHTBM", "LZHTBM", "CBJYQZBM"])
    cbht = q("""SELECT DISTINCT ON (r.attrs->>'CBHTBM') r.attrs FROM import_record r
                WHERE r.tbl = 'CBHT' AND r.status = 'registered' AND r.attrs->>'FBFBM' LIKE :l
                ORDER BY r.attrs->>'CBHTBM', r.id DESC""")
    rows = [r["attrs"] for r in cbht]
    if rows:
        gio.write_table(folder / "CBHT.csv", rows, list(rows[0]))
    return count[0]


def export_to_temp(fmt: str, scope: str, full: bool = False, stats: dict | None = None) -> Path:
    return write(fmt, scope, Path(tempfile.mkdtemp(prefix="sanquan-export-")), full, stats)


FULL_EXPORT_ROLES = ("bureau_staff", "admin")
FULL_EXPORT = Rule(
    "export.full.privilege",
    _l("An export with full ID numbers and phones is for land bureau staff only, with a stated "
       "purpose of at least %(n)s characters; the default export masks them."),
    _l("个人信息保护法 arts 6, 28, 51 (minimum necessary; sensitive personal information)"), 403)
FULL_PURPOSE_MIN = 8


def check_full_export(user, purpose: str) -> None:
    if user.role not in FULL_EXPORT_ROLES or len(purpose or "") < FULL_PURPOSE_MIN:
        raise DomainError(FULL_EXPORT, n=FULL_PURPOSE_MIN)


MIMETYPES = {".gpkg": "application/geopackage+sqlite3", ".zip": "application/zip",
             ".geojson": "application/geo+json"}


def export_for(actor, fmt: str, scope: str, full: bool = False, purpose: str = "") -> Path:
    """An export to a temporary folder, recorded in the audit log (who, what, how many rows,
    unmasked or not, why)."""

    if full:
        check_full_export(actor, purpose)
    stats: dict = {}
    path = export_to_temp(fmt, scope, full, stats)
    audit.record(actor, "parcel.export.full" if full else "parcel.export", "selection", scope,
                 {"format": fmt, "scope": scope, "rows": stats.get("rows", 0),
                  "unmasked": full, "purpose": purpose or None}, purpose or None)
    return path


# ---------------------------------------------------------------------------------------------
# Exports as background jobs (issue 19: the API starts an export, follows it, downloads it).
# The job (kind "export", app.jobs) writes the file under EXPORT_DIR/<job id>/ and records the
# export in the audit log; the file is read by its requester or by staff whose jurisdiction
# reaches the scope (an unmasked export: only by those who may make one).

EXPORT_ROLES = ("collective_officer", "bureau_staff", "auditor")
NOT_READY = Rule("export.not_ready",
                 _l("Export %(id)s is %(status)s: its file is not ready."),
                 _l("Sanquan operations: an export job's file exists once the job is done"), 409)
GONE = Rule("export.gone",
            _l("The file of export %(id)s is no longer kept; start the export again."),
            _l("Sanquan operations: export files are kept for EXPORT_KEEP_DAYS days"), 410)


def export_dir() -> Path:
    d = Path(current_app.config.get("EXPORT_DIR") or
             Path(current_app.instance_path) / "exports")
    d.mkdir(parents=True, exist_ok=True)
    return d


def start(actor, fmt: str, scope: str, full: bool = False, purpose: str = "") -> Job:
    """Queue an export of `scope` in `fmt` (a background job with progress).  The format, the
    privilege of an unmasked export and a non-empty selection are checked now, so a refusal is
    an answer, not a failed job."""
    if fmt not in FORMATS:
        raise DomainError(BAD_FORMAT, fmt=fmt)
    check_scope(scope)
    if full:
        check_full_export(actor, purpose)
    if not survey_srids(scope):
        raise DomainError(EMPTY, scope=scope)
    return jobs.submit("export", {"format": fmt, "scope": scope, "full": bool(full),
                                  "purpose": purpose or None}, actor)


def purge(keep_days: int | None = None) -> list[int]:
    """Remove the files of export jobs finished more than EXPORT_KEEP_DAYS ago (by the
    database's clock); the jobs and the audit trail stay, their download answers 410."""
    keep = int(keep_days if keep_days is not None
               else current_app.config.get("EXPORT_KEEP_DAYS", 7))
    ids = db.session.scalars(select(Job.id).where(
        Job.kind == "export", Job.status.in_(("done", "failed")),
        Job.updated_at < func.clock_timestamp() - func.make_interval(0, 0, 0, keep))).all()
    root = export_dir()
    removed = [i for i in ids if (root / str(i)).is_dir()]
    for i in removed:
        shutil.rmtree(root / str(i), ignore_errors=True)
    return removed


def run_job(job, progress) -> dict:
    """Job body (registered in app.jobs as kind "export"): write the file, record the export."""
    p, job_id = dict(job.params), job.id
    actor = db.session.get(User, job.created_by) if job.created_by else "system"
    purge()  # expired files go here, in the worker, never in a web request
    out = export_dir() / str(job_id)
    shutil.rmtree(out, ignore_errors=True)  # a re-run starts clean
    out.mkdir(parents=True)
    stats: dict = {}
    path = write(p["format"], p["scope"], out, bool(p.get("full")), stats, progress)
    progress(4, 4, "written")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    full = bool(p.get("full"))
    audit.record(actor, "parcel.export.full" if full else "parcel.export", "selection",
                 p["scope"], {"format": p["format"], "scope": p["scope"],
                              "rows": stats.get("rows", 0), "unmasked": full,
                              "purpose": p.get("purpose"), "job": job_id}, p.get("purpose"))
    return {"file": path.name, "rows": stats.get("rows", 0), "bytes": path.stat().st_size,
            "sha256": digest.hexdigest()}


def on_job_failure(job_id: int) -> None:
    """app.jobs' hook after an export job failed or was reaped: its partial file goes."""
    shutil.rmtree(export_dir() / str(job_id), ignore_errors=True)


def export_job(job_id) -> Job | None:
    """The export job of that id, or None (an id that is no integer, or outside the column's
    range, names no job: a lookup, not a database error)."""
    try:
        job_id = int(job_id)
    except (TypeError, ValueError):
        return None
    if not 0 < job_id <= 2**31 - 1:
        return None
    job = db.session.get(Job, job_id)
    return job if job is not None and job.kind == "export" else None


def job_scope(job: Job, user) -> Scope:
    """Who reaches an export job: staff whose jurisdiction reaches its scope, its requester
    included (only while theirs still does) — for an unmasked export only those holding that
    privilege too."""
    # an unmasked file needs the privilege *now*: a requester since moved to another role
    # (no longer land bureau staff) reads it no more (个人信息保护法 arts 28, 51)
    if job.params.get("full") and user.role not in FULL_EXPORT_ROLES:
        if job.created_by is not None and job.created_by == getattr(user, "id", None):
            raise DomainError(FULL_EXPORT, n=FULL_PURPOSE_MIN)  # the requester: told why
        return Scope([])  # anyone else: as if there were no such job (the route conceals)
    if (job.created_by is not None and job.created_by == getattr(user, "id", None)
            and user.role != "admin"
            and not reaches(user.jurisdiction_code, job.params["scope"])):
        # the requester, moved since to a jurisdiction that no longer reaches the selection
        # (another county's bureau, another village): told why; the file is no longer theirs
        # to read (atkapi: they kept it, an unmasked one included, wherever they went)
        raise DomainError(NOT_ALLOWED)
    return Scope([job.params["scope"]])


def job_file(actor, job: Job) -> Path:
    """The finished export's file; its download is recorded in the audit log."""
    if job.status != "done":
        raise DomainError(NOT_READY, id=job.id, status=job.status)
    root = export_dir().resolve()
    folder = root / str(job.id)
    name = str((job.result or {}).get("file") or "")
    path = folder / name
    # only the job's own regular file, inside EXPORT_DIR/<id>/: no other name (a separator,
    # "..") and no symbolic link planted in its place or in place of its folder
    if (not name or Path(name).name != name or name in (".", "..") or folder.is_symlink()
            or path.is_symlink() or not path.is_file()
            or path.resolve().parent != folder):
        raise DomainError(GONE, id=job.id)
    audit.record(actor, "parcel.export.download", "selection", job.params["scope"],
                 {"job": job.id, "file": path.name, "unmasked": bool(job.params.get("full"))})
    return path
