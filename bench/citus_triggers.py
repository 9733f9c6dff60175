"""What the per-row triggers of 0036_citus and 0040_atk_db cost on a bulk insert.

    .venv/bin/python -m bench.citus_triggers --rows 100000 --runs 3

Inserts ROWS land_right_parcel rows of one right (INSERT … SELECT generate_series), in one
transaction rolled back to a savepoint after each run, three ways taken in turn:
  all       every trigger, as the application inserts (county copied from the right, id from
            its sequence);
  no_key    without 0040's key_from_sequence trigger;
  raw       without it and without 0036's county trigger, the county named by the insert
            (the composite foreign key still checks it).
Prints each way's median and spread and its ratio to `raw` of the same run.  Needs the owner
role (it disables triggers inside its transaction): OWNER_DATABASE_URL, else the owner URL of
DATABASE_URL (app.config.owner_url).  Nothing is kept."""
from __future__ import annotations

import argparse
import os
import statistics
import time

from sqlalchemy import create_engine, text

from app.config import owner_url

INSERT = ("INSERT INTO land_right_parcel (right_id, parcel_uid, parcel_code{county}) "
          "SELECT :r, g, 'x' || g{value} FROM generate_series(1, :n) g")
WAYS = {
    "all": ([], INSERT.format(county="", value="")),
    "no_key": (["land_right_parcel_key"], INSERT.format(county="", value="")),
    "raw": (["land_right_parcel_key", "land_right_parcel_county_code"],
            INSERT.format(county=", county_code", value=", :c")),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    url = os.environ.get("OWNER_DATABASE_URL") or owner_url(os.environ["DATABASE_URL"])
    engine = create_engine(url)
    times: dict[str, list[float]] = {w: [] for w in WAYS}
    with engine.connect() as c:
        tx = c.begin()
        r, county = c.execute(text("""
            INSERT INTO land_right (kind, holder_household_code, holder_name, fbfbm,
                                    contract_code, term_start, term_end)
            SELECT 'land_contract', cbfbm, 'bench', left(cbfbm, 14), cbfbm || 'J',
                   DATE '1999-01-01', DATE '2028-12-31' FROM household ORDER BY id LIMIT 1
            RETURNING id, county_code""")).one()
        for _ in range(args.runs):
            for way, (off, sql) in WAYS.items():
                sp = c.begin_nested()
                for t in off:
                    c.execute(text(f"ALTER TABLE land_right_parcel DISABLE TRIGGER {t}"))
                t0 = time.perf_counter()
                c.execute(text(sql), {"r": r, "n": args.rows, "c": county})
                times[way].append(time.perf_counter() - t0)
                sp.rollback()
        tx.rollback()
    raw = statistics.median(times["raw"])
    print(f"land_right_parcel, {args.rows} rows, {args.runs} runs each (median, min–max):")
    for way, ts in times.items():
        med = statistics.median(ts)
        print(f"  {way:7s} {med:7.2f} s ({min(ts):.2f}–{max(ts):.2f})  "
              f"{med / raw:4.2f}× raw  {1e6 * med / args.rows:6.1f} µs/row")


if __name__ == "__main__":
    main()
