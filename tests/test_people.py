import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.collectives.models import Collective
from app.errors import DomainError
from app.people import operations as ops
from app.people.models import Household, Person


def test_household_codes_follow_the_sequence_rules(dbs):
    c = dbs.scalars(select(Collective).order_by(Collective.fbfbm)).first()
    head = ops.register_person(None, "11010519491231002X", "测试户主", "140404")
    hh = ops.register_household(None, c, "测试户", head)
    assert hh.cbfbm.startswith(c.fbfbm) and int(hh.cbfbm[14:]) <= 8000
    ind = ops.register_household(None, c, "个人承包", cbflx="2")
    org = ops.register_household(None, c, "合作社", cbflx="3")
    assert ind.cbfbm.endswith("8001") and org.cbfbm.endswith("9001")
    assert [m.relation for m in hh.current_members] == ["02"]
    with pytest.raises(DomainError) as e:
        ops.register_household(None, c, "错码", cbfbm=c.fbfbm + "8500", cbflx="1")
    assert e.value.code == "household.cbfbm"


def test_database_refuses_a_code_outside_its_issuing_party(dbs):
    c1, c2 = dbs.scalars(select(Collective).order_by(Collective.fbfbm).limit(2)).all()
    with pytest.raises(DBAPIError, match="FBFBM"):
        with dbs.begin_nested():
            dbs.execute(text("INSERT INTO household (cbfbm, collective_id, cbflx, name) "
                             "VALUES (:code, :cid, '1', 'x')"),
                        {"code": c2.fbfbm + "0999", "cid": c1.id})
    with pytest.raises(DBAPIError, match="cbfbm_sequence"):
        with dbs.begin_nested():
            dbs.execute(text("INSERT INTO household (cbfbm, collective_id, cbflx, name) "
                             "VALUES (:code, :cid, '1', 'x')"),
                        {"code": c1.fbfbm + "9001", "cid": c1.id})


def test_member_relation_codes_are_checked(dbs):
    hh = dbs.scalars(select(Household)).first()
    p = ops.register_person(None, "11010519491231002X", "测试", "140404")
    with pytest.raises(DomainError) as e:
        ops.add_member(None, hh, p, "77")
    assert e.value.code == "household.member.relation"


def test_people_list_is_masked(login_as, dbs):
    c = login_as("bureau")
    page = c.get("/people").get_data(as_text=True)
    shown = dbs.scalars(select(Person).order_by(Person.id).limit(50)).all()
    assert any(p.id_masked in page for p in shown)
    assert not any(p.id_number in page for p in shown)
    assert not any(p.phone and p.phone in page for p in shown)
