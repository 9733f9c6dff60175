"""Income distribution over a large roll (`make bench`, part `--only membership`): the app's
distribution run (largest-remainder rounding in Python, the payouts bulk-inserted, the database's
completeness check on marking it paid, the audit entry) beside the same computation as one SQL
statement (floor shares, the leftover fen to the largest remainders, ties by person id)."""
from __future__ import annotations

import datetime as dt
import time

import numpy as np

COUNTY, TOWNSHIP, VILLAGE = "140404", "140404901", "140404901201"

ONE_STATEMENT = """
WITH h AS (
  SELECT person_id, min(household_id) AS hh, sum(shares_centi)::numeric AS s
    FROM share_holding WHERE quantification_id = :q AND ended_on IS NULL GROUP BY person_id),
t AS (SELECT sum(s) AS total FROM h),
f AS (SELECT person_id, hh, s, floor(:amount * s / t.total) AS fl,
             mod(:amount * s, t.total) AS r FROM h, t),
n AS (SELECT :amount - sum(fl) AS left_fen FROM f)
INSERT INTO distribution_payout (distribution_id, person_id, household_id, shares_centi,
                                 amount_fen)
SELECT :d, person_id, hh, s, fl + CASE WHEN row_number() OVER (ORDER BY r DESC, person_id)
                                        <= (SELECT left_fen FROM n) THEN 1 ELSE 0 END
  FROM f
"""


def _ids(n: int, seed: int = 15):
    from app.people.idnumber import check_digit

    rng = np.random.default_rng(seed)
    seen = set()
    start = dt.date(1940, 1, 1)
    while len(seen) < n:
        born = start + dt.timedelta(days=int(rng.integers(0, 70 * 365)))
        seq = int(rng.integers(0, 1000))
        first = f"{COUNTY}{born:%Y%m%d}{seq:03d}"
        num = first + check_digit(first)
        if num not in seen:
            seen.add(num)
            yield num, ("1" if seq % 2 else "2"), born


def load(n: int) -> int:
    """A village collective with `n` members and their shares (population shares plus one
    labour-age share per year), loaded with COPY; returns the collective's id."""
    from sqlalchemy import text

    from app.collectives.models import Collective
    from app.divisions.operations import add_division, ensure_reference_divisions
    from app.extensions import db
    from app.membership import operations as ops

    ensure_reference_divisions()
    from app.divisions.models import Division

    for code, name in ((TOWNSHIP, "分配测试镇"), (VILLAGE, "分配测试村")):
        if db.session.get(Division, code) is None:
            add_division("bench", code, name)
    c = Collective(fbfbm=VILLAGE + "00", name="分配测试村股份经济合作社", village_code=VILLAGE)
    db.session.add(c)
    db.session.flush()
    ops.set_charter_rule("bench", c, labour_centi_per_year=10, collective_share_bp=0,
                         reason="bench")
    db.session.commit()
    raw = db.session.connection().connection.driver_connection
    with raw.cursor() as cur:
        with cur.copy("COPY person (id_number, name, sex, birth_date, hukou_division_code) "
                      "FROM STDIN") as cp:
            for i, (num, sex, born) in enumerate(_ids(n)):
                cp.write_row((num, f"成员{i:06d}", sex, born, VILLAGE))
        cur.execute("INSERT INTO membership (person_id, collective_id, basis, began_on, "
                    "confirmed_on) SELECT id, %s, 'original', DATE '2000-01-01', "
                    "DATE '2000-01-01' FROM person WHERE hukou_division_code = %s",
                    (c.id, VILLAGE))
    raw.commit()
    db.session.execute(text("ANALYZE person; ANALYZE membership"))
    db.session.commit()
    return c.id


def bench(url: str, line, n: int = 100_000, amount_fen: int = 987_654_321) -> list[dict]:
    from sqlalchemy import text

    from app import create_app
    from app.collectives.models import Collective
    from app.extensions import db
    from app.membership import operations as ops

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "MIGRATE_DATABASE_URL": url})
    results = []
    with app.app_context():
        t0 = time.perf_counter()
        cid = load(n)
        c = db.session.get(Collective, cid)
        q = ops.quantify("bench", c, dt.date(2025, 6, 30), 5_000_000_000, reason="bench")
        db.session.commit()
        print(f"\n[distribution over {n:,} members] roll and shares loaded in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        t0 = time.perf_counter()
        d = ops.distribute("bench", c, amount_fen, dt.date(2025, 12, 20), reason="bench")
        db.session.commit()
        ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        d2 = db.session.execute(text(
            "INSERT INTO distribution (collective_id, quantification_id, amount_fen, paid_on, "
            "total_centi, created_by) VALUES (:c, :q, :a, '2025-12-21', :t, 'raw') "
            "RETURNING id"), {"c": cid, "q": q.id, "a": amount_fen, "t": q.total_centi}).scalar()
        db.session.execute(text(ONE_STATEMENT), {"q": q.id, "amount": amount_fen, "d": d2})
        db.session.commit()
        raw = time.perf_counter() - t0
        same = db.session.execute(text(
            "SELECT count(*) FROM distribution_payout a JOIN distribution_payout b "
            "ON a.person_id = b.person_id WHERE a.distribution_id = :a "
            "AND b.distribution_id = :b AND a.amount_fen = b.amount_fen"),
            {"a": d.id, "b": d2}).scalar()
        total = db.session.execute(text(
            "SELECT sum(amount_fen) FROM distribution_payout WHERE distribution_id = :a"),
            {"a": d.id}).scalar()
        results.append(line(f"distribution {n:,} members (run, paid)", ours, raw))
        print(f"  (payouts identical to the one-statement result: {same:,} of {n:,}; "
              f"sum {total} fen of {amount_fen})", flush=True)
        db.session.remove()
    return results


def upgrade_and_bench(url: str, line, n: int = 100_000) -> list[dict]:
    """The schema by the migrations on an emptied database, then the bench."""
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "MIGRATE_DATABASE_URL": url})
    with app.app_context():
        upgrade()
        db.session.remove()
    return bench(url, line, n)


from bench.registry import register_part  # noqa: E402


@register_part("membership")
def membership_part(args, url):
    """A distribution over 100,000 members beside the same computation in one SQL statement."""
    from bench.__main__ import line

    return upgrade_and_bench(url, line)
