"""Demo: a report of coercion received from the public notice page, waiting for the
compliance supervisor."""
from __future__ import annotations

from app.extensions import db
from app.reports import operations as reports

from .common import done, mark, villages


def load() -> dict:
    if done("reports"):
        return {}
    v = villages()
    r = reports.submit(None, "notice_page", "村干部说不签退出承包地的同意书就不给办落户证明。",
                       who_asked="村干部", division_code=v[1] if len(v) > 1 else v[0])
    made = {"report": r.id}
    mark("reports", made)
    db.session.commit()
    return made
