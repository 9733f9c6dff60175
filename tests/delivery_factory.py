"""Build NY/T 2539 deliveries for tests: a small clean delivery (one villagers' group, a few
households with members, contracts, contract parcels and homesteads, all consistent), and
writers that put it on disk as a package folder (GeoPackage layers + CSV tables).  Faults are
injected by the tests on top of the clean delivery, so every expectation derives from what
was injected."""
from __future__ import annotations

import copy
import csv
import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyogrio
import shapely

W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def check_char(first17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, W, strict=True)) % 11]


def id_number(region: str, birth: str, seq: int) -> str:
    body = f"{region}{birth}{seq:03d}"
    return body + check_char(body)


TABLE_FIELDS = {
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
             "SCMJM", "DKDZ", "DKNZ", "DKXZ", "DKBZ", "DKBZXX", "ZJRXM"]
ZJD_FIELDS = ["BDCDYH", "ZDMJ", "FBFBM", "CBFBM", "QLRMC", "QLRZJHM", "YT"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


@dataclass
class Delivery:
    tables: dict[str, list[dict]] = field(default_factory=dict)
    dk: list[list] = field(default_factory=list)  # [attrs, geometry]
    zjd: list[list] = field(default_factory=list)
    srid: int = 4547

    def copy(self) -> Delivery:
        return copy.deepcopy(self)

    def write(self, folder: Path, fmt: str = "gpkg") -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, rows in self.tables.items():
            fields = TABLE_FIELDS.get(name) or sorted({k for r in rows for k in r})
            with open(folder / f"{name}.csv", "w", encoding="utf-8", newline="") as f:
                w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
                w.writeheader()
                for r in rows:
                    w.writerow({k: "" if r.get(k) is None else r.get(k) for k in fields})
        for layer, feats, fields in (("DK", self.dk, DK_FIELDS), ("ZJD", self.zjd, ZJD_FIELDS)):
            if feats:
                write_layer(folder / f"{layer}_{len(feats)}.gpkg", layer, self.srid, feats,
                            fields)
        return folder


def write_layer(path: Path, layer: str, srid: int, feats: list, fields: list[str]) -> None:
    """Write features as they are, whatever their geometry (None, empty, Z, points, bytes)."""
    wkb = []
    for _, g in feats:
        if g is None:
            wkb.append(None)
        elif isinstance(g, bytes):
            wkb.append(g)
        else:
            wkb.append(shapely.to_wkb(g, output_dimension=3 if shapely.has_z(g) else 2))
    cols = []
    for f in fields:
        values = [a.get(f) for a, _ in feats]
        if f in ("SCMJ", "SCMJM", "ZDMJ") and all(isinstance(v, (int, float)) or v is None
                                                   for v in values):
            cols.append(np.array([np.nan if v is None else float(v) for v in values]))
        else:
            cols.append(np.array([None if v is None else str(v) for v in values], dtype=object))
    pyogrio.raw.write(str(path), np.array(wkb, dtype=object), field_data=cols, fields=fields,
                      crs=f"EPSG:{srid}", geometry_type="Unknown", driver="GPKG", layer=layer)


def clean(seed: int, households: int = 3, parcels_per_household: int = 2,
          village: int | None = None) -> Delivery:
    """A clean delivery: one villagers' group of district 140404 (a township and village of
    its own, so that cases never collide), everything consistent."""
    rng = random.Random(seed)
    village = village if village is not None else seed
    township = 500 + (village // 900) % 400
    fbfbm = f"140404{township:03d}{100 + village % 900:03d}01"
    # Each village its own square kilometre (EPSG:4547 around Changzhi), so parcels of two
    # cases never overlap each other or the demo county.
    x0 = 380_000 + (village % 60) * 1_000
    y0 = 3_960_000 + (village // 60 % 60) * 1_000
    d = Delivery()
    leader_id = id_number("140404", f"19{rng.randint(50, 80)}0{rng.randint(1, 9)}1{rng.randint(0, 9)}",
                          rng.randint(1, 999))
    d.tables["FBF"] = [{"FBFBM": fbfbm, "FBFMC": f"上党区试验{village}村第一村民小组",
                        "FBFFZRXM": "王伟", "FZRZJLX": "1", "FZRZJHM": leader_id,
                        "LXDH": "13500000000", "FBFDZ": "山西省长治市上党区", "YZBM": "047100",
                        "FBFDCY": "李明", "FBFDCRQ": "2016-05-10", "FBFDCJS": ""}]
    for t in ("CBF", "CBF_JTCY", "CBHT", "CBDKXX"):
        d.tables[t] = []
    k = 0
    for h in range(1, households + 1):
        cbfbm = f"{fbfbm}{h:04d}"
        n_members = rng.randint(1, 3)
        members = []
        for m in range(n_members):
            y = rng.randint(1940, 2005)
            date = dt.date(y, 1, 1) + dt.timedelta(days=rng.randint(0, 364))
            num = id_number("140404", date.strftime("%Y%m%d"), rng.randint(1, 999))
            name = rng.choice(SURNAMES) + rng.choice(GIVEN)
            members.append({"CBFBM": cbfbm, "CYXM": name,
                            "CYXB": "1" if int(num[16]) % 2 else "2", "CYZJLX": "1",
                            "CYZJHM": num, "YHZGX": "02" if m == 0 else rng.choice(
                                ["10", "20", "30"]), "CYBZ": "", "SFGYR": "1", "CYBZSM": "",
                            "CSRQ": date.isoformat()})
        head = members[0]
        d.tables["CBF"].append({
            "CBFBM": cbfbm, "CBFLX": "1", "CBFMC": head["CYXM"], "CBFZJLX": "1",
            "CBFZJHM": head["CYZJHM"], "CBFDZ": "山西省长治市上党区", "YZBM": "047100",
            "LXDH": "", "CBFCYSL": n_members, "CBFDCRQ": "2016-06-12", "CBFDCY": "李明",
            "CBFDCJS": "", "GSJS": "", "GSJSR": "", "GSSHRQ": "2016-08-01", "GSSHR": "王伟"})
        d.tables["CBF_JTCY"] += members
        total = 0.0
        for _ in range(parcels_per_household):
            k += 1
            dkbm = f"{fbfbm}{k:05d}"
            col, row = (k - 1) % 10, (k - 1) // 10
            w, hgt = rng.uniform(20, 40), rng.uniform(30, 60)
            g = shapely.box(x0 + col * 60, y0 + row * 80, x0 + col * 60 + w, y0 + row * 80 + hgt)
            area = round(g.area, 2)
            total += area
            d.dk.append([{"DKBM": dkbm, "DKMC": f"地{k}", "SYQXZ": "31", "DKLB": "10",
                          "TDLYLX": "013", "DLDJ": f"{rng.randint(1, 10):02d}", "TDYT": "1",
                          "SFJBNT": "1", "SCMJ": area, "SCMJM": round(area * 0.0015, 2),
                          "DKDZ": "路", "DKNZ": "渠", "DKXZ": "地", "DKBZ": "地",
                          "DKBZXX": "", "ZJRXM": head["CYXM"]}, g])
            d.tables["CBDKXX"].append({
                "DKBM": dkbm, "FBFBM": fbfbm, "CBFBM": cbfbm, "CBJYQQDFS": "110", "HTMJ": area,
                "CBHTBM": cbfbm + "J", "LZHTBM": "", "CBJYQZBM": cbfbm + "J", "YHTMJ": area,
                "HTMJM": round(area * 0.0015, 2), "YHTMJM": round(area * 0.0015, 2),
                "SFQQQG": "2"})
        d.tables["CBHT"].append({
            "CBHTBM": cbfbm + "J", "YCBHTBM": "", "FBFBM": fbfbm, "CBFBM": cbfbm, "CBFS": "110",
            "CBQXQ": "1999-01-01", "CBQXZ": "2028-12-31", "HTZMJ": round(total, 2),
            "CBDKZS": parcels_per_household, "QDSJ": "1999-01-01",
            "HTZMJM": round(total * 0.0015, 2), "YHTZMJ": round(total, 2),
            "YHTZMJM": round(total * 0.0015, 2)})
        hg = shapely.box(x0 + (h - 1) * 30, y0 + 700, x0 + (h - 1) * 30 + 20, y0 + 725)
        d.zjd.append([{"BDCDYH": f"{fbfbm[:12]}JC{h:05d}W00000000", "ZDMJ": round(hg.area, 2),
                       "FBFBM": fbfbm, "CBFBM": cbfbm, "QLRMC": head["CYXM"],
                       "QLRZJHM": head["CYZJHM"], "YT": "072"}, hg])
    return d
