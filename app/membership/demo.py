"""Demo data for membership (`make run`): the demo farmer's collective with a filed roll (one
confirmation round), shares, and one paid distribution that includes a member who settled in
town.  Idempotent (nothing is done twice) and entirely through the operations."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.collectives import operations as coll_ops
from app.collectives.models import Collective
from app.extensions import db
from app.people import operations as people_ops
from app.people.idnumber import check_digit
from app.people.models import Household, Person
from app.settlement import operations as settlement
from app.settlement.models import SettlementTown

from . import operations as ops
from .models import MembershipApplication, RollNotice

ACTOR = "demo"
MEETING = dt.date(2025, 9, 1)
BASE = dt.date(2025, 6, 30)


def _settle_one(c: Collective) -> Person | None:
    """A member of the last household settles in town (owned house): hukou moves, nothing
    else changes."""

    for m in reversed(coll_ops.roll(c)):
        if ops.settled_in_town(m.person_id):
            return m.person
    hh = db.session.scalars(select(Household).where(Household.collective_id == c.id)
                            .order_by(Household.cbfbm.desc())).first()
    if hh is None or hh.head is None:
        return None
    settlement.ensure_towns()
    town = db.session.scalars(select(SettlementTown).where(SettlementTown.active.is_(True))
                              .order_by(SettlementTown.id)).first()
    a = settlement.apply(ACTOR, hh.head, town, [], today=BASE, basis="owned_house",
                         property_certificate_no="晋(2025)长治市不动产权第0066001号",
                         living_there=True, residence_address="潞州区英雄中路 8 号 2-1-301",
                         destination="house_address",
                         destination_address="潞州区英雄中路 8 号 2-1-301")
    settlement.approve(ACTOR, a, conditions=["present_originals"], note="材料齐全，准予落户")
    return hh.head


def load_demo() -> dict:
    c = db.session.scalar(select(Collective).order_by(Collective.fbfbm))
    if c is None or not coll_ops.roll(c):
        return {}
    done = {"collective": c.fbfbm}
    if db.session.scalar(select(RollNotice.id).where(RollNotice.collective_id == c.id,
                                                     RollNotice.status == "filed")) is None:
        hh = db.session.scalars(select(Household).where(Household.collective_id == c.id)
                                .order_by(Household.cbfbm)).first()
        first = f"{c.village_code[:6]}20250301{998:03d}"
        number = first + check_digit(first)
        baby = db.session.scalar(select(Person).where(Person.id_number == number)) or \
            people_ops.register_person(ACTOR, number, "张小满", c.village_code,
                                       reason="出生登记（演示）")
        if hh is not None and all(m.person_id != baby.id for m in hh.current_members):
            people_ops.add_member(ACTOR, hh, baby, "20", reason="出生入户（演示）")
        a = db.session.scalar(select(MembershipApplication).where(
            MembershipApplication.person_id == baby.id,
            MembershipApplication.collective_id == c.id)) or \
            ops.apply(ACTOR, c, baby, "birth", facts={"livelihood": True},
                      reason="出生申请（演示）")
        voters = [m.person_id for m in ops.members_on(c, MEETING)]
        assembly = ops.open_assembly(ACTOR, c, MEETING, voters, reason="成员大会（演示）")
        ops.resolve(ACTOR, assembly, a, assembly.needed, len(voters) - assembly.needed, 0,
                    "admit", reason="表决（演示）")
        notice = ops.post_notice(ACTOR, assembly, posted_on=MEETING + dt.timedelta(days=1))
        o = ops.lodge_objection(ACTOR, notice, "村民", "新生儿户口尚未登记", application=a,
                                lodged_on=notice.posted_on)
        ops.resolve_objection(ACTOR, o, "dismissed", "已核实出生登记和户口", on=notice.ends_on)
        ops.file_roll(ACTOR, notice, filed_on=notice.ends_on, reason="报乡镇备案（演示）")
        done["roll"] = "filed"
    settled = _settle_one(c)
    if ops.latest_quantification(c) is None:
        ops.set_charter_rule(ACTOR, c, labour_centi_per_year=10, collective_share_bp=1000,
                             reason="章程（演示）")
        ops.quantify(ACTOR, c, BASE, 1_250_000_000, reason="股份量化（演示）")
        done["shares"] = "quantified"
    if not ops.distributions(c):
        if settled is not None:
            ops.set_bank_account(ACTOR, settled, "长治农商银行", "6228480000000000017",
                                 reason="开户（演示）")
        ops.distribute(ACTOR, c, 18_765_432, dt.date(2025, 12, 20), reason="年度分红（演示）")
        done["distribution"] = "paid"
    return done
