"""What migrations 0036_citus, 0041_citus2 and 0045_citus_person (Citus-ready keys,
docs/scaling.md §3) cost on a large register.

    .venv/bin/python -m bench.citus_migration --parcels 1000000
    .venv/bin/python -m bench.citus_migration --parcels 100000 --start 0040_atk_db \
        --target 0041_citus2
    .venv/bin/python -m bench.citus_migration --parcels 150000 --start 0043_atk_db2 \
        --target 0045_citus_person

With --start, the generated register is first brought to that revision untimed; only
--start → --target is timed.  Every parcel also gets the staged feature it was imported from
(import_feature.parcel_id, which 0041 makes composite).

Builds a database at 0032_fk_indexes (the revision before), generates a register in SQL as
bench/scale.py does (villages of 1,000 parcels and 170 households) plus what 0036 rewrites:
one land-contract right per household over its parcels, a certificate per right, four members
per household and one membership per member, their persons (valid GB 11643 numbers; 1 in 100
of them also a member of a collective of another county when there are two, for 0045's split),
then times `upgrade 0036_citus` statement by statement (the migration's own SQL, in one transaction) and
prints the slowest steps.  The database is BENCH_DATABASE_URL's name + `_citus` (the private
cluster's superuser generates it; the owner role migrates it)."""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import time

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url

from bench.scale import (
    CELL,
    GENERATE,
    GIVEN,
    GRID,
    HOUSEHOLDS,
    LAT0,
    LON0,
    PER_VILLAGE,
    SURNAMES,
    VILLAGE_STEP,
    VILLAGES_PER_COUNTY,
    county_code,
)

REGISTER = """
SET session_replication_role = replica;
INSERT INTO land_right (kind, holder_household_code, holder_name, contract_code, fbfbm,
                        term_start, term_end, changed_by)
SELECT 'land_contract', h.cbfbm, h.name, h.cbfbm || 'J', left(h.cbfbm, 14),
       '1999-01-01', '2028-12-31', 'bench' FROM household h;
INSERT INTO land_right_parcel (right_id, parcel_uid, parcel_code, contract_area)
SELECT r.id, p.uid, p.code, p.scmj FROM parcel p
JOIN land_right r ON r.holder_household_code = p.household_code;
INSERT INTO certificate (kind, number, right_uid, right_id, household_code, token, authority,
                         issued_by, content, content_sha256)
SELECT 'land_contract', r.contract_code, r.uid, r.id, r.holder_household_code,
       md5(r.id::text), '测试县人民政府', 'bench', '{}', md5(r.id::text) || md5(r.uid::text)
FROM land_right r;
INSERT INTO household_member (household_id, person_id, relation)
SELECT h.id, h.id * 4 + k, CASE k WHEN 0 THEN '02' ELSE '20' END
FROM household h, generate_series(0, 3) k;
INSERT INTO membership (person_id, collective_id, basis, began_on)
SELECT m.person_id, h.collective_id, 'original', '1999-01-01'
FROM household_member m JOIN household h ON h.id = m.household_id;
INSERT INTO person (id, id_number, name, sex, birth_date)
SELECT s.n, s.id17 || substr('10X98765432', (
         SELECT sum(substr(s.id17, i, 1)::int
                    * (ARRAY[7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])[i])::int
         FROM generate_series(1, 17) i) % 11 + 1, 1),
       '某', CASE WHEN s.n % 2 = 1 THEN '1' ELSE '2' END, s.born
FROM (SELECT n, '110101' || to_char(born, 'YYYYMMDD') || lpad((n % 1000)::text, 3, '0')
             AS id17, born
      FROM (SELECT DISTINCT person_id AS n, date '1950-01-01' + person_id / 1000 AS born
            FROM household_member) m) s;
INSERT INTO membership (person_id, collective_id, basis, began_on)
SELECT m.person_id, o.id, 'marriage', '2010-01-01'
FROM household_member m JOIN household h ON h.id = m.household_id
JOIN LATERAL (SELECT c.id FROM collective c WHERE left(c.fbfbm, 6) <> left(h.cbfbm, 6)
              ORDER BY c.id LIMIT 1) o ON true
WHERE m.person_id % 100 = 0;
INSERT INTO import_batch (id, source, status, created_by)
VALUES (1, 'bench', 'accepted', 'bench');
INSERT INTO import_feature (batch_id, layer, fid, code, status, parcel_id)
SELECT 1, 'DK', p.id, p.code, 'registered', p.id FROM parcel p;
SET session_replication_role = origin;
"""


BASE = "0032_fk_indexes"  # the register is generated at this revision


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parcels", type=int, default=1_000_000)
    ap.add_argument("--start", default=BASE, help="revision the timing starts from")
    ap.add_argument("--target", default="0036_citus")
    args = ap.parse_args()
    base = os.environ.get("BENCH_DATABASE_URL") or subprocess.run(
        ["scripts/pg.sh", "url", "sanquan_bench"], check=True, capture_output=True,
        text=True).stdout.strip()
    u = make_url(base).set(database=make_url(base).database + "_citus")
    admin = u.set(username="postgres").render_as_string(hide_password=False)
    owner = u.set(username=os.environ.get("SANQUAN_OWNER_ROLE", "sanquan_owner"))
    owner = owner.render_as_string(hide_password=False)
    with create_engine(u.set(username="postgres", database="postgres"),
                       isolation_level="AUTOCOMMIT").connect() as c:  # always a fresh one
        c.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    subprocess.run(["scripts/pg.sh", "ensure", u.render_as_string(hide_password=False)],
                   check=True, capture_output=True)
    from flask_migrate import upgrade

    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": owner, "MIGRATE_DATABASE_URL": owner})
    with app.app_context():
        upgrade(revision=BASE)
    villages = max(1, args.parcels // PER_VILLAGE)
    counties = [county_code(c) for c in range(math.ceil(villages / VILLAGES_PER_COUNTY))]
    sql = GENERATE.format(vpc=VILLAGES_PER_COUNTY, hh=HOUSEHOLDS, grid=GRID, cell=CELL,
                          lon0=LON0, lat0=LAT0, step=VILLAGE_STEP) + REGISTER
    t0 = time.perf_counter()
    eng = create_engine(admin)
    with eng.begin() as c:
        c.execute(text("SET LOCAL jit = off"))
        for stmt in [s for s in sql.split(";\n") if s.strip()]:
            c.execute(text(stmt), {"counties": counties, "villages": villages,
                                   "per_village": PER_VILLAGE, "surnames": SURNAMES,
                                   "given": GIVEN})
    with create_engine(admin, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text("VACUUM ANALYZE"))
        rows = {t: c.execute(text(f"SELECT count(*) FROM {t}")).scalar()  # noqa: S608
                for t in ("parcel", "household", "land_right", "land_right_parcel",
                          "certificate", "household_member", "membership", "import_feature",
                          "person")}
    eng.dispose()
    print(f"generated in {time.perf_counter() - t0:.0f} s: "
          + ", ".join(f"{t} {n:,}" for t, n in rows.items()), flush=True)

    if args.start != BASE:
        t0 = time.perf_counter()
        with app.app_context():
            upgrade(revision=args.start)
        print(f"upgrade {BASE} -> {args.start} (untimed setup): "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    steps: list[tuple[float, str]] = []
    with app.app_context():
        def before(conn, cursor, statement, parameters, context, executemany):
            conn.info["t0"] = time.perf_counter()

        def after(conn, cursor, statement, parameters, context, executemany):
            steps.append((time.perf_counter() - conn.info.pop("t0"), " ".join(statement.split())))

        # every engine (migrations/env.py makes its own for the owner role)
        event.listen(Engine, "before_cursor_execute", before)
        event.listen(Engine, "after_cursor_execute", after)
        t1 = time.perf_counter()
        upgrade(revision=args.target)
        total = time.perf_counter() - t1
    print(f"upgrade {args.start} -> {args.target}: {total:.1f} s "
          f"({sum(s for s, _ in steps):.1f} s in {len(steps)} statements); slowest:")
    for s, stmt in sorted(steps, reverse=True)[:15]:
        print(f"  {s:7.2f} s  {stmt[:110]}")


if __name__ == "__main__":
    main()
