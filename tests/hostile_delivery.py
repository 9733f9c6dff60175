"""Copies of the village sample (/work/shared/data/village-sample) cut to a few households of
one villagers' group, written as the sample is delivered — GBK shapefiles with their .cpg, UTF-8
CSV tables — byte for byte under the test's control, so that a test can put any value, byte or
structure into any cell, record or file and know exactly what it put where."""
from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyogrio

SAMPLE = next(p / "shared" / "data" / "village-sample" for p in Path(__file__).resolve().parents
              if (p / "shared" / "data" / "village-sample").is_dir())
TABLES = ("FBF", "CBF", "CBF_JTCY", "CBHT", "CBDKXX")


@lru_cache(maxsize=1)
def _sample():
    layers = {}
    for name in ("DK", "ZJD"):
        shp = next((SAMPLE / "矢量数据").glob(f"{name}*.shp"))
        meta, _fids, wkb, cols = pyogrio.raw.read(str(shp), return_fids=True)
        layers[name] = (list(meta["fields"]), list(meta["dtypes"]), wkb, cols)
    tables = {}
    for t in TABLES:
        with open(SAMPLE / "权属数据" / f"{t}.csv", encoding="utf-8-sig", newline="") as f:
            r = list(csv.reader(f))
        tables[t] = (r[0], r[1:])
    return layers, tables


@dataclass
class Layer:
    fields: list[str]
    dtypes: list[str]
    wkb: list
    rows: list[list]  # per feature, its values in field order
    encoding: str = "GBK"
    cpg: str | None = "GBK"  # what the .cpg says (None: no .cpg)
    # record -> field -> raw bytes to put into the field (padded with blanks)
    patches: dict[int, dict[str, bytes]] = field(default_factory=dict)


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    encoding: str = "utf-8"
    # row index -> the bytes of its whole line (without the line end), written instead
    raw_lines: dict[int, bytes] = field(default_factory=dict)
    raw_file: bytes | None = None  # the whole file, written instead of everything above


@dataclass
class Subset:
    layers: dict[str, Layer]
    tables: dict[str, Table]

    def write(self, folder: Path) -> Path:
        (folder / "矢量数据").mkdir(parents=True, exist_ok=True)
        (folder / "权属数据").mkdir(parents=True, exist_ok=True)
        for name, lay in self.layers.items():
            _write_layer(folder / "矢量数据" / f"{name}1404042024.shp", lay)
        for name, tab in self.tables.items():
            (folder / "权属数据" / f"{name}.csv").write_bytes(table_bytes(tab))
        return folder


def table_bytes(tab: Table) -> bytes:
    if tab.raw_file is not None:
        return tab.raw_file
    lines = []
    for i, cells in enumerate([tab.header] + tab.rows):
        if i - 1 in tab.raw_lines:
            lines.append(tab.raw_lines[i - 1])
            continue
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(cells)
        lines.append(buf.getvalue().encode(tab.encoding))
    return b"\r\n".join(lines) + b"\r\n"


def csv_line(cells: list, encoding="utf-8") -> bytes:
    """One CSV line of cells given as text (encoded) or bytes (put as they are)."""
    out = []
    for c in cells:
        if isinstance(c, bytes):
            out.append(c)
        else:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="").writerow([c])
            out.append(buf.getvalue().encode(encoding))
    return b",".join(out)


def _write_layer(path: Path, lay: Layer) -> None:
    cols = []
    for j, dt in enumerate(lay.dtypes):
        values = [r[j] for r in lay.rows]
        if dt.startswith(("int", "float")):
            cols.append(np.array(values, dtype=dt))
        else:
            cols.append(np.array(values, dtype=object))
    pyogrio.raw.write(str(path), np.array(lay.wkb, dtype=object), field_data=cols,
                      fields=lay.fields, crs="EPSG:4547", geometry_type="Polygon",
                      driver="ESRI Shapefile", encoding=lay.encoding)
    cpg = path.with_suffix(".cpg")
    if lay.cpg is None:
        cpg.unlink(missing_ok=True)
    else:
        cpg.write_text(lay.cpg)
    if lay.patches:
        dbf = path.with_suffix(".dbf")
        raw = bytearray(dbf.read_bytes())
        hl, rl = int.from_bytes(raw[8:10], "little"), int.from_bytes(raw[10:12], "little")
        where, off = {}, 1
        for k in range(32, hl - 1, 32):
            if raw[k] == 0x0D:
                break
            name = bytes(raw[k:k + 11]).split(b"\x00")[0].decode()
            where[name] = (off, raw[k + 16])
            off += raw[k + 16]
        for rec, fields in lay.patches.items():
            for name, value in fields.items():
                o, n = where[name]
                assert len(value) <= n, (name, value, n)
                start = hl + rec * rl + o
                raw[start:start + n] = value + b" " * (n - len(value))
        dbf.write_bytes(bytes(raw))


def subset(seed: int, households: int = 6) -> Subset:
    """A few households of one villagers' group of the sample, with everything that belongs to
    them: their members, contracts, contract lines, contract parcels and homesteads."""
    rng = random.Random(seed)
    layers, tables = _sample()
    fbf_h, fbf_rows = tables["FBF"]
    group = rng.choice(fbf_rows)
    fbfbm = group[fbf_h.index("FBFBM")]
    cbf_h, cbf_rows = tables["CBF"]
    mine = [r for r in cbf_rows if r[0][:14] == fbfbm]
    start = rng.randrange(max(len(mine) - households, 1))
    hh = {r[0] for r in mine[start:start + households]}
    out_t = {"FBF": Table(list(fbf_h), [list(group)])}
    for t in ("CBF", "CBF_JTCY", "CBHT", "CBDKXX"):
        h, rows = tables[t]
        k = h.index("CBFBM")
        out_t[t] = Table(list(h), [list(r) for r in rows if r[k] in hh])
    dkh = out_t["CBDKXX"].header.index("DKBM")
    parcels = {r[dkh] for r in out_t["CBDKXX"].rows}
    out_l = {}
    for name, (fields, dtypes, wkb, cols) in layers.items():
        key = fields.index("DKBM") if name == "DK" else fields.index("CBFBM")
        keep = [i for i, v in enumerate(cols[key].tolist())
                if (v in parcels if name == "DK" else v in hh)]
        rows = [[c[i].item() if hasattr(c[i], "item") else c[i] for c in cols] for i in keep]
        out_l[name] = Layer(list(fields), [str(d) for d in dtypes], [wkb[i] for i in keep],
                            rows)
    return Subset(out_l, out_t)
