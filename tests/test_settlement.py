"""Settlement in town changes the hukou place and nothing else; every way of tying it to giving up
a right is refused, cited and recorded (operation and database)."""
import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditLog
from app.certificates import operations as certificates
from app.errors import DomainError
from app.people.models import Household, Person
from app.rights import operations as rights
from app.settlement import operations as ops
from app.settlement.models import HukouMove, SettlementTown
from tests.test_rights import _contract, _household_with_land

RELATION = {"10": "spouse", "11": "spouse", "12": "spouse", "20": "child", "30": "child",
            "51": "parent", "52": "parent"}


def town(dbs, kind="urban_district") -> SettlementTown:
    return dbs.scalar(select(SettlementTown).where(SettlementTown.kind == kind)
                      .order_by(SettlementTown.id))


def family(hh: Household) -> tuple[Person, list[dict]]:
    """The head and those who may move with them (spouse, unmarried children, parents)."""
    head = hh.head
    moving = [{"person_id": m.person_id, "relation": RELATION[m.relation], "unmarried": True}
              for m in hh.current_members if m.person_id != head.id and m.relation in RELATION
              and (RELATION[m.relation] != "child" or m.person.birth_date > head.birth_date)
              and (RELATION[m.relation] != "parent" or m.person.birth_date < head.birth_date)]
    return head, moving


@pytest.fixture()
def certified(dbs):
    """A household with a land-contract right, a homestead right and certificates."""
    hh, fields, home = _household_with_land(dbs)
    contract = _contract(dbs, hh, fields, end=dt.date(2058, 12, 31))
    homestead = rights.register_homestead("bureau", hh.cbfbm, home, reason="确权")
    certificates.issue("bureau", contract)
    certificates.issue("bureau", homestead)
    return hh


def basis_fields(dbs, kind, head, t, today):
    if kind == "owned_house":
        return {"basis": "owned_house", "property_certificate_no": "晋(2025)长治市不动产权第0012345号",
                "living_there": True, "residence_address": "潞州区英雄中路 8 号 3-2-501",
                "destination": "house_address",
                "destination_address": "潞州区英雄中路 8 号 3-2-501"}
    permit = ops.record_permit("hukou", head, f"RP-{kind}-{head.id}", t, "潞州区太行东街 1 号",
                               today - dt.timedelta(days=400), today - dt.timedelta(days=200),
                               today + dt.timedelta(days=3 * 365))
    if kind == "rental":
        return {"basis": "rental", "rental_registration_no": "长房租备 2025-0815",
                "residence_permit_id": permit.id, "residence_address": "潞州区太行东街 1 号",
                "destination": "community_collective", "police_station": "太行东街派出所",
                "destination_address": "太行东街派出所 社区集体户"}
    return {"basis": "dormitory", "employer_name": "长治市某机械有限公司",
            "residence_permit_id": permit.id, "residence_address": "公司集体宿舍 2 号楼",
            "destination": "employer_collective",
            "destination_address": "长治市某机械有限公司 单位集体户"}


_HOUSEHOLDS = """SELECT hh.cbfbm FROM household hh JOIN household_member hm
                  ON hm.household_id = hh.id WHERE hm.person_id = ANY(:p)"""
_MORE = {  # what ops.snapshot leaves out: the parcels, the households, the certificates whole
    "household": f"SELECT to_jsonb(h) FROM household h WHERE h.cbfbm IN ({_HOUSEHOLDS}) "
                 "ORDER BY h.id",
    "parcel": f"""SELECT to_jsonb(p) - 'geom' || jsonb_build_object('geom', ST_AsEWKB(p.geom)::text)
                  FROM parcel p WHERE p.household_code IN ({_HOUSEHOLDS})
                     OR p.uid IN (SELECT rp.parcel_uid FROM land_right_parcel rp
                                  JOIN land_right r ON r.id = rp.right_id
                                  WHERE r.holder_household_code IN ({_HOUSEHOLDS})
                                     OR r.holder_person_id = ANY(:p))
                  ORDER BY p.id""",
    "certificate_whole": f"SELECT to_jsonb(c) FROM certificate c WHERE c.household_code IN "
                         f"({_HOUSEHOLDS}) ORDER BY c.id",
    "person_other_than_hukou": "SELECT to_jsonb(p) - 'hukou_division_code' - 'hukou_address' "
                               "- 'updated_at' FROM person p WHERE p.id = ANY(:p) ORDER BY p.id",
}


def snapshot(dbs, persons: list[int]) -> dict:
    """Everything settling must leave alone: ops.snapshot's rows (memberships, places in
    households, rights and their parcels, certificates) and the parcels, households and whole
    certificates themselves."""
    out = ops.snapshot(persons)
    out.update({k: dbs.execute(text(sql), {"p": persons}).scalars().all()
                for k, sql in _MORE.items()})
    return out


@pytest.mark.parametrize("basis", ["owned_house", "rental", "dormitory"])
def test_settling_with_each_basis_changes_the_hukou_and_nothing_else(dbs, certified, basis):
    hh = certified
    head, moving = family(hh)
    assert moving, "the demo household has a family"
    persons = [head.id] + [m["person_id"] for m in moving]
    before = snapshot(dbs, persons)
    assert before["land_right"] and before["membership"] and before["certificate"]
    assert before["parcel"] and before["household"] and before["certificate_whole"]
    today = dt.date.today()
    t = town(dbs)
    a = ops.apply("hukou", head, t, moving, **basis_fields(dbs, basis, head, t, today))
    ops.approve("hukou", a, conditions=["present_originals"], note="材料齐全，准予落户")
    dbs.expire_all()
    assert snapshot(dbs, persons) == before  # rights, parcels, households, certificates: untouched
    for pid in persons:
        p = dbs.get(Person, pid)
        assert p.hukou_division_code == t.division_code
        assert p.hukou_address == a.destination_address
    moves = dbs.scalars(select(HukouMove).where(HukouMove.application_id == a.id)).all()
    assert {m.person_id for m in moves} == set(persons)
    assert all(m.from_division_code and m.from_division_code != t.division_code for m in moves)
    kept = ops.rights_kept(a)
    assert {r.kind for r in kept["rights"]} == {"land_contract", "homestead"}
    assert all(x["memberships"] for x in kept["people"])


def test_who_may_move_with_the_applicant(dbs, certified):
    head, moving = family(certified)
    t = town(dbs)
    f = basis_fields(dbs, "owned_house", head, t, dt.date.today())
    other = dbs.scalar(select(Person).where(Person.id.not_in([head.id] + [m["person_id"]
                                                                          for m in moving])))
    with pytest.raises(DomainError) as e:
        ops.apply("hukou", head, t, [{"person_id": other.id, "relation": "sibling"}], **f)
    assert e.value.code == "settlement.relation" and "spouse" in e.value.message("en")
    child = next(m for m in moving if m["relation"] == "child")
    with pytest.raises(DomainError) as e:
        ops.apply("hukou", head, t, [{**child, "unmarried": False}], **f)
    assert e.value.code == "settlement.relation"
    with pytest.raises(DomainError) as e:  # a rental needs a residence permit
        ops.apply("hukou", head, t, [], basis="rental", rental_registration_no="x",
                  residence_address="a", destination="community_collective",
                  police_station="p", destination_address="d")
    assert e.value.code == "settlement.basis"
    with pytest.raises(DomainError) as e:  # an owned house: the hukou goes to its address
        ops.apply("hukou", head, t, [], **{**f, "destination": "community_collective"})
    assert e.value.code == "settlement.destination"
    with pytest.raises(DomainError) as e:  # a permit is issued after six months' residence
        ops.record_permit("hukou", head, "RP-early", t, "x", dt.date.today() - dt.timedelta(
            days=30), dt.date.today())
    assert e.value.code == "settlement.permit"


def _refusals(dbs, action):
    return dbs.scalars(select(AuditLog).where(AuditLog.action == action)).all()


def test_tying_settlement_to_a_right_is_refused_and_recorded(dbs, certified):
    head, moving = family(certified)
    t = town(dbs)
    f = basis_fields(dbs, "owned_house", head, t, dt.date.today())
    # A field about giving up a right (as a form or an API call would send it).
    for extra in ({"give_up_contract_right": "1"}, {"承诺": "自愿退出宅基地"},
                  {"withdraw_homestead": True}):
        with pytest.raises(DomainError) as e:
            ops.apply("hukou", head, t, moving, extra=extra, **f)
        assert e.value.code == "settlement.rights_condition"
        assert "art 27" in e.value.source("en") and "第五十五条" in e.value.source("zh")
    assert len(_refusals(dbs, "settlement.refused.rights_field")) == 3
    with pytest.raises(DomainError) as e:  # any other unknown field: refused as unknown
        ops.apply("hukou", head, t, moving, extra={"favourite_colour": "red"}, **f)
    assert e.value.code == "settlement.field"

    a = ops.apply("hukou", head, t, moving, **f)
    # A document typed as a withdrawal.
    for doc_type in ("rights_withdrawal", "放弃承包地承诺书", "homestead_surrender"):
        with pytest.raises(DomainError) as e:
            ops.add_document("hukou", a, doc_type, "承诺书.pdf", b"%PDF-1.4")
        assert e.value.code == "settlement.rights_condition"
    assert len(_refusals(dbs, "settlement.refused.rights_document")) == 3
    ops.add_document("hukou", a, "property_certificate", "不动产权证.pdf", b"%PDF-1.4 x")
    # A condition in the decision, as a code or as words.
    for cond in ("give_up_homestead", "交回承包地后办理"):
        with pytest.raises(DomainError) as e:
            ops.approve("hukou", a, conditions=[cond])
        assert e.value.code == "settlement.rights_condition"
    with pytest.raises(DomainError) as e:
        ops.approve("hukou", a, note="落户后须退出集体收益分配")
    assert e.value.code == "settlement.rights_condition"
    assert len(_refusals(dbs, "settlement.refused.rights_condition")) == 3
    assert a.status == "submitted"
    ops.approve("hukou", a)
    assert a.status == "approved"


def test_database_refuses_the_same(dbs, certified):
    hh = certified
    head, moving = family(hh)
    t = town(dbs)
    a = ops.apply("hukou", head, t, moving, **basis_fields(dbs, "owned_house", head, t,
                                                           dt.date.today()))
    with pytest.raises(DBAPIError, match="doc_type_closed_list"):
        with dbs.begin_nested():
            dbs.execute(text("""INSERT INTO settlement_document (application_id, doc_type,
                filename, sha256, size, uploaded_by) VALUES (:a, 'rights_withdrawal', 'x', 'x',
                1, 'x')"""), {"a": a.id})
    with pytest.raises(DBAPIError, match="conditions_closed_list"):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE settlement_application SET conditions = "
                             "ARRAY['give_up_homestead'] WHERE id = :a"), {"a": a.id})
    ops.approve("hukou", a)
    right = rights.current_rights(hh.cbfbm)[0]
    member = dbs.execute(text("SELECT id FROM membership WHERE person_id = :p AND "
                              "status = 'active'"), {"p": head.id}).scalar()
    # Settled in town is never a ground (CHECK), and in the transaction that moved the hukou
    # no right, membership or household place changes at all (trigger).
    for sql, params, match in (
            ("UPDATE land_right SET status = 'ended', end_ground = 'settled_in_town', "
             "ended_on = current_date WHERE id = :i", {"i": right.id}, "land_right"),
            ("UPDATE membership SET status = 'ended', end_ground = 'settled_in_town', "
             "ended_on = current_date WHERE id = :i", {"i": member}, "membership"),
            ("UPDATE land_right SET status = 'ended', end_ground = 'court_judgment', "
             "ended_on = current_date, end_evidence = 'x' WHERE id = :i", {"i": right.id},
             "settlement.rights_guard"),
            ("UPDATE membership SET status = 'ended', end_ground = 'death', "
             "ended_on = current_date WHERE id = :i", {"i": member}, "settlement.rights_guard"),
            ("UPDATE household_member SET left_on = current_date WHERE person_id = :i",
             {"i": head.id}, "settlement.rights_guard"),
            ("INSERT INTO land_right_parcel (right_id, parcel_uid, parcel_code) "
             "SELECT :i, parcel_uid, parcel_code FROM land_right_parcel WHERE right_id = :i "
             "LIMIT 1", {"i": right.id}, "settlement.rights_guard"),
            # the app's role may not even try: hukou_move is INSERT-only for it
            ("UPDATE hukou_move SET to_address = 'x' WHERE application_id = :i", {"i": a.id},
             "permission denied")):
        with pytest.raises(DBAPIError, match=match):
            with dbs.begin_nested():
                dbs.execute(text(sql), params)
    # The operation refuses too, and records it.
    with pytest.raises(DomainError) as e:
        rights.end_right("hukou", right, "settled_in_town", dt.date.today())
    assert e.value.code == "right.end.forbidden_ground"
