"""The confirmation's pictures: the county's progress per villagers' group and one campaign's
progress, as server-rendered SVG (app/charts.py)."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import text

from app.charts import progress_bars
from app.extensions import db


def county_progress(like: str | None) -> list[tuple[str, int, int, int]]:
    """Per villagers' group within reach: (name, households, with a registered contract right,
    with a valid certificate)."""
    return [tuple(r) for r in db.session.execute(text("""
        SELECT c.name,
               (SELECT count(*) FROM household h WHERE h.collective_id = c.id
                  AND h.ended_on IS NULL),
               (SELECT count(DISTINCT r.holder_household_code) FROM land_right r
                  WHERE r.fbfbm = c.fbfbm AND r.kind = 'land_contract' AND r.status = 'current'
                    AND r.end_lifespan IS NULL),
               (SELECT count(DISTINCT ce.household_code) FROM certificate ce
                  WHERE ce.household_code LIKE c.fbfbm || '%' AND ce.status = 'valid')
        FROM collective c WHERE c.fbfbm LIKE :l ORDER BY c.fbfbm LIMIT 60"""),
        {"l": like or "%"})]


def county_chart(like: str | None) -> str:
    rows = county_progress(like)
    if not rows:
        return ""
    registered = progress_bars(_("Households with a registered contract right, per group"),
                               [(n, r, h) for n, h, r, _c in rows])
    certified = progress_bars(_("Households with a certificate, per group"),
                              [(n, c, h) for n, h, _r, c in rows])
    return registered + certified


def campaign_chart(p: dict) -> str:
    """One campaign: rights and certificates against the households of the group."""
    h = p["households"] or 0
    return progress_bars(_("Campaign progress"), [
        (_("Contract rights"), p["contracts"], h), (_("Homestead rights"), p["homesteads"], h),
        (_("Households certified"), p["certified_households"], h),
        (_("Objections resolved"), p["objections"]["upheld"] + p["objections"]["dismissed"],
         sum(p["objections"].values()))])
