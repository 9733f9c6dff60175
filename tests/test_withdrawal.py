"""The voluntary, paid withdrawal pilot: only the holder starts it, every adult co-holder agrees,
compensation paid first, revocable while cooling off, six months' notice for contract land,
flagged after a settlement, only in pilot counties — in the operations and the database."""
import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditLog
from app.certificates import operations as certificates
from app.errors import DomainError
from app.parcels.models import Parcel
from app.rights.models import Right
from app.withdrawal import operations as ops
from tests.conftest import user
from tests.test_rights import _contract, _household_with_land

TODAY = dt.date.today()


@pytest.fixture()
def holder(dbs):
    """The demo farmer's household with a certified land-contract right, in a pilot county."""
    hh, fields, _ = _household_with_land(dbs)
    assert user("farmer").household_code == hh.cbfbm
    right = _contract(dbs, hh, fields, end=dt.date(2058, 12, 31))
    certificates.issue("bureau", right)
    ops.enable_pilot("bureau", hh.cbfbm[:6])
    return hh, right


def settled_in_town(dbs, person, days_ago: int) -> None:
    """`person` settled in town `days_ago` days ago: the application and the hukou move as an
    earlier transaction left them."""
    app_id = dbs.execute(text("""
        INSERT INTO settlement_application (applicant_id, town_id, basis,
            property_certificate_no, living_there, residence_address, destination,
            destination_address, status, created_by, decided_by, decided_at)
        SELECT :p, min(id), 'owned_house', 'X', true, 'addr', 'house_address', 'addr',
               'submitted', 'hukou', NULL, NULL FROM settlement_town RETURNING id"""),
        {"p": person.id}).scalar()
    dbs.execute(text("""INSERT INTO hukou_move (person_id, application_id, to_division_code,
        to_address, moved_on, moved_by, txid) VALUES (:p, :a, '140403', 'addr', :d, 'hukou',
        0)"""), {"p": person.id, "a": app_id, "d": TODAY - dt.timedelta(days=days_ago)})


def _all_consents(w, hh):
    for p in ops.missing_consents(w, TODAY):
        ops.consent("bureau", w, p, f"{p.name} 签字同意书".encode())


def test_the_whole_procedure_ends_the_right_and_returns_the_land(dbs, holder):
    hh, right = holder
    farmer = user("farmer")
    w = ops.start(farmer, right, "own_account")
    assert w.status == "consent" and not w.flagged  # the other adult co-holders must agree
    assert w.cooling_until == TODAY + dt.timedelta(days=30) and w.notice_given_on == TODAY
    with pytest.raises(DomainError) as e:
        ops.take_effect("bureau", w, TODAY + dt.timedelta(days=200))
    assert e.value.code == "withdrawal.consent"
    _all_consents(w, hh)
    assert w.status == "cooling"
    with pytest.raises(DomainError) as e:
        ops.take_effect("bureau", w, TODAY + dt.timedelta(days=200))
    assert e.value.code == "withdrawal.compensation"
    ops.agree_compensation("bureau", w, Decimal("86000.00"))
    with pytest.raises(DomainError) as e:  # agreed but not paid
        ops.take_effect("bureau", w, TODAY + dt.timedelta(days=200))
    assert e.value.code == "withdrawal.unpaid"
    ops.record_payment("bureau", w, "农商行转账 20261126-001")
    with pytest.raises(DomainError) as e:  # contract land: six months' written notice
        ops.take_effect("bureau", w, TODAY + dt.timedelta(days=60))
    assert e.value.code == "withdrawal.notice"
    ops.take_effect("bureau", w, TODAY + dt.timedelta(days=200))
    assert w.status == "effective"
    r = dbs.scalar(select(Right).where(Right.uid == right.uid, Right.end_lifespan.is_(None)))
    assert r.status == "ended" and r.end_ground == "voluntary_withdrawal"
    assert certificates.valid_for(right.uid) is None  # its certificate cancelled
    codes = [rp.parcel_code for rp in r.parcels]
    back = dbs.scalars(select(Parcel).where(Parcel.code.in_(codes),
                                            Parcel.end_lifespan.is_(None))).all()
    assert back and all(p.household_code is None for p in back)  # back to the collective


def test_only_the_holder_starts_it(dbs, holder):
    hh, right = holder
    with pytest.raises(DomainError) as e:
        ops.start(user("hukou"), right, "own_account")
    assert e.value.code == "withdrawal.not_holder"
    with pytest.raises(DomainError) as e:  # staff on their own initiative
        ops.start(user("bureau"), right, "own_account")
    assert e.value.code == "withdrawal.not_holder"
    with pytest.raises(DomainError) as e:  # in person without the signed statement
        ops.start(user("bureau"), right, "in_person")
    assert e.value.code == "withdrawal.statement"
    with pytest.raises(DomainError) as e:  # never from a settlement case
        ops.start(user("farmer"), right, "own_account", settlement_id=1)
    assert e.value.code == "withdrawal.from_settlement"
    assert len(dbs.scalars(select(AuditLog).where(AuditLog.action == "withdrawal.refused"))
               .all()) == 4  # every refusal, the missing statement too
    w = ops.start(user("bureau"), right, "in_person", statement=b"%PDF signed statement",
                  statement_name="退出申请书.pdf", witness=user("officer"))
    assert w.started_via == "in_person" and w.statement_sha256
    assert w.statement_file == b"%PDF signed statement" and w.witnessed_by == "officer"
    # The database refuses a withdrawal recorded as started by a hukou officer.
    with pytest.raises(DBAPIError, match="withdrawal.not_holder"):
        with dbs.begin_nested():
            dbs.execute(text("""INSERT INTO withdrawal (right_uid, right_kind, household_code,
                county_code, started_by, started_via, started_on, land_to, cooling_until)
                VALUES (:u, 'homestead', :h, :c, 'hukou', 'own_account', current_date,
                'collective', current_date)"""), {"u": right.uid + 999, "h": hh.cbfbm,
                                                  "c": hh.cbfbm[:6]})


def test_revocable_while_cooling_off(dbs, holder):
    hh, right = holder
    w = ops.start(user("farmer"), right, "own_account")
    _all_consents(w, hh)
    ops.revoke(user("farmer"), w, TODAY + dt.timedelta(days=10))
    assert w.status == "revoked"
    with pytest.raises(DomainError):
        ops.take_effect("bureau", w, TODAY + dt.timedelta(days=200))
    w2 = ops.start(user("farmer"), right, "own_account")  # a new one can start again
    with pytest.raises(DomainError) as e:
        ops.revoke(user("farmer"), w2, w2.cooling_until + dt.timedelta(days=1))
    assert e.value.code == "withdrawal.cooling_over"
    with pytest.raises(DomainError) as e:
        ops.start(user("farmer"), right, "own_account")  # one open withdrawal per right
    assert e.value.code == "withdrawal.open"


def test_flagged_after_a_settlement_needs_another_officer(dbs, holder):
    hh, right = holder
    head = hh.head
    # The household head settled in town 40 days ago (history from an earlier transaction).
    settled_in_town(dbs, head, days_ago=40)
    w = ops.start(user("farmer"), right, "own_account")
    assert w.flagged and "40 days" in w.flag_reason
    _all_consents(w, hh)
    assert w.status == "check"
    ops.agree_compensation("bureau", w, Decimal("50000"))
    ops.record_payment("bureau", w, "ref-1")
    with pytest.raises(DomainError) as e:
        ops.take_effect("bureau", w, TODAY + dt.timedelta(days=200))
    assert e.value.code == "withdrawal.voluntariness" and "40" in e.value.message("en")
    for who in ("hukou", "farmer"):  # the settling officer, or the holder, cannot check it
        with pytest.raises(DomainError) as e:
            ops.check(user(who), w, "谈话记录")
        assert e.value.code == "withdrawal.checker"
    with pytest.raises(DBAPIError, match="withdrawal.voluntariness"):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE withdrawal SET status = 'cooling' WHERE id = :i"),
                        {"i": w.id})
    dbs.expire(w)
    with pytest.raises(DomainError) as e:  # bureau recorded the consents and the payment
        ops.check(user("bureau"), w, "谈话记录")
    assert e.value.code == "withdrawal.checker"
    ops.check(user("officer"), w, "单独谈话：本人确系自愿，未受落户影响，已告知可撤回")
    assert w.status == "cooling"
    ops.take_effect("bureau", w, TODAY + dt.timedelta(days=200))
    assert w.status == "effective"


def test_only_in_pilot_counties_and_only_when_effective(dbs, holder):
    hh, right = holder
    ops.enable_pilot("bureau", hh.cbfbm[:6], on=False)
    with pytest.raises(DomainError) as e:
        ops.start(user("farmer"), right, "own_account")
    assert e.value.code == "withdrawal.pilot_off"
    with pytest.raises(DBAPIError, match="withdrawal.pilot_off"):
        with dbs.begin_nested():
            dbs.execute(text("""INSERT INTO withdrawal (right_uid, right_kind, household_code,
                county_code, started_by, started_via, started_on, land_to, cooling_until)
                VALUES (:u, 'land_contract', :h, :c, 'farmer', 'own_account', current_date,
                'collective', current_date)"""), {"u": right.uid, "h": hh.cbfbm,
                                                  "c": hh.cbfbm[:6]})
    # A right ends on "voluntary withdrawal" only when one has taken effect.
    from app.rights import operations as rights

    with pytest.raises(DomainError) as e:
        rights.end_right("bureau", right, "voluntary_withdrawal", TODAY, evidence="x",
                         record=12345)
    assert e.value.code == "right.end.evidence"
    with pytest.raises(DBAPIError, match="withdrawal_not_effective"):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE land_right SET status = 'ended', end_ground = "
                             "'voluntary_withdrawal', ended_on = current_date WHERE id = :i"),
                        {"i": right.id})


def test_contract_land_can_pass_to_a_household_of_the_same_collective(dbs, holder):
    hh, right = holder
    from app.people.models import Household
    from app.rights import operations as rights

    other = dbs.scalar(select(Household).where(Household.cbfbm.like(hh.cbfbm[:14] + "%"),
                                               Household.cbfbm != hh.cbfbm)
                       .order_by(Household.id))
    before = rights.current_rights(other.cbfbm)
    with pytest.raises(DomainError) as e:  # only within the same collective
        ops.start(user("farmer"), right, "own_account", land_to="within",
                  transferee="140405" + hh.cbfbm[6:])
    assert e.value.code == "withdrawal.within"
    w = ops.start(user("farmer"), right, "own_account", land_to="within",
                  transferee=other.cbfbm)
    _all_consents(w, hh)
    ops.agree_compensation("bureau", w, Decimal("40000"))
    ops.record_payment("bureau", w, "转账 2")
    ops.take_effect("bureau", w, TODAY + dt.timedelta(days=200))
    codes = {rp.parcel_code for rp in right.parcels}
    after = [r for r in rights.current_rights(other.cbfbm) if r.kind == "land_contract"]
    assert len(after) == 1 and codes <= {rp.parcel_code for rp in after[0].parcels}
    assert not before and after[0].obtained_by == "200"  # 转让 (NY/T 2539 CBJYQQDFS)
    moved = dbs.scalars(select(Parcel).where(Parcel.code.in_(codes),
                                             Parcel.end_lifespan.is_(None))).all()
    assert {p.household_code for p in moved} == {other.cbfbm}


def test_a_homestead_can_pass_to_a_household_without_one(dbs, holder):
    hh, _ = holder
    from app.people.models import Household
    from app.rights import operations as rights

    home = dbs.scalar(select(Parcel).where(Parcel.household_code == hh.cbfbm,
                                           Parcel.kind == "homestead"))
    right = rights.register_homestead("bureau", hh.cbfbm, home, reason="确权")
    others = dbs.scalars(select(Household).where(Household.cbfbm.like(hh.cbfbm[:14] + "%"),
                                                 Household.cbfbm != hh.cbfbm)
                         .order_by(Household.id)).all()
    with_home = next(o for o in others if dbs.scalar(select(Parcel.id).where(
        Parcel.household_code == o.cbfbm, Parcel.kind == "homestead")))
    other_home = dbs.scalar(select(Parcel).where(Parcel.household_code == with_home.cbfbm,
                                                 Parcel.kind == "homestead"))
    rights.register_homestead("bureau", with_home.cbfbm, other_home, reason="确权")
    with pytest.raises(DomainError) as e:  # one household, one homestead
        ops.start(user("farmer"), right, "own_account", land_to="within",
                  transferee=with_home.cbfbm)
    assert e.value.code == "right.homestead.second"
    without = next(o for o in others if not rights.current_rights(o.cbfbm))
    w = ops.start(user("farmer"), right, "own_account", land_to="within",
                  transferee=without.cbfbm)
    _all_consents(w, hh)
    ops.agree_compensation("bureau", w, Decimal("120000"))
    ops.record_payment("bureau", w, "转账 3")
    ops.take_effect("bureau", w, TODAY + dt.timedelta(days=31))  # no six months for homesteads
    new = [r for r in rights.current_rights(without.cbfbm) if r.kind == "homestead"]
    assert len(new) == 1 and new[0].parcels[0].parcel_code == home.code
