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


UTF8_NAMES = {"UTF-8", "UTF8", "65001"}
GBK_NAMES = {"GBK", "936", "CP936", "GB2312", "GB18030", "ANSI 936", "CP 936"}


def _dbf_encoding_agrees(path: Path, encoding: str | None, root: Path | None) -> None:
    """The .dbf's text must be in the encoding declared (by the caller, else by the .cpg):
    UTF-8 bytes read as GBK give well-formed nonsense (王家 → 鐜嬪), GBK read as UTF-8 fails.
    Checked on the raw bytes of the records (the first 16 MB)."""
    dbf = _sibling(path, ".dbf")
    if dbf is None:
        return
    declared = encoding
    if declared is None:
        cpg = _sibling(path, ".cpg")
        if cpg is None:
            return
        declared = safe_local_file(cpg, root).read_bytes()[:40].decode("ascii", "replace")
    name = declared.strip().upper()
    kind = "utf-8" if name in UTF8_NAMES else "gbk" if name in GBK_NAMES else None
    if kind is None:
        return
    with open(safe_local_file(dbf, root), "rb") as f:
        head = f.read(32)
        if len(head) < 32:
            return
        f.seek(int.from_bytes(head[8:10], "little"))
        data = f.read(16 * 1024 ** 2)
    if max(data, default=0) < 0x80:
        return  # ASCII only: any encoding reads it
    try:
        data.decode("utf-8")
        is_utf8 = True
    except UnicodeDecodeError as e:
        is_utf8 = e.start > len(data) - 4  # cut inside the last character by the 16 MB cap
    if kind == "gbk" and is_utf8:
        raise CrsError("encoding_mismatch", path=str(path), declared=declared.strip(),
                       found="UTF-8")
    if kind == "utf-8" and not is_utf8:
        raise CrsError("encoding_mismatch", path=str(path), declared=declared.strip(),
                       found="not UTF-8 (GBK?)")


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
        for i, values in enumerate(zip(*cols, strict=True) if cols else ([()] * len(fids))):
            yield fids[i], dict(zip(self.fields, values, strict=True)), self.wkb[i]


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
    if driver == "ESRI Shapefile":
        _shapefile_parts_agree(path, root)
        _dbf_encoding_agrees(path, encoding, root)
    kwargs = {"layer": layer} if layer else {}
    if encoding:
        kwargs["encoding"] = encoding
    elif driver == "ESRI Shapefile" and not path.with_suffix(".cpg").exists():
        raise CrsError("encoding_unknown", path=str(path))
    info = pyogrio.read_info(str(path), **kwargs)
    if info.get("driver") not in ALLOWED_DRIVERS or (info.get("driver") != driver):
        raise UnsafeFile(path, f"opened as {info.get('driver')}, expected {driver}")
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


def read_table(path: Path) -> list[dict]:
    raw = path.read_bytes()
    text = None
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        text = raw.decode("utf-8", "replace")
    text = text.replace("\x00", "")
    fast = _read_rows(text)
    if fast is not None:
        return fast
    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        # Extra cells (a row longer than the header) are kept under "_extra", not dropped.
        extra = r.pop(None, None)
        row = {str(k).strip(): v for k, v in r.items() if k is not None}
        if extra:
            row["_extra"] = extra
        rows.append(row)
    return rows


def _read_rows(text: str) -> list[dict] | None:
    """read_table's rows when the header is plain (distinct names without surrounding
    spaces), as csv.DictReader would give them, at about half its cost (one dict from a zip
    per row, no per-row checks); None otherwise (read_table then takes the general way)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return []
    if not header or len(set(header)) != len(header) or any(k != k.strip() for k in header):
        return None
    n = len(header)
    rows = []
    for r in reader:
        if len(r) == n:
            rows.append(dict(zip(header, r)))  # noqa: B905 (lengths equal)
        elif r:  # blank lines are skipped, as DictReader does
            row = dict(zip(header, r[:n]))  # noqa: B905
            if len(r) < n:  # missing cells are None (DictReader's restval)
                row.update(dict.fromkeys(header[len(r):]))
            else:
                row["_extra"] = r[n:]
            rows.append(row)
    return rows


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
                out.tables[name] = read_table(safe_local_file(p, root))
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
