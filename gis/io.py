"""Reading and writing survey files: Shapefile, GeoPackage, GeoJSON (pyogrio, GDAL inside the
wheel) and the NY/T 2539 ownership tables (CSV).  No Flask, no database."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyogrio
from pyproj import CRS, Transformer

VECTOR_SUFFIXES = {".shp", ".gpkg", ".geojson", ".json"}
OWNERSHIP_TABLES = ("FBF", "CBF", "CBF_JTCY", "CBHT", "CBDKXX")


class CrsError(ValueError):
    """The file's CRS is unknown, or its coordinates do not fit the CRS."""

    def __init__(self, reason: str, **info):
        self.reason = reason
        self.info = info
        super().__init__(f"{reason}: {info}")


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
    wkb: np.ndarray  # WKB geometries in the layer's CRS
    columns: list[np.ndarray]
    geoms: np.ndarray | None = None  # the same, parsed (shapely, SRID set), read once

    def geometries(self) -> np.ndarray:
        if self.geoms is None:
            import shapely

            self.geoms = shapely.set_srid(shapely.from_wkb(self.wkb), self.srid)
        return self.geoms

    def __len__(self) -> int:
        return len(self.fids)

    def rows(self):
        """(fid, {field: plain Python value}, wkb) per feature; columns converted once."""
        cols = [_plain_list(c) for c in self.columns]
        fids = self.fids.tolist()
        for i, values in enumerate(zip(*cols, strict=True) if cols else ([()] * len(fids))):
            yield fids[i], dict(zip(self.fields, values, strict=True)), self.wkb[i]


@dataclass
class Delivery:
    layers: list[Layer] = field(default_factory=list)
    tables: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def feature_count(self) -> int:
        return sum(len(x) for x in self.layers)


def _plain_list(col: np.ndarray) -> list:
    """A column as plain Python values, NaN and NaT as None (JSON has no NaN)."""
    if col.dtype.kind == "f":
        return [None if v != v else v for v in col.tolist()]
    if col.dtype.kind in "iub":
        return col.tolist()
    if col.dtype.kind == "M":
        return [None if v is None else str(v)[:10] for v in col.astype("datetime64[D]").tolist()]
    return [v if v is None or type(v) is str else _plain(v) for v in col.tolist()]


def _plain(v):
    if v is None:
        return None
    if isinstance(v, (np.floating,)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.datetime64):
        return str(v)
    return v


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


def check_plausible(srid: int, bounds: tuple[float, float, float, float]) -> None:
    """Refuse coordinates that cannot be in the CRS's area of use (e.g. a zone-prefixed
    easting read as EPSG:4547, or metres read as degrees)."""
    crs = CRS.from_epsg(srid)
    aou = crs.area_of_use
    if aou is None:
        return
    minx, miny, maxx, maxy = bounds
    if crs.is_geographic:
        lons, lats = [minx, maxx], [miny, maxy]
    else:
        t = Transformer.from_crs(crs, CRS.from_epsg(4490), always_xy=True)
        lons, lats = t.transform([minx, maxx, minx, maxx], [miny, miny, maxy, maxy])
    margin = 0.5
    ok = all(np.isfinite(lons)) and all(np.isfinite(lats)) and (
        aou.west - margin <= min(lons) and max(lons) <= aou.east + margin
        and aou.south - margin <= min(lats) and max(lats) <= aou.north + margin)
    if not ok:
        raise CrsError("implausible", srid=srid, bounds=bounds,
                       area=(aou.west, aou.south, aou.east, aou.north), name=aou.name)


def read_layer(path: Path, layer: str | None = None, declared_srid: int | None = None,
               encoding: str | None = None) -> Layer:
    kwargs = {"layer": layer} if layer else {}
    if encoding:
        kwargs["encoding"] = encoding
    elif path.suffix.lower() == ".shp" and not path.with_suffix(".cpg").exists():
        raise CrsError("encoding_unknown", path=str(path))
    meta, fids, wkb, cols = pyogrio.raw.read(path, return_fids=True, **kwargs)
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
    if len(wkb):
        import shapely

        b = shapely.total_bounds(out.geometries())
        check_plausible(srid, tuple(float(x) for x in b))
    return out


def read_table(path: Path) -> list[dict]:
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    return [dict(r) for r in csv.DictReader(io.StringIO(text))]


def read_delivery(path: Path, declared_srid: int | None = None,
                  encoding: str | None = None) -> Delivery:
    """A NY/T 2539 package folder (vector layers + ownership CSVs), or one vector file."""
    path = Path(path)
    out = Delivery()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        vectors = [p for p in files if p.suffix.lower() in VECTOR_SUFFIXES]
        for p in files:
            if p.suffix.lower() == ".csv" and p.stem.upper() in OWNERSHIP_TABLES:
                out.tables[p.stem.upper()] = read_table(p)
    else:
        vectors = [path]
    for p in vectors:
        if p.suffix.lower() == ".gpkg":
            for name, _ in pyogrio.list_layers(p):
                out.layers.append(read_layer(p, name, declared_srid, encoding))
        else:
            out.layers.append(read_layer(p, None, declared_srid, encoding))
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
    transformed to CGCS2000 geographic (EPSG:4490).  Same rule as the SQL in app/imports."""
    import shapely

    tol = 1e-8 if srid in (4326, 4490) else 0.001
    out = shapely.remove_repeated_points(geoms, tol)
    if srid != 4490:
        t = Transformer.from_crs(CRS.from_epsg(srid), CRS.from_epsg(4490), always_xy=True)
        out = shapely.transform(out, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))
    return shapely.set_srid(out, 4490)
