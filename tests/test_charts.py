"""Server-rendered charts: bars proportional to their figures, named for screen readers; the
county's confirmation progress on the campaigns page follows the register."""
import datetime as dt
import random
import re

from sqlalchemy import select

from app.campaigns.charts import county_progress
from app.charts import grouped_bars, progress_bars
from app.parcels.models import Parcel
from app.people.models import Household
from app.rights import operations as rights


def test_progress_bar_widths_follow_the_figures():
    rng = random.Random(42)
    rows = [(f"组{i}", rng.randint(0, 50), rng.randint(1, 50)) for i in range(6)]
    rows = [(n, min(d, t), t) for n, d, t in rows]
    svg = progress_bars("进度", rows, width=640)
    assert svg.startswith("<svg") and 'role="img"' in svg and 'aria-label="进度"' in svg
    inner = 640 - 170 - 90
    widths = [float(w) for w in re.findall(r'fill="#1a7f37"[^>]*>|width="([\d.]+)" height="18" '
                                           r'fill="#1a7f37"', svg) if w]
    assert widths == [round(inner * d / t, 1) for _n, d, t in rows]
    for _n, d, t in rows:
        assert f"{d}/{t}" in svg


def test_grouped_bars_are_as_tall_as_their_values_relative_to_the_largest():
    s = {"甲": [1.0, 4.0], "乙": [2.0, 0.0]}
    svg = grouped_bars("量", ["1月", "2月"], s, height=220)
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" fill="#', svg)][2:]  # legend
    plot_h = 220 - 40 - 18 - 14
    assert sorted(heights) == sorted(round(plot_h * v / 4.0, 1) for vs in s.values() for v in vs)


def test_county_progress_counts_registered_households(dbs, login_as):
    hh = dbs.scalar(select(Household).order_by(Household.cbfbm.desc()))
    fields = dbs.scalars(select(Parcel).where(Parcel.household_code == hh.cbfbm,
                                              Parcel.kind == "contract",
                                              Parcel.end_lifespan.is_(None))).all()
    before = {r[0]: r for r in county_progress(None)}
    rights.register_land_contract("bureau", hh.cbfbm, hh.cbfbm + "J", [(p, None) for p in fields],
                                  dt.date(1999, 1, 1), dt.date(2058, 12, 31), reason="测试")
    after = {r[0]: r for r in county_progress(None)}
    changed = [k for k in after if after[k] != before.get(k)]
    assert len(changed) == 1 and after[changed[0]][2] == before[changed[0]][2] + 1
    html = login_as("bureau").get("/campaigns").get_data(as_text=True)
    assert 'id="county-progress"' in html and "<svg" in html
