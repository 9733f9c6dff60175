"""Demo: settlement in town (进城落户) — approved, pending and rejected, each with the notice
that the family keeps its rights (rights_kept)."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.people.models import Household
from app.settlement import operations as settlement
from app.settlement.models import SettlementTown

from .common import done, groups, households, mark, villages

RELATION = {"10": "spouse", "11": "spouse", "12": "spouse", "20": "child", "30": "child",
            "51": "parent", "52": "parent"}


def family(hh: Household) -> tuple:
    """The head and those who may move with them (spouse, unmarried younger children)."""
    head = hh.head
    moving = [{"person_id": m.person_id, "relation": RELATION[m.relation], "unmarried": True}
              for m in hh.current_members if m.person_id != head.id and m.relation in RELATION
              and (RELATION[m.relation] != "child" or m.person.birth_date > head.birth_date)
              and (RELATION[m.relation] != "parent" or m.person.birth_date < head.birth_date)]
    return head, moving


def _owned_house(n: int) -> dict:
    address = f"潞州区英雄中路 {8 + n} 号 3-2-50{n}"
    return {"basis": "owned_house", "property_certificate_no": f"晋(2025)长治市不动产权第00{12345 + n}号",
            "living_there": True, "residence_address": address, "destination": "house_address",
            "destination_address": address}


def cases() -> list[Household]:
    """The settling households: the second group of the farmer's village (rights registered)."""
    g = groups(villages()[0])
    return households(g[1] if len(g) > 1 else g[0])[:3]


def load() -> dict:
    if done("settlement"):
        return {}
    town = db.session.scalar(select(SettlementTown).where(SettlementTown.active.is_(True))
                             .order_by(SettlementTown.id))
    made = {}
    for n, (hh, outcome) in enumerate(zip(cases(), ("approved", "submitted", "rejected"),
                                          strict=False)):
        head, moving = family(hh)
        a = settlement.apply("hukou", head, town, moving, **_owned_house(n))
        if outcome == "approved":
            settlement.approve("hukou", a, conditions=["present_originals"],
                               note="材料齐全，准予落户")
        elif outcome == "rejected":
            settlement.reject("hukou", a, ["documents_incomplete"], note="缺房屋产权证原件")
        made[outcome] = a.id
    mark("settlement", made)
    db.session.commit()
    return made
