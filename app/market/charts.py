"""The market in pictures: listings announced and their reserve prices per township over
time (months), from public figures only, as server-rendered SVG (app/charts.py)."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import text

from app.charts import grouped_bars
from app.extensions import db


def volume_and_prices(months: int = 6) -> list:
    """(month, township name, listings announced, area mu, mean reserve yuan/mu/year)."""
    return db.session.execute(text("""
        SELECT to_char(l.announced_on, 'YYYY-MM') AS month,
               coalesce(d.name, l.township_code) AS township,
               count(*) AS listings, sum(l.area_mu) AS area,
               coalesce(round(avg(l.reserve_price) FILTER (WHERE l.area_mu > 0), 2), 0) AS price
        FROM market_listing l LEFT JOIN division d ON d.code = l.township_code
        WHERE l.announced_on IS NOT NULL
          AND l.announced_on >= date_trunc('month', CURRENT_DATE) - make_interval(months => :m)
        GROUP BY 1, 2 ORDER BY 1, 2"""), {"m": months}).all()


def market_charts() -> str:
    rows = volume_and_prices()
    if not rows:
        return ""
    months = sorted({r.month for r in rows})
    towns = sorted({r.township for r in rows})
    by = {(r.month, r.township): r for r in rows}
    volume = {t: [float(by[(m, t)].area) if (m, t) in by else 0.0 for m in months]
              for t in towns}
    price = {t: [float(by[(m, t)].price) if (m, t) in by else 0.0 for m in months]
             for t in towns}
    return (grouped_bars(_("Area announced per township and month (mu)"), months, volume,
                         fmt=lambda v: f"{v:.1f}")
            + grouped_bars(_("Mean reserve price per township and month (yuan/mu/year)"),
                           months, price, fmt=lambda v: f"{v:.0f}"))
