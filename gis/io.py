"""Reading and writing survey files: Shapefile, GeoPackage, GeoJSON (pyogrio, GDAL inside the
wheel) and the NY/T 2539 ownership tables (CSV).  No Flask, no database.

GDAL opens a file by its content, not its name: an OGR VRT named ``DK_x.geojson`` reads any
local file (``CSV:/etc/hostname``) or fetches a URL (``/vsicurl/http://…``).  So this module
(1) switches GDAL's network and virtual-file access off when it is imported, (2) keeps only the
drivers the platform uses registered (ESRI Shapefile, GPKG, GeoJSON — every other driver,
VRT and CSV included, is deregistered in this process), (3) decides the driver from the file's
suffix and refuses a file whose first bytes are not that format, and (4) opens only real files
inside the folder being read, by their resolved absolute path.  Ownership tables (CSV) are read
by Python's csv module, never by GDAL."""
from __future__ import annotations

import csv
import io
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyogrio
from pyproj import CRS, Transformer

VECTOR_SUFFIXES = {".shp", ".gpkg", ".geojson", ".json"}
ARCHIVE_SUFFIXES = {".zip", ".rar", ".7z", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".cab"}
OWNERSHIP_TABLES = ("FBF", "CBF", "CBF_JTCY", "CBHT", "CBDKXX")
# The other tables of the standard: kept as delivered and checked where a rule exists.
OTHER_TABLES = ("CBJYQZDJB", "CBJYQZ", "CBJYQZ_QZBF", "CBJYQZ_QZHF", "CBJYQZ_QZZX", "LZHT",
                "QSLYZLFJ")
# suffix -> the one GDAL driver allowed to open it
DRIVERS = {".shp": "ESRI Shapefile", ".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON"}
ALLOWED_DRIVERS = ("ESRI Shapefile", "GPKG", "GeoJSON")

# Network and virtual file systems off for this process (imports read local files only).
GDAL_SAFE_CONFIG = {
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".sanquan-no-network",
    "CPL_VSIL_CURL_ALLOWED_FILENAME": "/sanquan-no-network",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_TIMEOUT": "1",
    "GDAL_HTTP_PROXY": "127.0.0.1:9",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "OGR_GEOJSON_MAX_OBJ_SIZE": "200MB",
    "OGR_SQLITE_PRAGMA": "trusted_schema=OFF",
    "GDAL_VRT_ENABLE_PYTHON": "NO",
}


def _deregister_other_drivers() -> list[str]:
    """Deregister every GDAL driver but the allowed ones, in this process (ctypes on the
    libgdal shipped inside the pyogrio wheel).  Returns the names still registered."""
    import ctypes
    import glob

    libs = glob.glob(os.path.join(os.path.dirname(pyogrio.__file__), os.pardir, "pyogrio.libs",
                                  "libgdal*"))
    if not libs:
        return []
    lib = ctypes.CDLL(libs[0])
    lib.GDALGetDriverCount.restype = ctypes.c_int
    lib.GDALGetDriver.restype = ctypes.c_void_p
    lib.GDALGetDriver.argtypes = [ctypes.c_int]
    lib.GDALGetDriverShortName.restype = ctypes.c_char_p
    lib.GDALGetDriverShortName.argtypes = [ctypes.c_void_p]
    lib.GDALDeregisterDriver.argtypes = [ctypes.c_void_p]
    drivers = [lib.GDALGetDriver(i) for i in range(lib.GDALGetDriverCount())]
    kept = []
    for h in drivers:
        name = lib.GDALGetDriverShortName(h).decode()
        if name in ALLOWED_DRIVERS:
            kept.append(name)
        else:
            lib.GDALDeregisterDriver(h)
    return kept


def harden_gdal() -> list[str]:
    pyogrio.set_gdal_config_options(GDAL_SAFE_CONFIG)
    return _deregister_other_drivers()


REGISTERED_DRIVERS = harden_gdal()


class UnsafeFile(ValueError):
    """A file whose content is not what its name says, or a path that is not a plain local
    file inside the delivery."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{Path(self.path).name}: {reason}")


def _sniff(path: Path, driver: str) -> None:
    """Refuse a file whose first bytes are not the format its suffix names."""
    with open(path, "rb") as f:
        head = f.read(100)
    if driver == "GPKG":
        # SQLite header and the GeoPackage application id 'GPKG' (or 'GP10'/'GP11') at 68.
        if not (head.startswith(b"SQLite format 3\x00") and head[68:72] in (b"GPKG", b"GP10",
                                                                         b"GP11")):
            raise UnsafeFile(path, "not a GeoPackage (no SQLite header with application id GPKG)")
    elif driver == "ESRI Shapefile":
        if len(head) < 100 or int.from_bytes(head[0:4], "big") != 9994:
            raise UnsafeFile(path, "not a Shapefile (.shp header file code 9994 missing)")
    elif driver == "GeoJSON":
        text = head.lstrip(b"\xef\xbb\xbf").lstrip()
        if not text.startswith(b"{"):
            raise UnsafeFile(path, "not GeoJSON (the file does not start with a JSON object)")


def _sibling(path: Path, suffix: str) -> Path | None:
    for cand in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if cand.is_file():
            return cand
    return None


def _shapefile_parts_agree(path: Path, root: Path | None) -> None:
    """The .shp (counted by its .shx index) and the .dbf must hold the same number of records:
    GDAL reads the shorter of the two, and the shapes beyond a short .dbf (another file's,
    or truncated) would be lost without a word."""
    shx, dbf = _sibling(path, ".shx"), _sibling(path, ".dbf")
    if shx is None or dbf is None:
        return  # GDAL refuses a Shapefile without them; the refusal names the file
    shx, dbf = safe_local_file(shx, root), safe_local_file(dbf, root)
    with open(shx, "rb") as f:
        head = f.read(100)
    with open(dbf, "rb") as f:
        dhead = f.read(12)
    if len(head) < 100 or len(dhead) < 12:
        raise UnsafeFile(path, "the .shx or .dbf is truncated")
    shapes = (int.from_bytes(head[24:28], "big") * 2 - 100) // 8
    records = int.from_bytes(dhead[4:8], "little")
    if shapes != records:
        raise UnsafeFile(path, f"the .shp holds {shapes} shapes but the .dbf {records} records "
                               f"(parts of different files?)")


# A .cpg's encoding name as tools write it (upper case; spaces, '_' and '-' left out by
# cpg_key): "UTF-8", "utf_8", "ANSI 936", "GB_2312", "x-gbk", "Windows-936" …
UTF8_NAMES = {"UTF8", "65001", "CP65001"}
GBK_NAMES = {"GBK", "936", "CP936", "GB2312", "GB18030", "ANSI936", "XGBK", "WINDOWS936",
             "MS936", "EUCCN", "GB231280", "CSGB2312"}


def cpg_key(name: str | None) -> str:
    """The name a .cpg (or the user) declares, as UTF8_NAMES and GBK_NAMES hold it."""
    return re.sub(r"[\s_\-]", "", (name or "").upper())


_TWO_BYTE_UTF8 = re.compile("[\u0080-\u07ff]")
_CJK_UTF8 = re.compile("[\u0800-\uffff]")


def _reads_as_utf8(raw: bytes) -> bool:
    """Whether non-ASCII bytes are UTF-8 text rather than GBK that happens to be well-formed
    UTF-8: Chinese in UTF-8 is three bytes a character, while GBK read as UTF-8 gives two-byte
    sequences (叶梅 D2B6 C3B7 reads as Ҷ÷) — so UTF-8, with no more two-byte characters than
    longer ones."""
    try:
        text_ = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    two = len(_TWO_BYTE_UTF8.findall(text_))
    return not two or len(_CJK_UTF8.findall(text_)) >= two


def _broken_utf8(raw: bytes) -> bool:
    """UTF-8 text (mostly three-byte characters) with a few bytes that are not UTF-8 — not GBK,
    which read as UTF-8 fails at nearly every character."""
    text_ = raw.decode("utf-8", "replace")
    bad = text_.count("\ufffd")
    return len(_CJK_UTF8.findall(text_)) - bad >= 2 * bad > 0


def _gdal_encoding(cpg: Path | None, root: Path | None) -> str | None:
    """The encoding a .cpg declares, by a name GDAL knows (None: GDAL reads the .cpg itself)."""
    if cpg is None:
        return None
    return gdal_name(safe_local_file(cpg, root).read_bytes()[:40].decode("ascii", "replace"))


def gdal_name(declared: str | None) -> str | None:
    """An encoding name as a .cpg or a user writes it ("ANSI 936", "x-gbk"), by the name GDAL
    knows; None for a name this reader does not know."""
    key = cpg_key(declared)
    if key in UTF8_NAMES:
        return "UTF-8"
    if key in GBK_NAMES:
        return "GB18030" if key == "GB18030" else "CP936"
    return None


def _dbf_fields(head: bytes) -> list[tuple[str, str, int, int]]:
    """(name, type, offset in the record, length) of each field of a .dbf header."""
    out, off = [], 1  # the record's first byte is its deletion flag
    for k in range(32, len(head) - 31, 32):
        d = head[k:k + 32]
        if d[0] == 0x0D:
            break
        name = d[:11].split(b"\x00")[0].decode("ascii", "replace").strip()
        out.append((name, chr(d[11]), off, d[16]))
        off += d[16]
    return out


@dataclass
class DbfText:
    """What the raw bytes of a .dbf say about its text fields, which GDAL reads silently
    changed: a NUL inside a value cuts it there, bytes that are not text in the encoding are
    dropped, and a record in another encoding is read as nonsense in the declared one."""
    codec: str
    fields: list[tuple[str, str, int, int]]
    records: np.ndarray  # (n, record length) bytes
    flagged: dict[int, str] = field(default_factory=dict)  # record -> why
    utf8_unreadable: bool = False  # pyogrio cannot read it as declared (invalid UTF-8)

    def value(self, rec: int, f: tuple[str, str, int, int]) -> str:
        """The value of a flagged record's field as delivered: trailing blanks dropped (as GDAL
        does), a NUL kept, bytes that are not text in the encoding kept as lone surrogates
        (all non-ASCII bytes when the record is in another encoding)."""
        raw = self.records[rec, f[2]:f[2] + f[3]].tobytes().rstrip(b" \x00")
        other = self.codec == "gbk" and not raw.isascii() and _reads_as_utf8(raw)
        return raw.decode("ascii" if other else self.codec, "surrogateescape")


def _dbf_text(path: Path, encoding: str | None, root: Path | None) -> DbfText | None:
    """The text fields of a .dbf checked on their raw bytes, record by record (vectorised on
    the whole file; a Python step only for records with non-ASCII text in a GBK file and for
    the few records found).  The declared encoding (the caller's, else the .cpg's) is refused
    for the whole file when most records with non-ASCII text are not in it (a .cpg that lies);
    otherwise each record that is not is flagged, and so is each record where a NUL would cut a
    value."""
    dbf = _sibling(path, ".dbf")
    if dbf is None:
        return None
    declared = encoding
    if declared is None:
        cpg = _sibling(path, ".cpg")
        declared = (safe_local_file(cpg, root).read_bytes()[:40].decode("ascii", "replace")
                    if cpg is not None else None)
    name = cpg_key(declared)
    codec = "utf-8" if name in UTF8_NAMES else "gbk" if name in GBK_NAMES else None
    dbf = safe_local_file(dbf, root)
    size = dbf.stat().st_size
    with open(dbf, "rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            return None
        hl, rl = int.from_bytes(head[8:10], "little"), int.from_bytes(head[10:12], "little")
        head += fh.read(max(hl - 32, 0))
    n = min(int.from_bytes(head[4:8], "little"), max(size - hl, 0) // max(rl, 1))
    if rl < 1 or hl < 33 or n < 1:
        return None
    fields = [f for f in _dbf_fields(head) if f[1] == "C" and f[2] + f[3] <= rl]
    records = np.memmap(dbf, np.uint8, "r", offset=hl, shape=(n, rl))  # not read whole
    out = DbfText(codec or "ascii", fields, records)
    if not fields or not n:
        return out
    text_cols = np.concatenate([records[:, f[2]:f[2] + f[3]] for f in fields], axis=1)
    # A NUL followed, in the same field, by anything but NUL or blank: GDAL would cut there.
    for f in fields:
        sub = records[:, f[2]:f[2] + f[3]]
        nul = sub == 0
        some = nul.any(axis=1)
        if not some.any():
            continue
        content = (sub != 0) & (sub != 0x20)
        first_nul = np.argmax(nul, axis=1)
        last = f[3] - 1 - np.argmax(content[:, ::-1], axis=1)
        for r in np.flatnonzero(some & content.any(axis=1) & (last > first_nul)):
            out.flagged.setdefault(int(r), "nul")
    nonascii = np.flatnonzero((text_cols >= 0x80).any(axis=1))
    if codec is None:
        if name and len(nonascii):
            # An encoding this reader does not know (GDAL would read the text as Latin-1, and
            # every Chinese name would be staged garbled without a word): the layer is refused
            # by name, as a .cpg that lies is.  All-ASCII text reads alike in any of them.
            raise CrsError("encoding_unsupported", path=str(path),
                           declared=(declared or "").strip()[:40])
        return out
    if not len(nonascii):
        return out
    data = np.ascontiguousarray(text_cols[nonascii])
    width = data.shape[1]
    blob = data.tobytes()
    bad: list[int] = []  # indexes into nonascii
    chunk = 4096
    for c in range(0, len(nonascii), chunk):  # C decodes; record by record only where one fails
        try:
            blob[c * width:(c + chunk) * width].decode(codec)
        except UnicodeDecodeError:
            for k in range(c, min(c + chunk, len(nonascii))):
                try:
                    blob[k * width:(k + 1) * width].decode(codec)
                except UnicodeDecodeError:
                    bad.append(k)
    other: list[int] = []
    if codec == "gbk":
        # UTF-8 reads as (wrong) GBK without an error.  Chinese in UTF-8 is bytes E0-EF and
        # 80-BF only, while nearly every GBK text has a byte in C0-DF or F0-FF: only a field
        # without one is asked (exactly) whether it is UTF-8.
        row_of = {int(r): k for k, r in enumerate(nonascii)}
        found = set()
        for f in fields:
            sub = records[:, f[2]:f[2] + f[3]]
            maybe = (sub >= 0x80).any(axis=1) & ~((sub >= 0xC0) & ((sub <= 0xDF) | (sub >= 0xF0))
                                                  ).any(axis=1)
            for r in np.flatnonzero(maybe).tolist():
                if r not in found and _reads_as_utf8(sub[r].tobytes().rstrip(b" \x00")):
                    found.add(r)
                    other.append(row_of[r])
    wrong = len(set(bad) | set(other))
    if wrong * 2 > len(nonascii):
        raise CrsError("encoding_mismatch", path=str(path), declared=(declared or "").strip(),
                       found="UTF-8" if codec == "gbk" and len(other) >= len(bad)
                       else "not UTF-8 (GBK?)" if codec == "utf-8" else "not GBK")
    for k in bad:
        out.flagged[int(nonascii[k])] = "bytes"
    for k in other:
        out.flagged[int(nonascii[k])] = "other"
    out.utf8_unreadable = codec == "utf-8" and bool(bad)
    return out


def _restore_dbf_values(layer: Layer, dbf: DbfText) -> None:
    """Put the flagged records' text values as delivered into the layer's columns (the value
    check then reports each on its feature); a record in another encoding is also said so."""
    where = {int(fid): i for i, fid in enumerate(layer.fids.tolist())}
    index = {name: j for j, name in enumerate(layer.fields)}
    for rec, why in sorted(dbf.flagged.items()):
        i = where.get(rec)
        if i is None:
            continue
        for f in dbf.fields:
            j = index.get(f[0])
            if j is None or layer.columns[j].dtype != object:
                continue
            layer.columns[j][i] = dbf.value(rec, f) or None
        if why == "other":
            layer.value_issues.setdefault(i, []).append((
                "bad_character", f"{layer.name} record {rec + 1}: its text is not in the "
                f"declared encoding {dbf.codec.upper()} (it reads as UTF-8); its non-ASCII "
                f"bytes are staged as U+FFFD, the delivered bytes kept in _original"))


def safe_local_file(path: Path, root: Path | None = None) -> Path:
    """The resolved path of a plain local file (inside `root` when given); GDAL connection
    strings (`/vsi…/`, `CSV:…`, URLs) and links out of the folder are refused."""
    raw = str(path)
    if raw.startswith("/vsi") or "://" in raw or (":" in raw.split("/")[0] and
                                                   not raw.startswith("/")):
        raise UnsafeFile(path, "not a local file path")
    p = Path(os.path.abspath(raw))
    resolved = p.resolve()
    if root is not None and not resolved.is_relative_to(Path(root).resolve()):
        raise UnsafeFile(path, "points outside the delivery")
    if not resolved.is_file():
        raise UnsafeFile(path, "not a regular file")
    return resolved


def driver_for(path: Path) -> str:
    driver = DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise UnsafeFile(path, "not one of the accepted formats (.shp, .gpkg, .geojson)")
    return driver


class CrsError(ValueError):
    """The file's CRS is unknown, or its coordinates do not fit the CRS."""

    def __init__(self, reason: str, **info):
        self.reason = reason
        self.info = info
        super().__init__(f"{reason}: {info}")


@dataclass(frozen=True)
class Limits:
    """Bounds on what one feature may be (settings of the app, passed in)."""
    max_vertices: int = 100_000
    max_extent_m: float = 20_000.0  # the longer side of a parcel's bounding box


@dataclass
class Layer:
    path: Path
    name: str
    kind: str  # 'DK' contract parcels, 'ZJD' homesteads
    srid: int
    crs_from: str  # 'file' or 'declared'
    encoding: str | None
    fields: list[str]
    fids: np.ndarray
    wkb: np.ndarray  # WKB geometries in the layer's CRS (None where there is none)
    columns: list[np.ndarray]
    geoms: np.ndarray | None = None  # parsed, 2D, SRID set; None where unusable
    # feature index -> [(rule, detail)]: what the reader found wrong with the geometry
    issues: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    # feature index -> raw (ISO) WKB that shapely cannot parse (curves): PostGIS linearises it
    unparsed: dict[int, bytes] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)  # not faults: Z/M dropped, …
    # feature index -> [(rule, detail)]: what is wrong with its attribute values
    value_issues: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    # feature index -> {field: value as staged, '_original': {field: delivered, JSON}}
    fixes: dict[int, dict] = field(default_factory=dict)

    def geometries(self) -> np.ndarray:
        if self.geoms is None:
            self.geoms = parse_geometries(self, Limits())
        return self.geoms

    def __len__(self) -> int:
        return len(self.fids)

    def rows(self):
        """(fid, {field: plain Python value}, wkb) per feature; columns converted once."""
        cols = [_plain_list(c) for c in self.columns]
        fids = self.fids.tolist()
        fixes = self.fixes
        for i, values in enumerate(zip(*cols, strict=True) if cols else ([()] * len(fids))):
            attrs = dict(zip(self.fields, values, strict=True))
            if fixes and i in fixes:
                attrs.update(fixes[i])
            yield fids[i], attrs, self.wkb[i]

    def check_values(self) -> None:
        """Hostile characters in the text columns (HOSTILE_RE): one search over each column
        joined; only a column where something is found is gone through value by value.  Each
        value found is a fault of its feature; NUL and lone surrogates are staged as U+FFFD,
        the delivered value kept under `_original`."""
        import json

        fids = None
        for name, col in zip(self.fields, self.columns, strict=True):
            if col.dtype.kind == "f":  # an infinite number (1e309 in a .dbf) is no number
                inf = np.flatnonzero(np.isinf(col))
                fids = self.fids.tolist() if fids is None and len(inf) else fids
                for i in inf.tolist():
                    self.value_issues.setdefault(i, []).append((
                        "bad_number", f"{self.name} feature {fids[i]}: {name} = {col[i]} is "
                                      "not a finite number; staged as null"))
            if col.dtype != object:
                continue
            values = col.tolist()
            try:
                if not maybe_hostile(",".join(filter(None, values))):
                    continue
            except TypeError:  # not only texts (bytes of a binary field): value by value
                pass
            fids = self.fids.tolist() if fids is None else fids
            for i, v in enumerate(values):
                if isinstance(v, str) and HOSTILE_RE.search(v):
                    detail, staged = value_fault(name, v)
                    self.value_issues.setdefault(i, []).append(
                        ("bad_character", f"{self.name} feature {fids[i]}: {detail}"))
                    if staged is not None:
                        fix = self.fixes.setdefault(i, {})
                        fix[name] = staged
                        fix.setdefault("_original", {})[name] = json.dumps(v, ensure_ascii=True)


WKB_TYPES = {1: "Point", 2: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
             6: "MultiPolygon", 7: "GeometryCollection", 8: "CircularString",
             9: "CompoundCurve", 10: "CurvePolygon", 11: "MultiCurve", 12: "MultiSurface",
             13: "Curve", 14: "Surface", 15: "PolyhedralSurface", 16: "TIN", 17: "Triangle"}


def wkb_type_name(raw: bytes) -> str:
    """The geometry type named in a WKB header (ISO and EWKB flags understood)."""
    if not raw or len(raw) < 5:
        return "?"
    order = "little" if raw[0] == 1 else "big"
    t = int.from_bytes(raw[1:5], order) & 0x0FFFFFFF
    return WKB_TYPES.get(t % 1000, f"type {t}")


def parse_geometries(layer: Layer, limits: Limits) -> np.ndarray:
    """Parse every geometry without ever raising: null and empty shapes, Z and M coordinates
    (dropped, counted as notes), curves (left to PostGIS to linearise), unparseable WKB,
    non-finite or far-off coordinates, too many vertices and too large features are each
    recorded for the feature they belong to."""
    import shapely

    wkb = layer.wkb
    n = len(wkb)
    geoms = shapely.from_wkb(wkb, on_invalid="ignore") if n else np.empty(0, dtype=object)
    geoms = np.asarray(geoms, dtype=object)
    present = np.array([w is not None for w in wkb], dtype=bool) if n else np.zeros(0, bool)
    parsed = ~shapely.is_missing(geoms) if n else np.zeros(0, bool)
    for i in np.flatnonzero(~present):
        layer.issues.setdefault(int(i), []).append(("missing_shape", "no geometry (null shape)"))
    for i in np.flatnonzero(present & ~parsed):
        raw = bytes(wkb[i])
        kind = wkb_type_name(raw)
        if kind in ("CircularString", "CompoundCurve", "CurvePolygon", "MultiCurve",
                    "MultiSurface", "Curve", "Surface"):
            layer.unparsed[int(i)] = raw
        else:
            layer.issues.setdefault(int(i), []).append(
                ("unreadable_geometry", f"the geometry ({kind}) cannot be read"))
    if parsed.any():
        g = geoms[parsed]
        has_z = shapely.has_z(g)
        has_m = shapely.has_m(g) if hasattr(shapely, "has_m") else np.zeros(len(g), bool)
        if has_z.any():
            layer.notes["z_dropped"] = layer.notes.get("z_dropped", 0) + int(has_z.sum())
        if has_m.any():
            layer.notes["m_dropped"] = layer.notes.get("m_dropped", 0) + int(has_m.sum())
        if has_z.any() or has_m.any():
            g = shapely.force_2d(g)
        geoms[parsed] = g
        # Coordinates: finite, not absurdly many, not absurdly far apart.
        idx = np.flatnonzero(parsed)
        nverts = shapely.get_num_coordinates(g)
        bounds = shapely.bounds(g)
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(bounds).all(axis=1) | shapely.is_empty(g)
        # Rings PostGIS would refuse to store: fewer than 4 points, or not closed; lines of
        # one point.
        rings, owner = shapely.get_rings(g, return_index=True)
        if len(rings):
            few = (shapely.get_num_coordinates(rings) < 4)
            open_ = ~few & ~shapely.is_closed(rings)
            for k in np.unique(owner[few]):
                layer.issues.setdefault(int(idx[k]), []).append(
                    ("too_few_points", "a ring has fewer than 4 points"))
            for k in np.unique(owner[open_]):
                layer.issues.setdefault(int(idx[k]), []).append(
                    ("invalid_geometry", "a ring is not closed"))
        parts, owner = shapely.get_parts(g, return_index=True)
        lines = shapely.get_type_id(parts) == 1
        short = lines & (shapely.get_num_coordinates(parts) < 2)
        for k in np.unique(owner[short]):
            layer.issues.setdefault(int(idx[k]), []).append(
                ("wrong_geometry_type", "a line of one point where a polygon is expected"))
        for k in np.flatnonzero(~finite):
            layer.issues.setdefault(int(idx[k]), []).append(
                ("extreme_coordinates", "coordinates are not finite numbers (NaN or infinity)"))
        for k in np.flatnonzero(finite & (nverts > limits.max_vertices)):
            layer.issues.setdefault(int(idx[k]), []).append(
                ("too_many_vertices", f"{int(nverts[k])} vertices; at most "
                                      f"{limits.max_vertices} are accepted per feature"))
    # What the reader refused is not handed on: the feature is kept, its geometry is not used.
    for i in layer.issues:
        geoms[i] = None
    return shapely.set_srid(geoms, layer.srid)


@dataclass
class Delivery:
    layers: list[Layer] = field(default_factory=list)
    tables: dict[str, list[dict]] = field(default_factory=dict)
    checked: dict[str, Table] = field(default_factory=dict)  # the tables' faults and notes

    @property
    def feature_count(self) -> int:
        return sum(len(x) for x in self.layers)

    def notes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for layer in self.layers:
            for k, v in layer.notes.items():
                out[k] = out.get(k, 0) + v
            if layer.unparsed:
                out["curves"] = out.get("curves", 0) + len(layer.unparsed)
        for table in self.checked.values():
            for k, v in table.notes.items():
                out[k] = out.get(k, 0) + v
        return out

    # Every field of a layer or table that carries a division-prefixed code.
    CODE_FIELDS = ("DKBM", "BDCDYH", "FBFBM", "CBFBM", "CBHTBM", "YCBHTBM", "CBJYQZBM")

    def codes(self) -> list[str]:
        """The well-formed codes that say where the delivery lies — in every layer and every
        table (a CBDKXX row naming another district's parcel counts too), full-width digits
        read as digits — for the jurisdiction check."""
        import re

        out = []
        for layer in self.layers:
            for f in self.CODE_FIELDS:
                if f in layer.fields:
                    col = layer.columns[layer.fields.index(f)]
                    out += [str(v) for v in col.tolist() if v is not None]
        for rows in self.tables.values():
            for row in rows:
                out += [str(row[f]) for f in self.CODE_FIELDS if row.get(f)]
        out = [unicodedata.normalize("NFKC", c).strip() for c in out]
        return [c for c in out if re.match(r"^[0-9]{12}", c)]


def _plain_list(col: np.ndarray) -> list:
    """A column as plain Python values, NaN and NaT as None (JSON has no NaN)."""
    if col.dtype.kind == "f":
        return [None if v != v or v in (float("inf"), float("-inf")) else v for v in col.tolist()]
    if col.dtype.kind in "iub":
        return col.tolist()
    if col.dtype.kind == "M":
        return [None if v is None else str(v)[:10] for v in col.astype("datetime64[D]").tolist()]
    return [v if v is None or type(v) is str else _plain(v) for v in col.tolist()]


def _plain(v):
    if v is None:
        return None
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.datetime64):
        return str(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    if isinstance(v, (str, int, bool, dict)):
        return v
    return str(v)


def layer_kind(name: str, fields: list[str]) -> str | None:
    up = name.upper()
    if up.startswith("ZJD") or "BDCDYH" in fields:
        return "ZJD"
    if up.startswith("DK") or "DKBM" in fields:
        return "DK"
    return None


def epsg_of(crs_text: str | None) -> int | None:
    if not crs_text:
        return None
    crs = CRS.from_user_input(crs_text)
    code = crs.to_epsg(min_confidence=70)
    return code


def _area_of_use(srid: int):
    return CRS.from_epsg(srid).area_of_use


def outside_area_of_use(srid: int, bounds: np.ndarray) -> np.ndarray:
    """For each bounding box (minx, miny, maxx, maxy) in EPSG:srid, True when it cannot lie in
    the CRS's area of use (0.5° margin), or is not finite."""
    crs = CRS.from_epsg(srid)
    aou = crs.area_of_use
    bounds = np.asarray(bounds, dtype=float).reshape(-1, 4)
    if aou is None or not len(bounds):
        return np.zeros(len(bounds), bool)
    xs = np.concatenate([bounds[:, 0], bounds[:, 2], bounds[:, 0], bounds[:, 2]])
    ys = np.concatenate([bounds[:, 1], bounds[:, 1], bounds[:, 3], bounds[:, 3]])
    with np.errstate(all="ignore"):
        if crs.is_geographic:
            lons, lats = xs, ys
        else:
            t = Transformer.from_crs(crs, CRS.from_epsg(4490), always_xy=True)
            lons, lats = t.transform(xs, ys, errcheck=False)
        lons = np.asarray(lons).reshape(4, -1)
        lats = np.asarray(lats).reshape(4, -1)
        margin = 0.5
        ok = (np.isfinite(lons).all(axis=0) & np.isfinite(lats).all(axis=0)
              & (lons.min(axis=0) >= aou.west - margin) & (lons.max(axis=0) <= aou.east + margin)
              & (lats.min(axis=0) >= aou.south - margin) & (lats.max(axis=0) <= aou.north + margin))
    return ~ok


def check_plausible(srid: int, bounds: tuple[float, float, float, float]) -> None:
    """Refuse coordinates that cannot be in the CRS's area of use (e.g. a zone-prefixed
    easting read as EPSG:4547, or metres read as degrees)."""
    if outside_area_of_use(srid, np.array([bounds]))[0]:
        aou = _area_of_use(srid)
        raise CrsError("implausible", srid=srid, bounds=bounds,
                       area=(aou.west, aou.south, aou.east, aou.north), name=aou.name)


def read_layer(path: Path, layer: str | None = None, declared_srid: int | None = None,
               encoding: str | None = None, limits: Limits | None = None,
               root: Path | None = None) -> Layer:
    import shapely

    driver = driver_for(path)
    path = safe_local_file(path, root)
    _sniff(path, driver)
    dbf = None
    if driver == "ESRI Shapefile":
        _shapefile_parts_agree(path, root)
        dbf = _dbf_text(path, encoding, root)
    kwargs = {"layer": layer} if layer else {}
    if encoding:
        # a declared name GDAL may not know ("ANSI 936", "x-gbk") by one it does
        kwargs["encoding"] = gdal_name(encoding) or encoding
    elif driver == "ESRI Shapefile" and not path.with_suffix(".cpg").exists():
        raise CrsError("encoding_unknown", path=str(path))
    elif driver == "ESRI Shapefile":
        # the .cpg's name as this module reads it (GBK_NAMES, UTF8_NAMES), given to GDAL by a
        # name it knows: GDAL does not know "ANSI 936" and read such a GBK file as Latin-1
        # (谭玉 staged as "Ì·Óñ", silently)
        kwargs["encoding"] = _gdal_encoding(_sibling(path, ".cpg"), root)
    info = pyogrio.read_info(str(path), **kwargs)
    if info.get("driver") not in ALLOWED_DRIVERS or (info.get("driver") != driver):
        raise UnsafeFile(path, f"opened as {info.get('driver')}, expected {driver}")
    if dbf is not None and dbf.utf8_unreadable:
        # Some records are not UTF-8: pyogrio would refuse the whole file.  Read it byte for
        # byte (Latin-1) and decode each text as UTF-8, keeping what is not as lone surrogates.
        meta, fids, wkb, cols = pyogrio.raw.read(str(path), return_fids=True,
                                                 **{**kwargs, "encoding": "latin1"})
        cols = [np.array([v.encode("latin1").decode("utf-8", "surrogateescape")
                          if isinstance(v, str) else v for v in c.tolist()], dtype=object)
                if c.dtype == object else c for c in cols]
    else:
        meta, fids, wkb, cols = pyogrio.raw.read(str(path), return_fids=True, **kwargs)
    file_srid = epsg_of(meta.get("crs"))
    srid = declared_srid or file_srid
    if srid is None:
        raise CrsError("crs_unknown", path=str(path))
    if declared_srid and file_srid and declared_srid != file_srid:
        raise CrsError("crs_conflict", path=str(path), file=file_srid, declared=declared_srid)
    fields = [str(f) for f in meta["fields"]]
    name = layer or path.stem
    kind = layer_kind(name, fields)
    if kind is None:
        raise CrsError("layer_unknown", path=str(path), layer=name)
    out = Layer(path, name, kind, srid, "declared" if declared_srid else "file", encoding,
                fields, fids, wkb, list(cols))
    if dbf is not None and dbf.flagged:
        _restore_dbf_values(out, dbf)
    out.check_values()
    out.geoms = parse_geometries(out, limits or Limits())
    usable = np.flatnonzero(~shapely.is_missing(out.geoms) & ~shapely.is_empty(out.geoms))
    if len(usable):
        far = outside_area_of_use(srid, shapely.bounds(out.geoms[usable]))
        if far.sum() * 2 > len(usable):  # most of the layer: the CRS is wrong, not the features
            bb = shapely.bounds(out.geoms[usable])
            bb = bb[np.isfinite(bb).all(axis=1)]
            total = (bb[:, 0].min(), bb[:, 1].min(), bb[:, 2].max(), bb[:, 3].max()) \
                if len(bb) else (float("nan"),) * 4
            aou = _area_of_use(srid)
            raise CrsError("implausible", srid=srid, bounds=tuple(float(x) for x in total),
                           area=(aou.west, aou.south, aou.east, aou.north), name=aou.name)
        _place_checks(out, usable, far, limits or Limits())
    return out


def _place_checks(out: Layer, usable: np.ndarray, far: np.ndarray, lim: Limits) -> None:
    """Per feature: coordinates outside the CRS's area of use, and features too large."""
    import shapely

    srid = out.srid
    name_ = _area_of_use(srid).name if far.any() else ""
    for k in usable[far]:
        out.issues.setdefault(int(k), []).append(
            ("extreme_coordinates", f"coordinates outside the area of use of EPSG:{srid} "
                                    f"({name_})"))
        out.geoms[k] = None
    # Size: the longer side of each feature's bounding box (degrees as ~111 km).
    scale = 111_000.0 if CRS.from_epsg(srid).is_geographic else 1.0
    ok = usable[~far]
    bb = shapely.bounds(out.geoms[ok])
    extent = np.max(np.abs(bb[:, 2:] - bb[:, :2]), axis=1) * scale if len(ok) else []
    for k, e in zip(ok[np.asarray(extent) > lim.max_extent_m], np.asarray(extent)[
            np.asarray(extent) > lim.max_extent_m], strict=True):
        out.issues.setdefault(int(k), []).append(
            ("geometry_too_large", f"{e:.0f} m across; at most {lim.max_extent_m:.0f} m "
                                   f"are accepted per feature"))
        out.geoms[k] = None


class DuplicateTable(ValueError):
    """One ownership table delivered in two files (two folders, or names differing only in
    case or Unicode form): which is the delivery's is unknowable, so neither is guessed."""

    def __init__(self, table: str, paths: list[str]):
        self.table = table
        self.paths = paths
        super().__init__(f"{table}: {', '.join(paths)}")


def check_geometry(wkt: str, srid: int, limits: Limits | None = None):
    """A geometry typed by a person (a correction), read like a delivered one: WKT (EWKT only
    with the layer's own SRID), dropped to 2D, then the reader's checks (rings, finite
    coordinates, vertices, the CRS's area of use, size).  Returns (2D WKB or None, [(rule,
    detail)]); raises ValueError when the text is not WKT at all."""
    import shapely

    text = (wkt or "").strip()
    if text[:5].upper() == "SRID=":
        head, _, text = text.partition(";")
        try:
            given = int(head[5:])
        except ValueError:
            raise ValueError("the SRID prefix is not a number") from None
        if given != srid:
            raise ValueError(f"the geometry is given in EPSG:{given}; this layer is EPSG:{srid}")
    try:
        g = shapely.from_wkt(text)
    except NotImplementedError:  # CIRCULARSTRING, CURVEPOLYGON, …
        raise ValueError("curved geometries are not taken in a correction; give the polygon "
                         "with straight segments") from None
    except (shapely.errors.GEOSException, ValueError, TypeError) as e:
        raise ValueError(str(e).split("\n")[0][:200] or "not WKT") from None
    if g is None:
        raise ValueError("not WKT")
    wkb = shapely.to_wkb(shapely.force_2d(g))
    layer = Layer(Path("correction"), "correction", "DK", srid, "declared", None, [],
                  np.array([1]), np.array([wkb], dtype=object), [])
    lim = limits or Limits()
    layer.geoms = parse_geometries(layer, lim)
    usable = np.flatnonzero(~shapely.is_missing(layer.geoms) & ~shapely.is_empty(layer.geoms))
    if len(usable):
        far = outside_area_of_use(srid, shapely.bounds(layer.geoms[usable]))
        _place_checks(layer, usable, far, lim)
    issues = layer.issues.get(0, [])
    return wkb, issues


# ---------------------------------------------------------------------------------------------
# Hostile values.  A delivered text may hold characters that no field of the standard holds and
# that change what a person reads or what the database can store: C0/C1 control characters
# (NUL, line breaks and tabs included), bidirectional controls (U+202A–U+202E overrides and
# embeddings, U+2066–U+2069 isolates, U+200E/U+200F/U+061C marks), a byte-order mark inside the
# text (U+FEFF), noncharacters (U+FDD0–U+FDEF, U+FFFE, U+FFFF) and lone surrogates (bytes that
# are not text in the file's encoding, kept by surrogateescape).  Each such value is a fault of
# its row or feature (rule `bad_character`); the value is staged as delivered, except that NUL
# and lone surrogates — which PostgreSQL's jsonb cannot hold — are staged as U+FFFD with the
# delivered value kept, JSON-escaped (ASCII, exact), under the row's `_original` key.  The row
# is quarantined by its fault, so nothing altered is ever registered.
_OTHER_HOSTILE = ("\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ufdd0-\ufdef"
                  "\ufffe\uffff\ud800-\udfff")
HOSTILE_RE = re.compile(f"[\x00-\x1f{_OTHER_HOSTILE}]")
# The same but for line breaks: one search over a whole CSV text, whose lines end in them.
HOSTILE_IN_TEXT_RE = re.compile(f"[\x00-\x09\x0b\x0c\x0e-\x1f{_OTHER_HOSTILE}]")
UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")
# A byte-level prefilter (C speed, ~1 ns a byte): a text without any of these bytes in UTF-8
# holds no hostile character — controls, and the lead bytes of C1 controls (C2), U+061C (D8),
# the bidi controls and marks (E2), BOM and noncharacters (EF) and surrogates (ED).
_SUSPECT_BYTES = bytes(range(0x20)) + b"\x7f\xc2\xd8\xe2\xed\xef"
_NOT_SUSPECT = bytes(b for b in range(256) if b not in _SUSPECT_BYTES)
_LINE_ENDS = b"\r\n"


def maybe_hostile(text_: str, line_ends: bool = False) -> bool:
    """Whether `text_` may hold a hostile character (HOSTILE_RE); False is certain.  With
    `line_ends`, CR and LF are not counted (a whole file's text)."""
    try:
        raw = text_.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return True
    left = raw.translate(None, _NOT_SUSPECT)
    if line_ends and left:
        left = left.translate(None, _LINE_ENDS)
    if not left:
        return False
    return bool((HOSTILE_IN_TEXT_RE if line_ends else HOSTILE_RE).search(text_))
_C0_NAMES = {0: "NUL", 8: "BACKSPACE", 9: "TAB", 10: "LINE FEED", 11: "VERTICAL TAB",
             12: "FORM FEED", 13: "CARRIAGE RETURN", 27: "ESCAPE", 127: "DELETE"}


def char_name(ch: str) -> str:
    """U+XXXX and what it is, for a fault's detail."""
    cp = ord(ch)
    if 0xDC80 <= cp <= 0xDCFF:
        return f"byte 0x{cp - 0xDC00:02X} (not text in the file's encoding)"
    if 0xD800 <= cp <= 0xDFFF:
        return f"U+{cp:04X} (a lone surrogate)"
    name = _C0_NAMES.get(cp) or unicodedata.name(ch, "")
    if not name:
        name = "control character" if cp < 0xA0 else "noncharacter"
    return f"U+{cp:04X} ({name})"


def value_fault(field_: str, value: str) -> tuple[str, str | None]:
    """(detail, staged value, or None when the value is staged as delivered) of a text that
    holds hostile characters; called only for values HOSTILE_RE found."""
    found: list[tuple[str, int]] = []
    for m in HOSTILE_RE.finditer(value):
        name = char_name(m.group())
        if all(name != n for n, _ in found):
            found.append((name, m.start() + 1))
        if len(found) == 4:
            break
    detail = f"{field_} holds " + ", ".join(f"{n} at character {p}" for n, p in found)
    if UNSTORABLE_RE.search(value):
        detail += ("; staged with U+FFFD in its place, the delivered value is kept in "
                   f"_original.{field_}")
        return detail, UNSTORABLE_RE.sub("\ufffd", value)
    return detail, None


def check_row_values(row: dict, where: str) -> list[tuple[str, str]]:
    """The bad_character faults of one row (texts, None, numbers or lists of texts), each
    naming its field and characters; NUL and lone surrogates replaced in place, the delivered
    values kept under `_original` (JSON with ASCII escapes: json.loads gives them back
    exactly).  Keys (column names) are the caller's."""
    import json

    issues = []
    original = {}
    for k, v in list(row.items()):
        if isinstance(v, list):
            text_ = "\u2063".join(x for x in v if isinstance(x, str))
        elif isinstance(v, str):
            text_ = v
        else:
            continue
        if not HOSTILE_RE.search(text_):
            continue
        detail, staged = value_fault(str(k), text_)
        issues.append(("bad_character", f"{where}: {detail}"))
        if staged is not None:
            original[k] = json.dumps(v, ensure_ascii=True)
            row[k] = ([UNSTORABLE_RE.sub("\ufffd", x) if isinstance(x, str) else x for x in v]
                      if isinstance(v, list) else staged)
    if original:
        row["_original"] = original
    return issues


@dataclass
class Table:
    """An ownership table as read: its rows (one per record, in order), what is wrong with
    single rows (row index → [(rule, detail)]) and with the file as a whole."""
    rows: list[dict]
    issues: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    file_issues: list[tuple[str, str]] = field(default_factory=list)
    encoding: str = "UTF-8"
    notes: dict = field(default_factory=dict)
    lines: list[int] = field(default_factory=list)  # the line each row begins on


def _decode_table(raw: bytes) -> tuple[str, str, int]:
    """(text, encoding, lines in another encoding or not text at all).  A whole UTF-8 file
    (with or without BOM) in one C call; else the file's encoding is what most of its non-ASCII
    lines are (UTF-8 or GB18030) and each other line keeps its non-ASCII bytes as lone
    surrogates (surrogateescape, exactly recoverable), which the value check reports on the
    row that holds them: nothing read in the wrong encoding is passed on as text."""
    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    try:
        return body.decode("utf-8"), "UTF-8", 0
    except UnicodeDecodeError:
        pass
    lines = body.split(b"\n")
    kinds = []
    for line in lines:
        if line.isascii():
            kinds.append("a")
        elif _reads_as_utf8(line):
            kinds.append("u")
        elif _broken_utf8(line):  # UTF-8 text with a few bytes that are not
            kinds.append("b")
        else:
            try:
                line.decode("gb18030")
                kinds.append("g")
            except UnicodeDecodeError:
                kinds.append("x")
    enc = "GB18030" if kinds.count("g") > kinds.count("u") + kinds.count("b") else "UTF-8"
    mine = "g" if enc == "GB18030" else "u"
    out = []
    other = 0
    for line, kind in zip(lines, kinds, strict=True):
        if kind in ("a", mine):
            out.append(line.decode(enc.lower()))
        else:
            other += 1
            out.append(line.decode("ascii", "surrogateescape"))
    return "\n".join(out), enc, other


def _header(names: list[str]):
    """Column names as the standard spells them (surrounding spaces, a BOM, width and case
    dropped: a column name is not a delivered value), a name given twice kept apart (NAME,
    NAME#2, …), an empty one named by its place.  Returns (names, [(first, later) index pairs
    of a name given twice], file faults, notes)."""
    out, twins, issues, notes = [], [], [], {}
    seen: dict[str, int] = {}
    for i, raw in enumerate(names):
        name = unicodedata.normalize("NFKC", raw.replace("\ufeff", "")).strip().upper()
        if name != raw:
            notes["header_normalised"] = notes.get("header_normalised", 0) + 1
        if HOSTILE_RE.search(name):
            detail, _ = value_fault(f"column {i + 1}", name)
            issues.append(("bad_character", f"line 1 (header): {detail}"))
            name = HOSTILE_RE.sub("\ufffd", name)
        name = name or f"_COL{i + 1}"
        if name in seen:
            twins.append((seen[name], i))
            name = f"{name}#{sum(1 for a, _ in twins if a == seen[name]) + 1}"
        else:
            seen[name] = i
        out.append(name)
    return out, twins, issues, notes


def read_table_checked(path: Path) -> Table:
    """An ownership table (CSV, UTF-8 or GB18030) read without losing or silently changing
    anything: every record is a row (too few cells: the missing ones are None; too many: the
    rest under `_extra`; both a `ragged_row` fault), a column named twice keeps both (the
    second as NAME#2; a row where they differ is a `duplicate_column` fault), a cell of any
    size is read, and hostile characters and bytes not in the file's encoding are faults of
    their row (check_row_values).  The usual file costs one decode, one search over the whole
    text and csv.reader's rows, as before."""
    raw = path.read_bytes()
    text_, enc, other_lines = _decode_table(raw)
    out = Table([], encoding=enc)
    if other_lines:
        out.notes["lines_in_other_encoding"] = other_lines
    if csv.field_size_limit() < 1 << 30:
        csv.field_size_limit(1 << 30)  # a cell of any size is read (and found too long)
    reader = csv.reader(io.StringIO(text_, newline=""))
    first = next(reader, None)  # the header, even if blank (then every row is ragged)
    if first is None:
        out.file_issues.append(("empty_table", f"{path.name} holds no header line and no "
                                               "rows"))
        return out
    header, twins, out.file_issues, header_notes = _header(first)
    out.notes.update(header_notes)
    n = len(header)
    rows, issues = out.rows, out.issues
    top = reader.line_num  # the lines up to the header
    blanks = 0
    odd: list[tuple[int, int]] = []  # (row, cells) of rows with too few or too many cells
    try:
        for r in reader:
            if len(r) == n and r:
                rows.append(dict(zip(header, r)))  # noqa: B905 (lengths equal)
            elif not r:  # blank lines are skipped, as DictReader does
                blanks += 1
            else:
                row = dict(zip(header, r[:n]))  # noqa: B905
                if len(r) < n:  # missing cells are None (DictReader's restval)
                    row.update(dict.fromkeys(header[len(r):]))
                else:
                    row["_extra"] = r[n:]
                odd.append((len(rows), len(r)))
                rows.append(row)
    except csv.Error as e:  # not raised by today's csv (strict=False); kept as a file fault
        out.file_issues.append(("bad_csv", f"{path.name} line {reader.line_num}: {e}; the "
                                           "rest of the file was not read"))
    if not first:
        out.file_issues.append(("empty_table", f"{path.name} line 1 is empty: no header line"
                                + (f"; its {len(rows)} rows are staged with their cells under "
                                   "_extra" if rows else " and no rows")))
    # A line break inside a (quoted) cell: some record took more than one line.
    multiline = reader.line_num - top != len(rows) + blanks
    hostile = maybe_hostile(text_, line_ends=True)
    if not (odd or twins or multiline or hostile):
        return out
    # The rare file with something to report: where each row begins, and what is wrong.
    out.lines = lines = _record_lines(text_, top)
    lines += [0] * (len(rows) - len(lines))  # (a file csv could not read to its end)
    for i, cells in odd:
        issues[i] = [("ragged_row", f"{path.name} line {lines[i]}: {cells} cells, the "
                                    f"header has {n}")]
    for a, b in twins:
        for i, row in enumerate(rows):
            if row.get(header[b]) is not None and row.get(header[a]) != row.get(header[b]):
                issues.setdefault(i, []).append((
                    "duplicate_column", f"{path.name} line {lines[i]}: column {header[a]} "
                    f"is delivered twice (columns {a + 1} and {b + 1}) with different values"))
    if hostile or multiline:
        for i, row in enumerate(rows):
            vals = [v for v in row.values() if isinstance(v, str)] + row.get("_extra", [])
            if HOSTILE_RE.search("\u2063".join(vals)):
                found = check_row_values(row, f"{path.name} line {lines[i]}")
                issues.setdefault(i, []).extend(found)
    return out


def _record_lines(text_: str, top: int) -> list[int]:
    """The line each record after the header begins on (blank lines skipped as above)."""
    reader = csv.reader(io.StringIO(text_, newline=""))
    out = []
    start = 1
    try:
        for r in reader:
            if reader.line_num > top and r:
                out.append(start)
            start = reader.line_num + 1
    except csv.Error:
        pass
    return out


def read_table(path: Path) -> list[dict]:
    return read_table_checked(path).rows


def read_delivery(path: Path, declared_srid: int | None = None,
                  encoding: str | None = None, limits: Limits | None = None) -> Delivery:
    """A NY/T 2539 package folder (vector layers + ownership CSVs), or one vector file."""
    path = Path(path)
    out = Delivery()
    if path.is_dir():
        root = path
        files = sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink())
        vectors = [p for p in files if p.suffix.lower() in VECTOR_SUFFIXES]
        seen: dict[str, Path] = {}
        for p in files:
            name = unicodedata.normalize("NFKC", p.stem).upper()
            if p.suffix.lower() in ARCHIVE_SUFFIXES or "".join(p.suffixes[-2:]).lower() in (
                    ".tar.gz", ".tar.bz2", ".tar.xz"):
                raise UnsafeFile(p, "an archive inside the delivery is not opened; deliver its "
                                    "content unpacked in the one zip")
            if name in OWNERSHIP_TABLES + OTHER_TABLES and p.suffix.lower() not in (
                    ".csv", ".shp", ".shx", ".dbf", ".prj", ".cpg") or (
                    name in OWNERSHIP_TABLES + OTHER_TABLES and p.suffix.lower() == ".dbf"
                    and _sibling(p, ".shp") is None):
                raise UnsafeFile(p, f"the table {name} is read from CSV only; export it as "
                                    f"{name}.csv (UTF-8 or GBK)")
            if p.suffix.lower() == ".csv" and name in OWNERSHIP_TABLES + OTHER_TABLES:
                if name in seen:  # never one silently in place of the other
                    raise DuplicateTable(name, [str(seen[name].relative_to(root)),
                                                str(p.relative_to(root))])
                seen[name] = p
                table = read_table_checked(safe_local_file(p, root))
                out.tables[name] = table.rows
                out.checked[name] = table
    else:
        root = path.parent
        vectors = [path]
    for p in vectors:
        if p.suffix.lower() == ".gpkg":
            safe = safe_local_file(p, root)
            _sniff(safe, "GPKG")
            for name, _ in pyogrio.list_layers(str(safe)):
                out.layers.append(read_layer(p, name, declared_srid, encoding, limits, root))
        else:
            out.layers.append(read_layer(p, None, declared_srid, encoding, limits, root))
    return out


def _column(values: list):
    """A pyogrio column from Python values: float64 when every value is a number (None → NaN),
    otherwise strings."""
    nonnull = [v for v in values if v is not None and v != ""]
    if nonnull and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in nonnull):
        return np.array([np.nan if v is None or v == "" else float(v) for v in values],
                        dtype="float64")
    return np.array([None if v is None else str(v) for v in values], dtype=object)


def write_layer(path: Path, layer: str, srid: int, wkb: list[bytes], records: list[dict],
                fields: list[str], driver: str, encoding: str | None = None,
                append: bool = False) -> None:
    """Write polygons and their attribute records with pyogrio (GDAL inside the wheel)."""
    kwargs = {}
    if encoding:
        kwargs["encoding"] = encoding
    if driver == "GeoJSON":
        kwargs["layer_options"] = {"RFC7946": "NO", "WRITE_NAME": "YES"}
    pyogrio.raw.write(
        str(path), np.array(wkb, dtype=object), field_data=[_column([r.get(f) for r in records])
                                                            for f in fields],
        fields=fields, crs=f"EPSG:{srid}", geometry_type="MultiPolygon", driver=driver,
        layer=layer, append=append, promote_to_multi=True, **kwargs)


def write_table(path: Path, rows: list[dict], fields: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})


def to_cgcs2000(geoms: np.ndarray, srid: int) -> np.ndarray:
    """Geometries as the register stores them: repeated vertices (within 1 mm) dropped, then
    transformed to CGCS2000 geographic (EPSG:4490).  The rule is gis.stored's (also its SQL)."""
    import shapely

    from gis.stored import STORED_SRID, repeat_tolerance

    out = shapely.remove_repeated_points(geoms, repeat_tolerance(srid))
    if srid != STORED_SRID:
        t = Transformer.from_crs(CRS.from_epsg(srid), CRS.from_epsg(STORED_SRID), always_xy=True)
        out = shapely.transform(out, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))
    return shapely.set_srid(out, STORED_SRID)
