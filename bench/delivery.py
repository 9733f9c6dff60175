"""A complete generated NY/T 2539 delivery for the benchmarks: DK and ZJD layers (GeoPackage)
and the FBF, CBF, CBF_JTCY, CBHT and CBDKXX tables, consistent with each other, with about
0.3 % realistic faults injected (seeded, each one recorded), so that every check of the import
does real work.

Villages are laid out by `gis.synth` (fields cut into household strips, a core of homestead
plots) on a grid starting at ORIGIN; each village its own code.  `make_delivery(..., first=k)`
makes villages k, k+1, … so the neighbours of a delivery (registered before it is imported)
are just other village numbers of the same grid."""
from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
import shapely.affinity

from gis import io as gio
from gis import synth
from gis.area import mu

COUNTY, TOWNSHIP0 = "140404", 301
ORIGIN = (372000.0, 3870000.0)  # EPSG:4547, south-west of the demo county; never overlaps it
PER_VILLAGE = 1000
FAULT_RATE = 0.003

W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
FIELDS = {
    "FBF": ["FBFBM", "FBFMC", "FBFFZRXM", "FZRZJLX", "FZRZJHM", "LXDH", "FBFDZ", "YZBM",
            "FBFDCY", "FBFDCRQ", "FBFDCJS"],
    "CBF": ["CBFBM", "CBFLX", "CBFMC", "CBFZJLX", "CBFZJHM", "CBFDZ", "YZBM", "LXDH",
            "CBFCYSL", "CBFDCRQ", "CBFDCY", "CBFDCJS", "GSJS", "GSJSR", "GSSHRQ", "GSSHR"],
    "CBF_JTCY": ["CBFBM", "CYXM", "CYXB", "CYZJLX", "CYZJHM", "YHZGX", "CYBZ", "SFGYR",
                 "CYBZSM", "CSRQ"],
    "CBHT": ["CBHTBM", "YCBHTBM", "FBFBM", "CBFBM", "CBFS", "CBQXQ", "CBQXZ", "HTZMJ",
             "CBDKZS", "QDSJ", "HTZMJM", "YHTZMJ", "YHTZMJM"],
    "CBDKXX": ["DKBM", "FBFBM", "CBFBM", "CBJYQQDFS", "HTMJ", "CBHTBM", "LZHTBM", "CBJYQZBM",
               "YHTMJ", "HTMJM", "YHTMJM", "SFQQQG"],
}
DK_FIELDS = ["DKBM", "DKMC", "SYQXZ", "DKLB", "TDLYLX", "DLDJ", "TDYT", "SFJBNT", "SCMJ",
             "SCMJM", "DKDZ", "DKNZ", "DKXZ", "DKBZ", "ZJRXM"]
ZJD_FIELDS = ["BDCDYH", "ZDMJ", "FBFBM", "CBFBM", "QLRMC", "QLRZJHM", "YT"]
FAULT_KINDS = ("self_intersection", "duplicate_code", "id_check_digit", "unknown_parcel",
               "overlap", "unknown_household")


def check_char(first17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, W, strict=True)) % 11]


def id_number(birth: dt.date, seq: int) -> str:
    body = f"{COUNTY}{birth:%Y%m%d}{seq % 1000:03d}"
    return body + check_char(body)


@dataclass
class Generated:
    folder: Path
    parcels: int = 0
    homesteads: int = 0
    records: dict[str, int] = field(default_factory=dict)
    villages: int = 0
    faults: dict[str, int] = field(default_factory=dict)


def village_code(v: int) -> str:
    return f"{COUNTY}{TOWNSHIP0 + v // 100:03d}{200 + v % 100:03d}"


def _grid(v: int, per_row: int) -> tuple[float, float]:
    spacing = synth.village_spacing(PER_VILLAGE)
    row, col = divmod(v, per_row)
    return ORIGIN[0] + col * spacing, ORIGIN[1] + row * spacing


def make_delivery(n: int, folder: Path, seed: int = 1, first: int = 0, per_row: int = 32,
                  fault_rate: float = FAULT_RATE) -> Generated:
    """About n parcels (DK + ZJD) of villages first, first+1, … on a grid per_row wide."""
    rng = np.random.default_rng(seed + first)
    rnd = random.Random(seed * 7919 + first)
    dk_wkb, dk, zjd_wkb, zjd = [], [], [], []
    t = {k: [] for k in FIELDS}
    out = Generated(folder)
    v = first
    person = 0
    while len(dk) + len(zjd) < n:
        layout = synth.village(rng, PER_VILLAGE, _grid(v, per_row))
        vc = village_code(v)
        households = max(8, int(PER_VILLAGE * 0.17))
        groups = layout.groups
        hh_codes = []
        for g in range(groups):
            fb = f"{vc}{g + 1:02d}"
            t["FBF"].append({"FBFBM": fb, "FBFMC": f"试验{vc[-6:]}村第{g + 1}村民小组",
                             "FBFFZRXM": "王伟", "FZRZJLX": "1",
                             "FZRZJHM": id_number(dt.date(1960, 1, 1) + dt.timedelta(v), v),
                             "LXDH": "13500000000", "FBFDZ": "山西省长治市上党区",
                             "YZBM": "047100", "FBFDCY": "李明", "FBFDCRQ": "2016-05-10",
                             "FBFDCJS": ""})
        # Households: spread over the groups; each with 1–5 members.
        for h in range(households):
            g = h * groups // households
            fb = f"{vc}{g + 1:02d}"
            cbfbm = f"{fb}{h + 1:04d}"
            hh_codes.append((fb, cbfbm))
            members = []
            for m in range(rnd.randint(1, 5)):
                person += 1
                birth = dt.date(1940, 1, 1) + dt.timedelta(days=rnd.randint(0, 65 * 365))
                num = id_number(birth, person)
                members.append({"CBFBM": cbfbm, "CYXM": rnd.choice(SURNAMES) + rnd.choice(GIVEN),
                                "CYXB": "1" if int(num[16]) % 2 else "2", "CYZJLX": "1",
                                "CYZJHM": num, "YHZGX": "02" if m == 0 else rnd.choice(
                                    ["10", "20", "30"]), "CYBZ": "", "SFGYR": "1",
                                "CYBZSM": "", "CSRQ": birth.isoformat()})
            head = members[0]
            t["CBF"].append({"CBFBM": cbfbm, "CBFLX": "1", "CBFMC": head["CYXM"],
                             "CBFZJLX": "1", "CBFZJHM": head["CYZJHM"],
                             "CBFDZ": "山西省长治市上党区", "YZBM": "047100", "LXDH": "",
                             "CBFCYSL": len(members), "CBFDCRQ": "2016-06-12",
                             "CBFDCY": "李明", "CBFDCJS": "", "GSJS": "", "GSJSR": "",
                             "GSSHRQ": "2016-08-01", "GSSHR": "王伟"})
            t["CBF_JTCY"] += members
        # Contract land: the strips of a group go to that group's households in turn.
        by_group: dict[int, list[int]] = {}
        for i, (fb, _) in enumerate(hh_codes):
            by_group.setdefault(int(fb[-2:]) - 1, []).append(i)
        seq: dict[str, int] = {}
        held: dict[int, list[float]] = {}
        for s in layout.fields:
            if len(dk) + len(zjd) >= n:
                break
            mine = by_group.get(s.group) or by_group[min(by_group)]
            hi = mine[seq.get(f"g{s.group}", 0) % len(mine)]
            seq[f"g{s.group}"] = seq.get(f"g{s.group}", 0) + 1
            fb, cbfbm = hh_codes[hi]
            seq[fb] = seq.get(fb, 0) + 1
            poly = shapely.Polygon(s.ring)
            area = round(poly.area, 2)
            dkbm = f"{fb}{seq[fb]:05d}"
            dk.append({"DKBM": dkbm, "DKMC": f"地{seq[fb]}", "SYQXZ": "31", "DKLB": "10",
                       "TDLYLX": "013", "DLDJ": f"{rnd.randint(1, 10):02d}", "TDYT": "1",
                       "SFJBNT": "1", "SCMJ": area, "SCMJM": float(mu(area)), "DKDZ": "路",
                       "DKNZ": "渠", "DKXZ": "地", "DKBZ": "地", "ZJRXM": "张三"})
            dk_wkb.append(shapely.to_wkb(poly))
            held.setdefault(hi, []).append(area)
            t["CBDKXX"].append({"DKBM": dkbm, "FBFBM": fb, "CBFBM": cbfbm, "CBJYQQDFS": "110",
                                "HTMJ": area, "CBHTBM": cbfbm + "J", "LZHTBM": "",
                                "CBJYQZBM": cbfbm + "J", "YHTMJ": area,
                                "HTMJM": float(mu(area)), "YHTMJM": float(mu(area)),
                                "SFQQQG": "2"})
        for hi, areas in sorted(held.items()):
            fb, cbfbm = hh_codes[hi]
            total = round(sum(areas), 2)
            t["CBHT"].append({"CBHTBM": cbfbm + "J", "YCBHTBM": "", "FBFBM": fb,
                              "CBFBM": cbfbm, "CBFS": "110", "CBQXQ": "1999-01-01",
                              "CBQXZ": "2028-12-31", "HTZMJ": total, "CBDKZS": len(areas),
                              "QDSJ": "1999-01-01", "HTZMJM": float(mu(total)),
                              "YHTZMJ": total, "YHTZMJM": float(mu(total))})
        # Homesteads (ZJD): one per household in turn.
        for j, hg in enumerate(layout.homesteads):
            if len(dk) + len(zjd) >= n:
                break
            fb, cbfbm = hh_codes[j % len(hh_codes)]
            head = next(r for r in t["CBF"][-len(hh_codes):] if r["CBFBM"] == cbfbm)
            zjd.append({"BDCDYH": f"{vc}JC{j + 1:05d}W00000000", "ZDMJ": round(hg.area, 2),
                        "FBFBM": fb, "CBFBM": cbfbm, "QLRMC": head["CBFMC"],
                        "QLRZJHM": head["CBFZJHM"], "YT": "072"})
            zjd_wkb.append(shapely.to_wkb(hg))
        v += 1
    out.faults = _inject(rnd, fault_rate, dk, dk_wkb, t)
    folder.mkdir(parents=True, exist_ok=True)
    gio.write_layer(folder / "DK_bench.gpkg", "DK", 4547, dk_wkb, dk, DK_FIELDS, "GPKG")
    if zjd:
        gio.write_layer(folder / "ZJD_bench.gpkg", "ZJD", 4547, zjd_wkb, zjd, ZJD_FIELDS, "GPKG")
    for name, rows in t.items():
        gio.write_table(folder / f"{name}.csv", rows, FIELDS[name])
    out.parcels, out.homesteads = len(dk), len(zjd)
    out.records = {k: len(v) for k, v in t.items()}
    out.villages = v - first
    return out


def _inject(rnd: random.Random, rate: float, dk, dk_wkb, t) -> dict[str, int]:
    """About `rate` of the parcels get one realistic fault each (seeded): a self-intersecting
    ring, a code delivered twice, a member's ID number with a wrong check digit, a contract
    line naming a parcel that is not in DK, a parcel shifted onto its neighbour, a member of a
    household that is not in CBF."""
    count = max(len(FAULT_KINDS), round(len(dk) * rate))
    faults: dict[str, int] = {}
    victims = rnd.sample(range(1, len(dk)), min(count, len(dk) - 1))
    for k, i in enumerate(victims):
        kind = FAULT_KINDS[k % len(FAULT_KINDS)]
        faults[kind] = faults.get(kind, 0) + 1
        if kind == "self_intersection":
            g = shapely.from_wkb(dk_wkb[i])
            x0, y0, x1, y1 = g.bounds
            dk_wkb[i] = shapely.to_wkb(shapely.Polygon([(x0, y0), (x1, y1), (x1, y0),
                                                        (x0, y1), (x0, y0)]))
        elif kind == "duplicate_code":
            dk[i]["DKBM"] = dk[i - 1]["DKBM"]
        elif kind == "id_check_digit":
            m = t["CBF_JTCY"][i % len(t["CBF_JTCY"])]
            body = m["CYZJHM"][:17]
            m["CYZJHM"] = body + next(c for c in "0123456789X" if c != check_char(body))
        elif kind == "unknown_parcel":
            row = dict(t["CBDKXX"][i % len(t["CBDKXX"])])
            row["DKBM"] = row["DKBM"][:-5] + "99999"
            t["CBDKXX"].append(row)
        elif kind == "overlap":
            g = shapely.from_wkb(dk_wkb[i])
            dk_wkb[i] = shapely.to_wkb(shapely.affinity.translate(g, 6.0, 4.0))
        elif kind == "unknown_household":
            row = dict(t["CBF_JTCY"][i % len(t["CBF_JTCY"])])
            row["CBFBM"] = row["CBFBM"][:-4] + "9999"
            t["CBF_JTCY"].append(row)
    return faults


def neighbours_of(n: int, per_row: int = 32, most: int = 8) -> tuple[int, int]:
    """(first village, count) of the register's neighbours: villages of the row just after
    the delivery's last row (at most `most` of them: registering them is set-up, not timed,
    and on this machine 32 villages took 5 minutes)."""
    villages = math.ceil(n / PER_VILLAGE)
    rows = math.ceil(villages / per_row)
    return rows * per_row, min(per_row, villages, most)
