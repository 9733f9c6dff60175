"""Generate a realistic county of demo data and load it with COPY.

Scales by `parcels` from a demo village to a million parcels; every village is generated,
loaded and committed on its own, so memory stays flat and progress is durable."""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import shapely
from flask import current_app
from sqlalchemy import func, select, text

from app.audit import operations as audit
from app.auth import operations as auth_ops
from app.auth.models import User
from app.collectives.models import Collective
from app.divisions.models import Division
from app.divisions.operations import ensure_reference_divisions
from app.extensions import db
from app.membership import demo as membership_demo
from app.people.idnumber import check_digit
from app.people.models import Household, Person
from app.settlement.operations import ensure_towns
from gis import synth
from gis.area import m2, mu

from . import campaigns, market, reports, settlement, withdrawal

SURNAMES = list(  # noqa: E501
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段")
GIVEN = list("建国华明丽军平伟芳秀英玉兰红霞志刚海燕林文杰宇春梅德永福贵桂凤生成金山川云艳静强勇鹏")
TOWNSHIPS = ["东和乡", "西火镇", "南宋乡", "八义镇", "荫城镇", "韩店镇", "苏店镇", "郝家庄镇"]
VILLAGE_NAMES = list("东西南北上下前后大小新老")
VILLAGE_TAILS = ["庄", "村", "沟", "岭", "坡", "河", "峪", "堡"]
COUNTY = "140404"  # 上党区
ORIGIN = (440000.0, 4000000.0)  # EPSG:4547, near 113.33°E 36.14°N; villages go east and south
VILLAGES_PER_ROW = 28  # 1000 villages stay inside zone 38 (EPSG:4547)
SURVEY_SRID = 4547
PARCELS_PER_VILLAGE = 1000


@dataclass
class Plan:
    villages: int
    per_village: int
    townships: int


def plan(parcels: int) -> Plan:
    villages = max(1, math.ceil(parcels / PARCELS_PER_VILLAGE))
    per = max(60, parcels // villages)
    return Plan(villages, per, max(1, min(len(TOWNSHIPS) * 10, math.ceil(villages / 12))))


class _Ids:
    """Unique, valid GB 11643 ID numbers (unique against those already registered too)."""

    def __init__(self, rng):
        self.rng = rng
        self.used: set[str] = set(db.session.scalars(
            select(Person.id_number).where(Person.id_number.like(COUNTY + "%"))))

    def make(self, sex: str, born: dt.date) -> str:
        while True:
            seq = int(self.rng.integers(0, 500)) * 2 + (1 if sex == "1" else 0)
            first = f"{COUNTY}{born:%Y%m%d}{seq:03d}"
            n = first + check_digit(first)
            if n not in self.used:
                self.used.add(n)
                return n


def _name(rng, surname=None):
    s = surname or SURNAMES[int(rng.integers(len(SURNAMES)))]
    k = int(rng.integers(1, 3))
    return s + "".join(GIVEN[int(rng.integers(len(GIVEN)))] for _ in range(k))


def _date(rng, start_year, end_year):
    start = dt.date(start_year, 1, 1).toordinal()
    end = dt.date(end_year, 12, 31).toordinal()
    return dt.date.fromordinal(int(rng.integers(start, end)))


def _copy(cur, table_sql: str, rows):
    with cur.copy(f"COPY {table_sql} FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)


def demo_villages() -> int:
    return db.session.scalar(select(func.count()).select_from(Division).where(
        Division.level == "village", Division.code.like(COUNTY + "2%")))


def missing_villages(parcels: int) -> int:
    """Villages of the planned demo county not generated yet: a `flask demo load` interrupted
    after some villages (each is committed on its own) left the county short; 0 when no demo
    village exists at all (a register of real data is never filled up with demo villages)."""
    have = demo_villages()
    return max(0, plan(parcels).villages - have) if have else 0


def complete_county(parcels: int, seed: int = 2024) -> dict | None:
    """The villages an interrupted load did not make (None when none is missing)."""
    missing = missing_villages(parcels)
    return generate(parcels, seed, villages=missing) if missing else None


def generate(parcels: int, seed: int = 2024, progress=None, villages: int | None = None) -> dict:
    """Generate and load a county with about `parcels` parcels (`villages`: only that many of
    its villages — the rest of an interrupted load).  Returns counts."""
    ensure_reference_divisions()
    ensure_towns()
    db.session.commit()
    rng = np.random.default_rng(seed)
    ids = _Ids(rng)
    p = plan(parcels)
    spacing = synth.village_spacing(PARCELS_PER_VILLAGE)
    existing = db.session.scalar(select(func.count()).select_from(Division).where(
        Division.level == "village", Division.code.like(COUNTY + "2%")))
    first_township = db.session.scalar(
        select(func.count()).select_from(Division).where(Division.level == "township",
                                                           Division.code.like(COUNTY + "%")))
    totals = {"villages": 0, "collectives": 0, "households": 0, "persons": 0, "parcels": 0,
              "homesteads": 0}
    if villages is not None:
        p = Plan(villages, p.per_village, p.townships)
    for v in range(p.villages):
        t_index = first_township + v * p.townships // p.villages
        township = f"{COUNTY}{201 + t_index:03d}"  # 2xx: townships (乡)
        if db.session.get(Division, township) is None:
            db.session.add(Division(code=township, name=TOWNSHIPS[t_index % len(TOWNSHIPS)]
                                    + ("" if t_index < len(TOWNSHIPS) else str(t_index)),
                                    level="township", parent_code=COUNTY))
        vseq = 201 + db.session.scalar(select(func.count()).select_from(Division).where(
            Division.parent_code == township))
        village_code = f"{township}{vseq:03d}"
        vname = (VILLAGE_NAMES[int(rng.integers(len(VILLAGE_NAMES)))]
                 + SURNAMES[int(rng.integers(len(SURNAMES)))]
                 + VILLAGE_TAILS[int(rng.integers(len(VILLAGE_TAILS)))])
        db.session.add(Division(code=village_code, name=vname, level="village",
                                parent_code=township))
        db.session.flush()
        row, col = divmod(existing + v, VILLAGES_PER_ROW)
        origin = (ORIGIN[0] + col * spacing, ORIGIN[1] - row * spacing)
        layout = synth.village(rng, p.per_village, origin)
        counts = _load_village(rng, ids, village_code, vname, layout)
        for k, n in counts.items():
            totals[k] += n
        totals["villages"] += 1
        db.session.commit()
        if progress:
            progress(v + 1, p.villages)
    audit.record(None, "demo.generate", "division", COUNTY, {"parcels": parcels, "seed": seed,
                                                            **totals}, "demo data")
    db.session.commit()
    return totals


def _load_village(rng, ids: _Ids, village_code: str, vname: str, layout) -> dict:
    conn = db.session.connection()
    groups = []
    for g in range(layout.groups):
        fbfbm = f"{village_code}{g + 1:02d}"
        c = Collective(fbfbm=fbfbm, name=f"{vname}第{g + 1}村民小组", village_code=village_code,
                       leader_name=_name(rng))
        db.session.add(c)
        groups.append(c)
    db.session.flush()

    # Households: one per homestead, spread over the groups.
    n_hh = len(layout.homesteads)
    hh_group = np.sort(rng.integers(0, layout.groups, n_hh))
    seq_in_group = [0] * layout.groups
    households, persons, members, memberships = [], [], [], []
    for i in range(n_hh):
        g = int(hh_group[i])
        seq_in_group[g] += 1
        cbfbm = f"{groups[g].fbfbm}{seq_in_group[g]:04d}"
        surname = SURNAMES[int(rng.integers(len(SURNAMES)))]
        size = int(rng.integers(1, 7))
        head_sex = "1" if rng.random() < 0.85 else "2"
        head_born = _date(rng, 1945, 1990)
        people = [(head_sex, head_born, "02", _name(rng, surname))]
        if size > 1:
            people.append(("2" if head_sex == "1" else "1", _date(rng, head_born.year - 3,
                                                                   head_born.year + 3),
                           "10", _name(rng)))
        for _ in range(max(0, size - 2)):
            sex = "1" if rng.random() < 0.5 else "2"
            people.append((sex, _date(rng, min(head_born.year + 20, 2020), 2022),
                           "20" if sex == "1" else "30", _name(rng, surname)))
        households.append((cbfbm, groups[g].id, "1", people[0][3] + "户",
                           f"{vname}{int(rng.integers(1, 300))}号"))
        for sex, born, rel, name in people:
            idn = ids.make(sex, born)
            phone = f"13{int(rng.integers(0, 10))}{int(rng.integers(10000000, 99999999))}"
            persons.append((idn, name, sex, born, village_code, f"{vname}", phone))
            members.append((cbfbm, idn, rel))
            memberships.append((idn, groups[g].id, "original" if born.year < 1999 else "birth",
                                max(born, dt.date(1999, 1, 1))))
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        _copy(cur, "person (id_number, name, sex, birth_date, hukou_division_code, "
                   "hukou_address, phone)", persons)
        _copy(cur, "household (cbfbm, collective_id, cbflx, name, address)", households)
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS _demo_member (cbfbm text, id_number text, "
                    "relation text) ON COMMIT DELETE ROWS")
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS _demo_ms (id_number text, collective_id int, "
                    "basis text, began_on date) ON COMMIT DELETE ROWS")
        cur.execute("TRUNCATE _demo_member, _demo_ms")
        _copy(cur, "_demo_member", members)
        _copy(cur, "_demo_ms", memberships)
        cur.execute("""
            INSERT INTO household_member (household_id, person_id, relation, is_coholder)
            SELECT h.id, p.id, m.relation, true FROM _demo_member m
            JOIN household h ON h.cbfbm = m.cbfbm JOIN person p ON p.id_number = m.id_number""")
        cur.execute("""
            UPDATE household h SET head_person_id = p.id FROM _demo_member m
            JOIN person p ON p.id_number = m.id_number
            WHERE m.cbfbm = h.cbfbm AND m.relation = '02'""")
        cur.execute("""
            INSERT INTO membership (person_id, collective_id, basis, began_on, confirmed_on)
            SELECT p.id, s.collective_id, s.basis, s.began_on, DATE '2021-06-30' FROM _demo_ms s
            JOIN person p ON p.id_number = s.id_number""")

        # Parcels: fields to the households of their group, homesteads one per household.
        by_group: dict[int, list[int]] = {}
        for i in range(n_hh):
            by_group.setdefault(int(hh_group[i]), []).append(i)
        parcel_rows = []
        field_polys = [shapely.Polygon(s.ring) for s in layout.fields]
        field_area = shapely.area(field_polys) if field_polys else []
        dk_seq = [0] * layout.groups
        holder_names = [h[3][:-1] for h in households]
        owner_of = []
        for strip in layout.fields:
            g = strip.group if strip.group in by_group else next(iter(by_group))
            owners = by_group[g]
            owner = owners[(strip.block * 7 + strip.index) % len(owners)]
            owner_of.append(owner)
        for idx, strip in enumerate(layout.fields):
            g = strip.group if strip.group in by_group else next(iter(by_group))
            dk_seq[g] += 1
            owner = owner_of[idx]
            fb = groups[g].fbfbm
            area = float(field_area[idx])
            prev_name = holder_names[owner_of[idx - 1]] if strip.index > 0 else "道路"
            next_name = holder_names[owner_of[idx + 1]] if not strip.last else "道路"
            r = rng.random()
            parcel_rows.append((
                "contract", f"{fb}{dk_seq[g]:05d}", groups[g].id, households[owner][0],
                f"{'东西南北'[int(rng.integers(4))]}{'坡地洼地滩地梁地'[int(rng.integers(4)) * 2:][:2]}",
                "31", "10" if r < 0.9 else ("21" if r < 0.95 else "22"),
                "013" if rng.random() < 0.8 else "012", f"{int(rng.integers(3, 9)):02d}", "1",
                "1" if rng.random() < 0.8 else "2", m2(area), mu(area),
                "道路", "道路", prev_name, next_name, holder_names[owner],
                shapely.to_wkb(field_polys[idx], hex=True)))
        for i, poly in enumerate(layout.homesteads):
            area = float(poly.area)
            bdcdyh = f"{village_code}JC{i + 1:05d}F{1:04d}{1:04d}"
            g = int(hh_group[i])
            parcel_rows.append((
                "homestead", bdcdyh, groups[g].id, households[i][0], None, "30", None, "072",
                None, "5", "2", m2(area), mu(area), None, None, None, None,
                holder_names[i], shapely.to_wkb(poly, hex=True)))
        cur.execute("""CREATE TEMP TABLE IF NOT EXISTS _demo_parcel (kind text, code text,
            collective_id int, household_code text, name text, syqxz text, dklb text, tdlylx text,
            dldj text, tdyt text, sfjbnt text, scmj numeric, scmjm numeric, east text, south text,
            west text, north text, witness text, wkb text) ON COMMIT DELETE ROWS""")
        cur.execute("TRUNCATE _demo_parcel")
        _copy(cur, "_demo_parcel", parcel_rows)
        cur.execute(f"""
            INSERT INTO parcel (kind, code, collective_id, household_code, name, syqxz, dklb,
              tdlylx, dldj, tdyt, sfjbnt, scmj, scmjm, east, south, west, north, witness,
              survey_srid, geom)
            SELECT kind, code, collective_id, household_code, name, syqxz, dklb, tdlylx, dldj,
              tdyt, sfjbnt, scmj, scmjm, east, south, west, north, witness, {SURVEY_SRID},
              ST_Multi(ST_Transform(ST_GeomFromWKB(decode(wkb, 'hex'), {SURVEY_SRID}), 4490))
            FROM _demo_parcel""")
    return {"collectives": len(groups), "households": n_hh, "persons": len(persons),
            "parcels": len(layout.fields), "homesteads": len(layout.homesteads)}


DEMO_USERS = [
    # username, display name, role, jurisdiction
    ("admin", "系统管理员", "admin", None),
    ("bureau", "区农业农村局 王科员", "bureau_staff", COUNTY),
    ("hukou", "派出所 李警官", "hukou_officer", COUNTY),
    ("exchange", "农村产权交易中心 赵经理", "exchange_operator", "140400"),
    ("auditor", "审计 孙审计", "auditor", "140400"),
    ("supervisor", "合规监督 周监督员", "compliance_supervisor", "140400"),
]


class DemoInProduction(RuntimeError):
    pass


def refuse_in_production() -> None:
    """The production start-up check refuses known passwords, but only at start-up: accounts
    made by `flask demo load` afterwards would be open until the next restart.  So the demo
    (its accounts with a shared password, its invented people) is never loaded there."""
    if current_app.config.get("ENV_NAME") == "production":
        raise DemoInProduction("Refusing to load the demo in production (SANQUAN_ENV="
                               "production): its accounts share a known password.")


def create_demo_users() -> list[str]:
    """Demo accounts (password from DEMO_PASSWORD); officer and farmer in the first village."""
    refuse_in_production()
    password = current_app.config["DEMO_PASSWORD"]
    made = []
    for username, name, role, jur in DEMO_USERS:
        if db.session.scalar(select(User.id).where(User.username == username)) is None:
            auth_ops.create_user(None, username, password, role, name, jur, reason="demo account")
            made.append(username)
    first = db.session.scalar(select(Collective).order_by(Collective.fbfbm))
    if first is not None:
        if db.session.scalar(select(User.id).where(User.username == "officer")) is None:
            auth_ops.create_user(None, "officer", password, "collective_officer",
                                 f"{first.village.name} 村集体 张会计", first.village_code,
                                 reason="demo account")
            made.append("officer")
        hh = db.session.scalar(select(Household).where(Household.collective_id == first.id)
                               .order_by(Household.cbfbm))
        if hh is not None and db.session.scalar(
                select(User.id).where(User.username == "farmer")) is None:
            head = db.session.get(Person, hh.head_person_id)
            auth_ops.create_user(None, "farmer", password, "farmer", head.name,
                                 person_id=head.id, household_code=hh.cbfbm,
                                 reason="demo account")
            made.append("farmer")
    membership_demo.load_demo()  # issue 15: a filed roll, shares, a paid distribution
    db.session.commit()
    return made


def is_empty() -> bool:
    return db.session.execute(text("SELECT NOT EXISTS (SELECT 1 FROM collective)")).scalar()


def populate(echo=print) -> dict:
    """The demo county's story, built through each feature's own operations, step by step;
    every step runs once (its marker in the audit log), so loading again changes nothing.
    A feature adds its step to STORY (membership: its roll, shares and a paid distribution)."""
    import time

    story = [("campaigns", campaigns.load), ("settlement", settlement.load),
             ("withdrawal", withdrawal.load), ("market", market.load),
             ("reports", reports.load)]
    # membership's demo runs with the demo accounts (create_demo_users), so tests have it too.
    out = {}
    for name, step in story:
        t0 = time.monotonic()
        made = step()
        out[name] = made
        echo(f"demo {name}: {made or 'already present'} ({time.monotonic() - t0:.1f} s)")
    return out
