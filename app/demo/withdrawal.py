"""Demo: the withdrawal pilot (自愿有偿退出) switched on for the county, one withdrawal in its
cooling-off period and one flagged for a voluntariness check (the household settled in town
just before)."""
from __future__ import annotations

from app.extensions import db
from app.rights import operations as rights
from app.withdrawal import operations as withdrawal

from .common import COUNTY, done, groups, households, mark, villages
from .settlement import cases


def _start(hh, kind: str):
    right = next((r for r in rights.current_rights(hh.cbfbm) if r.kind == kind), None)
    if right is None:
        return None
    w = withdrawal.start("bureau", right, "in_person", statement=f"{hh.name} 自愿退出申请书（演示）"
                         .encode(), statement_name="退出申请书.pdf", witness="officer")
    for p in withdrawal.missing_consents(w, w.started_on):
        withdrawal.consent("bureau", w, p, f"{p.name} 签字同意书（演示）".encode(),
                           document_name="同意书.pdf")
    return w


def load() -> dict:
    if done("withdrawal"):
        return {}
    withdrawal.enable_pilot("admin", COUNTY, True)
    made = {}
    settled = cases()[0]  # approved in the settlement demo: its withdrawal is flagged
    w = _start(settled, "homestead")
    if w is not None:
        made["flagged"] = (w.id, w.status)
    g = groups(villages()[0])
    quiet = households(g[1] if len(g) > 1 else g[0])[5]
    w = _start(quiet, "land_contract")
    if w is not None:
        made["cooling"] = (w.id, w.status)
    mark("withdrawal", made)
    db.session.commit()
    return made
