"""Fault injection that nobody hand-picked: a seeded generator takes a clean delivery and
injects faults of every class into random rows and features, alone and several at once.  For
every generated delivery: no crash, every injected fault reported (class and code, on the row
or feature it was injected into), no fault on an untouched row or feature unless it is a
knock-on linked to its cause, and after accepting the valid part every delivered feature and
row is registered or quarantined — nothing lost, no status lying.

`make test` runs FAST_CASES seeded cases; `make test-deep` (marker `deep`) runs DEEP_CASES more.
A failing case names its seed: `FAULT_SEED=<seed> pytest tests/test_import_faults.py`."""
from __future__ import annotations

import math
import os
import random
import struct
from collections import Counter
from dataclasses import dataclass

import pytest
import shapely
from sqlalchemy import text

from app.imports import operations as ops
from tests.delivery_factory import check_char, clean

FAST_CASES = int(os.environ.get("FAULT_CASES", 150))
DEEP_CASES = int(os.environ.get("FAULT_DEEP_CASES", 1500))


@dataclass(frozen=True)
class Expect:
    cls: str  # the fault class injected
    rule: str  # the rule that must report it
    anchors: tuple  # (('rec', table, rownum) | ('feat', layer, fid)), any of them


class Case:
    def __init__(self, seed: int):
        self.seed = seed
        self.rng = random.Random(seed)
        self.d = clean(seed, households=self.rng.randint(2, 4),
                       parcels_per_household=self.rng.randint(1, 3), village=seed)
        self.touched_rows: set = set()
        self.touched_hh: set = set()
        self.expects: list[Expect] = []
        self.notes: Counter = Counter()
        self.must_register: set = set()  # variations that are not faults (Z, curves, holes)

    # -- picking targets nobody touched yet -------------------------------------------------
    def row(self, tbl: str):
        rows = self.d.tables[tbl]
        free = [i for i in range(len(rows)) if ("rec", tbl, i + 1) not in self.touched_rows
                and rows[i].get("CBFBM") not in self.touched_hh]
        if not free:
            return None
        i = self.rng.choice(free)
        self.touched_rows.add(("rec", tbl, i + 1))
        return i

    def feat(self, layer: str = "DK"):
        feats = self.d.dk if layer == "DK" else self.d.zjd
        free = [i for i in range(len(feats)) if ("feat", layer, i + 1) not in self.touched_rows
                and self._hh_of(layer, feats[i][0]) not in self.touched_hh]
        if not free:
            return None
        i = self.rng.choice(free)
        self.touched_rows.add(("feat", layer, i + 1))
        return i

    def _hh_of(self, layer, attrs):
        if layer == "ZJD":
            return attrs.get("CBFBM")
        return next((r["CBFBM"] for r in self.d.tables["CBDKXX"] if r["DKBM"] == attrs["DKBM"]),
                    None)

    def expect(self, cls, rule, *anchors):
        self.expects.append(Expect(cls, rule, tuple(anchors)))


# -- the injectors: one per fault class ----------------------------------------------------
def _member(c: Case, cls, rule, change):
    i = c.row("CBF_JTCY")
    if i is None:
        return
    change(c.d.tables["CBF_JTCY"][i], c.rng)
    c.expect(cls, rule, ("rec", "CBF_JTCY", i + 1))


def _reid(num: str, region=None, birth=None) -> str:
    body = (region or num[:6]) + (birth or num[6:14]) + num[14:17]
    return body + check_char(body)


def inj_relation_code(c):
    _member(c, "code list (YHZGX)", "code_list",
            lambda r, g: r.update(YHZGX=g.choice(["00", "03", "13", "77", "9", "X1"])))


def inj_remark_code(c):
    _member(c, "code list (CYBZ)", "code_list", lambda r, g: r.update(CYBZ=g.choice("08A")))


def inj_missing_name(c):
    _member(c, "required field empty", "missing_value", lambda r, g: r.update(CYXM=""))


def inj_id_length(c):
    _member(c, "ID length", "id_length",
            lambda r, g: r.update(CYZJHM=r["CYZJHM"][: g.choice([15, 17])]))


def inj_id_region(c):
    _member(c, "ID region", "id_region",
            lambda r, g: r.update(CYZJHM=_reid(r["CYZJHM"], region=g.choice(
                ["99", "00", "19", "90"]) + r["CYZJHM"][2:6])))


def inj_id_birth(c):
    _member(c, "ID birth date", "id_birth_date",
            lambda r, g: r.update(CYZJHM=_reid(r["CYZJHM"], birth=g.choice(
                [r["CYZJHM"][6:10] + "0230", r["CYZJHM"][6:10] + "1301", "20990101",
                 r["CYZJHM"][6:10] + "0431"]))))


def inj_id_check(c):
    def flip(r, g):
        good = r["CYZJHM"][17]
        r["CYZJHM"] = r["CYZJHM"][:17] + g.choice([x for x in "0123456789X" if x != good])
    _member(c, "ID check digit", "bad_id_checksum", flip)


def inj_member_unknown_household(c):
    fb = c.d.tables["FBF"][0]["FBFBM"]
    _member(c, "reference (household)", "unknown_household",
            lambda r, g: r.update(CBFBM=fb + str(g.randint(7000, 7999))))


def inj_household_name_too_long(c):
    i = c.row("CBF")
    if i is None:
        return
    r = c.d.tables["CBF"][i]
    r["CBFMC"] = "长" * c.rng.randint(51, 90)
    c.touched_hh.add(r["CBFBM"])
    c.expect("length (CBFMC)", "too_long", ("rec", "CBF", i + 1))


def inj_duplicate_household(c):
    i = c.row("CBF")
    if i is None:
        return
    r = c.d.tables["CBF"][i]
    c.d.tables["CBF"].append({**r, "CBFMC": r["CBFMC"] + "乙"})
    n = len(c.d.tables["CBF"])
    c.touched_rows.add(("rec", "CBF", n))
    c.touched_hh.add(r["CBFBM"])
    c.expect("duplicate household code", "duplicate_key", ("rec", "CBF", i + 1))
    c.expect("duplicate household code", "duplicate_key", ("rec", "CBF", n))


def inj_duplicate_contract(c):
    i = c.row("CBHT")
    if i is None:
        return
    c.d.tables["CBHT"].append(dict(c.d.tables["CBHT"][i]))
    n = len(c.d.tables["CBHT"])
    c.touched_rows.add(("rec", "CBHT", n))
    c.expect("duplicate contract code", "duplicate_key", ("rec", "CBHT", i + 1))
    c.expect("duplicate contract code", "duplicate_key", ("rec", "CBHT", n))


def inj_parcel_for_two_households(c):
    if len(c.d.tables["CBF"]) < 2:
        return
    i = c.row("CBDKXX")
    if i is None:
        return
    r = c.d.tables["CBDKXX"][i]
    other = next((h["CBFBM"] for h in c.d.tables["CBF"] if h["CBFBM"] != r["CBFBM"]
                  and h["CBFBM"] not in c.touched_hh), None)
    if other is None:
        return
    c.d.tables["CBDKXX"].append(dict(r, CBFBM=other, CBHTBM=other + "J"))
    n = len(c.d.tables["CBDKXX"])
    c.touched_rows.add(("rec", "CBDKXX", n))
    c.expect("parcel listed for two households", "duplicate_key", ("rec", "CBDKXX", i + 1))
    c.expect("parcel listed for two households", "duplicate_key", ("rec", "CBDKXX", n))


def inj_bad_date(c):
    i = c.row("CBHT")
    if i is None:
        return
    c.d.tables["CBHT"][i]["CBQXQ"] = c.rng.choice(["1999-02-30", "1999-13-01", "19990132",
                                                   "一九九九年"])
    c.expect("not a real date", "bad_date", ("rec", "CBHT", i + 1))


def inj_bad_term(c):
    i = c.row("CBHT")
    if i is None:
        return
    r = c.d.tables["CBHT"][i]
    r["CBQXZ"] = c.rng.choice(["1998-12-31", "1990-01-01", "2099-12-31"])
    c.expect("inconsistent term", "bad_term", ("rec", "CBHT", i + 1))


def inj_parcel_field_too_long(c):
    i = c.feat()
    if i is None:
        return
    c.d.dk[i][0]["DKMC"] = "地" * c.rng.randint(51, 80)
    c.expect("length (DKMC)", "too_long", ("feat", "DK", i + 1))


def inj_parcel_code_list(c):
    i = c.feat()
    if i is None:
        return
    f, v = c.rng.choice([("DLDJ", "11"), ("SYQXZ", "40"), ("TDYT", "9"), ("SFJBNT", "3"),
                         ("DKLB", "11")])
    c.d.dk[i][0][f] = v
    c.expect(f"code list ({f})", "code_list", ("feat", "DK", i + 1))


def inj_bad_number(c):
    i = c.feat()
    if i is None:
        return
    c.d.dk[i][0]["SCMJ"] = c.rng.choice(["abc", "1,234.5", "12..3"])
    c.expect("not a number (SCMJ)", "bad_number", ("feat", "DK", i + 1))


def inj_malformed_code(c):
    i = c.feat()
    if i is None:
        return
    a = c.d.dk[i][0]
    k = c.rng.randint(14, 18)
    a["DKBM"] = a["DKBM"][:k] + c.rng.choice("XO- ") + a["DKBM"][k + 1:]
    c.expect("malformed parcel code", "bad_code", ("feat", "DK", i + 1))
    # Its CBDKXX row now lists a parcel absent from the layer: a knock-on linked to the cause.


def _geom(c, cls, rule, make):
    i = c.feat()
    if i is None:
        return
    g = c.d.dk[i][1]
    c.d.dk[i][1] = make(g, c.rng)
    if rule:
        c.expect(cls, rule, ("feat", "DK", i + 1))
    else:
        c.notes[cls] += 1
    return i


def _bowtie(g, rng):
    x0, y0, x1, y1 = g.bounds
    return shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])


def _few_points(g, rng):
    x0, y0, x1, y1 = g.bounds
    pts = [(x0, y0), (x1, y1), (x0, y0)]
    return struct.pack("<BIII", 1, 3, 1, len(pts)) + b"".join(struct.pack("<dd", *p)
                                                                  for p in pts)


def _curve(g, rng):
    x0, y0, x1, y1 = g.bounds
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) / 2 - 1
    pts = [(cx - r, cy), (cx, cy + r), (cx + r, cy), (cx, cy - r), (cx - r, cy)]
    ring = struct.pack("<BII", 1, 8, len(pts)) + b"".join(struct.pack("<dd", *p) for p in pts)
    return struct.pack("<BII", 1, 10, 1) + ring


def _many(g, rng):
    x0, y0, x1, y1 = g.bounds
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) / 2
    n = rng.randint(260, 400)
    return shapely.Polygon([(cx + r * math.cos(2 * math.pi * t / n),
                             cy + r * math.sin(2 * math.pi * t / n)) for t in range(n)])


def inj_null_shape(c):
    _geom(c, "null shape", "missing_shape", lambda g, r: None)


def inj_empty_shape(c):
    _geom(c, "empty shape", "missing_shape", lambda g, r: shapely.Polygon())


def inj_wrong_type(c):
    _geom(c, "wrong geometry type", "wrong_geometry_type", lambda g, r: r.choice([
        g.centroid, g.exterior, shapely.GeometryCollection([g, g.centroid]),
        shapely.MultiPoint(list(g.exterior.coords)[:3])]))


def inj_self_intersection(c):
    _geom(c, "self-intersection", "self_intersection", _bowtie)


def inj_too_few_points(c):
    _geom(c, "ring with too few points", "too_few_points", _few_points)


def inj_extreme(c):
    if any(e.cls == "extreme coordinates" for e in c.expects):
        return  # one per case: a layer mostly out of range is a wrong CRS, refused whole
    _geom(c, "extreme coordinates", "extreme_coordinates", lambda g, r: r.choice([
        shapely.affinity.translate(g, 5e7, 0), shapely.affinity.translate(g, 0, -9e6),
        shapely.affinity.scale(g, 1e6, 1e6)]))


def inj_too_many_vertices(c):
    _geom(c, "too many vertices", "too_many_vertices", _many)


def inj_z(c):
    i = _geom(c, "Z dropped (note)", None, lambda g, r: shapely.force_3d(g, r.uniform(800, 1200)))
    if i is not None:
        c.must_register.add(("feat", "DK", i + 1))


def inj_curve(c):
    def make(g, r):
        x0, y0, x1, y1 = g.bounds
        rad = min(x1 - x0, y1 - y0) / 2 - 1
        c.d.dk[i_holder[0]][0]["SCMJ"] = round(math.pi * rad * rad, 2)
        return _curve(g, r)
    i_holder = [None]
    free = c.feat()
    if free is None:
        return
    i_holder[0] = free
    c.d.dk[free][1] = make(c.d.dk[free][1], c.rng)
    c.notes["curve linearised (note)"] += 1
    c.must_register.add(("feat", "DK", free + 1))


def inj_multipart_with_hole(c):
    def make(g, r):
        x0, y0, x1, y1 = g.bounds
        hole = shapely.box(x0 + 2, y0 + 2, x0 + 6, y0 + 6)
        return shapely.MultiPolygon([g.difference(hole)])
    i = c.feat()
    if i is None:
        return
    c.d.dk[i][1] = make(c.d.dk[i][1], c.rng)
    c.d.dk[i][0]["SCMJ"] = round(c.d.dk[i][1].area, 2)
    c.notes["multipart with hole (valid)"] += 1
    c.must_register.add(("feat", "DK", i + 1))


INJECTORS = [inj_relation_code, inj_remark_code, inj_missing_name, inj_id_length,
             inj_id_region, inj_id_birth, inj_id_check, inj_member_unknown_household,
             inj_household_name_too_long, inj_duplicate_household, inj_duplicate_contract,
             inj_parcel_for_two_households, inj_bad_date, inj_bad_term,
             inj_parcel_field_too_long, inj_parcel_code_list,
             inj_bad_number, inj_malformed_code, inj_null_shape, inj_empty_shape,
             inj_wrong_type, inj_self_intersection, inj_too_few_points, inj_extreme,
             inj_too_many_vertices, inj_z, inj_curve, inj_multipart_with_hole]


def make_case(seed: int) -> Case:
    c = Case(seed)
    # Alone or several at once; every class appears within any len(INJECTORS) seeds in a row.
    first = INJECTORS[seed % len(INJECTORS)]
    chosen = [first] + c.rng.sample(INJECTORS, c.rng.choice([0, 0, 1, 2, 3, 4]))
    for inj in chosen:
        inj(c)
    return c


def _wrong_crs_expected(case: Case, folder) -> bool:
    """Features moved far away that are at least half of the DK layer's usable geometries: the
    importer reads that as a wrong CRS and refuses the layer whole (gis.io.read_layer), by
    design — a per-feature fault is expected only when they are the minority.

    "Usable" is counted the importer's way, from the file as delivered: its geometries parsed by
    the importer's own parser (gis.io.parse_geometries, with the app's limits — a feature over
    the vertex limit, with an open ring or unreadable WKB is not usable), then shapely's
    is_missing / is_empty; "far" by the importer's area-of-use test on those."""
    import numpy as np
    import pyogrio

    from gis import io as gio

    path = next(folder.glob("DK_*.gpkg"), None)
    if path is None or not any(e.cls == "extreme coordinates" for e in case.expects):
        return False
    meta, fids, wkb, cols = pyogrio.raw.read(str(path), return_fids=True)
    srid = gio.epsg_of(meta.get("crs")) or case.d.srid
    layer = gio.Layer(path, "DK", "DK", srid, "file", None,
                      [str(f) for f in meta["fields"]], fids, wkb, list(cols))
    geoms = gio.parse_geometries(layer, ops.limits())
    usable = np.flatnonzero(~shapely.is_missing(geoms) & ~shapely.is_empty(geoms))
    if not len(usable):
        return False
    far = gio.outside_area_of_use(srid, shapely.bounds(geoms[usable]))
    return bool(far.any()) and int(far.sum()) * 2 > len(usable)


def run_case(case: Case, tmp_path) -> Counter:
    folder = case.d.write(tmp_path / f"case{case.seed}")
    if _wrong_crs_expected(case, folder):
        with pytest.raises(ops.DomainError) as e:
            ops.run("bureau", folder)
        assert e.value.code == "import.crs_implausible", e.value.code
        return Counter({"extreme coordinates (layer refused as a wrong CRS)": 1})
    batch = ops.run("bureau", folder)  # no crash
    b = batch.id
    found = ops.faults(b)
    where = {}
    for f in found:
        if f.feature_id:
            row = ops.db.session.execute(text(
                "SELECT layer, fid FROM import_feature WHERE id = :i"), {"i": f.feature_id}).one()
            where[f.id] = ("feat", row.layer, row.fid)
        elif f.record_id:
            row = ops.db.session.execute(text(
                "SELECT tbl, rownum FROM import_record WHERE id = :i"), {"i": f.record_id}).one()
            where[f.id] = ("rec", row.tbl, row.rownum)
        else:
            where[f.id] = ("batch",)
    msg = f"seed {case.seed}: injected {[(e.cls, e.anchors) for e in case.expects]}, " \
          f"reported {[(f.rule, where[f.id], f.detail, f.cause_id) for f in found]}"
    # Every injected fault reported, by its rule, on the row or feature it was injected into.
    for e in case.expects:
        assert any(f.rule == e.rule and where[f.id] in e.anchors for f in found), \
            f"{e.cls} not reported as {e.rule}; {msg}"
    # No fault on an untouched row or feature, except knock-ons linked to their cause.
    touched = {a for e in case.expects for a in e.anchors} | case.touched_rows
    for f in found:
        assert (where[f.id] in touched and where[f.id] not in case.must_register) \
            or f.cause_id is not None, f"unexpected {f.rule} on {where[f.id]}: {f.detail}; {msg}"
        if f.cause_id is not None:
            assert any(x.id == f.cause_id for x in found), msg
    notes = batch.counts.get("notes", {})
    if case.notes.get("Z dropped (note)"):
        assert notes.get("z_dropped", 0) >= case.notes["Z dropped (note)"], msg
    # Accept the valid part: delivered = registered + quarantined, in features and rows.
    ops.accept("bureau", batch, valid_part=True)
    feats = dict(ops.db.session.execute(text(
        "SELECT status, count(*) FROM import_feature WHERE batch_id = :b GROUP BY status"),
        {"b": b}).all())
    recs = dict(ops.db.session.execute(text(
        "SELECT status, count(*) FROM import_record WHERE batch_id = :b GROUP BY status"),
        {"b": b}).all())
    delivered_f = len(case.d.dk) + len(case.d.zjd)
    delivered_r = sum(len(v) for v in case.d.tables.values())
    assert set(feats) <= {"registered", "quarantined"} and sum(feats.values()) == delivered_f, msg
    assert set(recs) <= {"registered", "quarantined"} and sum(recs.values()) == delivered_r, msg
    # A feature or row is quarantined exactly when it has an open fault; registered ones are
    # really in the register.
    lies = ops.db.session.execute(text("""
        SELECT f.id, f.status, f.code FROM import_feature f WHERE f.batch_id = :b AND (
          (f.status = 'quarantined') <> EXISTS (SELECT 1 FROM import_fault x
                                               WHERE x.feature_id = f.id AND x.resolved_at IS NULL)
          OR (f.status = 'registered' AND NOT EXISTS (SELECT 1 FROM parcel p
                                                      WHERE p.id = f.parcel_id)))"""),
        {"b": b}).all()
    assert not lies, f"{lies}; {msg}"
    lies = ops.db.session.execute(text("""
        SELECT r.id, r.tbl, r.rownum, r.status FROM import_record r WHERE r.batch_id = :b AND
          (r.status = 'quarantined') <> EXISTS (SELECT 1 FROM import_fault x
                                               WHERE x.record_id = r.id AND x.resolved_at IS NULL)
        """), {"b": b}).all()
    assert not lies, f"{lies}; {msg}"
    # Untouched, independent features are registered; so are Z, curved and holed polygons.
    for kind, layer, fid in [("feat", "DK", i + 1) for i in range(len(case.d.dk))]:
        if (kind, layer, fid) not in touched or (kind, layer, fid) in case.must_register:
            st = ops.db.session.execute(text(
                "SELECT f.status, EXISTS (SELECT 1 FROM import_fault x WHERE x.feature_id = f.id"
                " AND x.cause_id IS NOT NULL) FROM import_feature f WHERE f.batch_id = :b "
                "AND f.layer = :l AND f.fid = :fid"), {"b": b, "l": layer, "fid": fid}).one()
            assert st[0] == "registered" or st[1], f"{layer} {fid} is {st[0]}; {msg}"
    return Counter(e.cls for e in case.expects) + case.notes


@pytest.fixture()
def small_vertex_limit(app):
    old = app.config.get("IMPORT_MAX_VERTICES")
    app.config["IMPORT_MAX_VERTICES"] = 200
    yield
    app.config["IMPORT_MAX_VERTICES"] = old


def assert_faults_reported(seeds, tmp_path, capsys):
    total: Counter = Counter()
    for seed in seeds:
        total += run_case(make_case(seed), tmp_path)
    with capsys.disabled():
        print(f"\nfault injection: {len(seeds)} deliveries, {sum(total.values())} injected "
              f"faults and notes by class:")
        for cls, n in sorted(total.items()):
            print(f"  {n:5d}  {cls}")
    return total


def test_injected_faults_are_each_reported_and_nothing_is_lost(dbs, tmp_path, capsys,
                                                                small_vertex_limit):
    seeds = [int(os.environ["FAULT_SEED"])] if os.environ.get("FAULT_SEED") else \
        range(FAST_CASES)
    total = assert_faults_reported(seeds, tmp_path, capsys)
    if not os.environ.get("FAULT_SEED"):
        every = {e for e in total if "(note)" not in e and "(valid)" not in e}
        assert len(every) >= len(INJECTORS) - 3  # every class of fault was injected


@pytest.mark.deep
def test_injected_faults_deep(dbs, tmp_path, capsys, small_vertex_limit):
    assert_faults_reported(range(FAST_CASES, FAST_CASES + DEEP_CASES), tmp_path, capsys)
