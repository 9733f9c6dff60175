"""Income distribution (收益分配): exact to the fen, every share alike — a member who settled in
town is on the roll and paid the same per share; an exclusion is refused by the operation and by
the database on the app's own connection (乡村振兴促进法 art 55)."""
import csv
import datetime as dt
import io
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from app.audit.models import AuditLog
from app.collectives import operations as coll_ops
from app.collectives.models import Collective
from app.errors import DomainError
from app.membership import operations as ops
from app.membership.models import Payout
from app.people.models import Person
from app.settlement import operations as settlement
from app.settlement.models import SettlementTown


# ------------------------------------------------------------------------------ pure rounding
@settings(max_examples=300, deadline=None)
@given(amount=st.integers(min_value=1, max_value=10 ** 13),
       shares=st.lists(st.integers(min_value=1, max_value=10 ** 6), min_size=1, max_size=60))
def test_largest_remainder_sums_exactly_and_nobody_is_a_fen_off(amount, shares):
    weights = [(i, s) for i, s in enumerate(shares)]
    out = ops.allocate(amount, weights)
    total = sum(shares)
    assert sum(out.values()) == amount
    for i, s in weights:
        assert abs(Fraction(out[i]) - Fraction(amount * s, total)) < 1
    # deterministic: the same roll in another order gives the same payouts
    assert ops.allocate(amount, list(reversed(weights))) == out


@settings(max_examples=100, deadline=None)
@given(amount=st.integers(min_value=1, max_value=10 ** 9),
       n=st.integers(min_value=2, max_value=40))
def test_equal_shares_differ_by_at_most_one_fen_and_ties_go_by_key(amount, n):
    out = ops.allocate(amount, [(k, 100) for k in range(n)])
    values = [out[k] for k in range(n)]
    assert max(values) - min(values) <= 1
    assert values == sorted(values, reverse=True)  # the extra fen go to the lowest keys


# ------------------------------------------------------------------------------ in the database
def _collective_with_members(dbs) -> Collective:
    from tests.test_membership_confirmation import _village

    return _village(dbs)


def _settle(dbs, person: Person) -> None:
    town = dbs.scalar(select(SettlementTown).where(SettlementTown.kind == "urban_district")
                      .order_by(SettlementTown.id))
    if town is None:
        settlement.ensure_towns()
        town = dbs.scalar(select(SettlementTown).order_by(SettlementTown.id))
    a = settlement.apply("hukou", person, town, [], basis="owned_house",
                         property_certificate_no="晋(2025)长治市不动产权第0099887号",
                         living_there=True, residence_address="潞州区英雄中路 8 号 3-2-501",
                         destination="house_address",
                         destination_address="潞州区英雄中路 8 号 3-2-501")
    settlement.approve("hukou", a, conditions=["present_originals"], note="材料齐全，准予落户")
    assert ops.settled_in_town(person.id)


@pytest.fixture()
def quantified(dbs):
    c = _collective_with_members(dbs)
    members = coll_ops.roll(c)
    settled = members[len(members) // 2].person
    _settle(dbs, settled)
    q = ops.quantify("officer", c, dt.date(2025, 6, 30), 123_456_789, reason="股份量化")
    return c, q, settled


def test_a_member_settled_in_town_is_on_the_roll_and_paid_the_same_per_share(dbs, quantified):
    c, q, settled = quantified
    assert coll_ops.active_membership(settled.id, c.id) is not None
    amount = 1_000_003 + q.id  # not a multiple of anything in the roll
    d = ops.distribute("officer", c, amount, dt.date(2025, 12, 20), reason="年度分红")
    ps = ops.payouts(d)
    assert sum(p.amount_fen for p in ps) == amount
    by_person = {p.person_id: p for p in ps}
    mine = by_person[settled.id]
    exact = Fraction(amount * mine.shares_centi, d.total_centi)
    assert abs(mine.amount_fen - exact) < 1
    # per share: the settled member's fen per share equals an unsettled member's with the same
    # shares to within the one fen the rounding may move
    same = [p for p in ps if p.person_id not in (None, settled.id)
            and p.shares_centi == mine.shares_centi]
    assert same and all(abs(p.amount_fen - mine.amount_fen) <= 1 for p in same)
    assert d.status == "paid"
    with dbs.begin_nested():  # the database agrees: every holder paid, exact, nobody a fen off
        dbs.execute(text("SELECT distribution_check_complete(d) FROM distribution d "
                         "WHERE id = :i"), {"i": d.id})


@pytest.mark.parametrize("rule,note", [
    ({"exclude": ["settled_in_town"]}, None),
    ({"reduce_by": {"hukou_outside": 0.5}}, None),
    ({"per": "person_resident"}, None),
    (None, "进城落户人员不参与本年度分红"),
    (None, "户口已迁出的成员减半分配"),
    (None, "only members resident in the village are paid"),
])
def test_a_rule_excluding_or_reducing_by_residence_is_refused_and_recorded(dbs, quantified,
                                                                          rule, note):
    c, _, _ = quantified
    with pytest.raises(DomainError) as e:
        ops.distribute("officer", c, 500_000, dt.date(2025, 12, 20), rule=rule, note=note,
                       reason="年度分红")
    assert e.value.code == "distribution.rule.art55"
    assert "乡村振兴促进法" in e.value.source("zh") and "art 55" in e.value.source("en")
    assert dbs.scalars(select(AuditLog).where(AuditLog.action == "distribution.refused",
                                              AuditLog.object_id == c.fbfbm)).first()


def assert_refused(dbs, sql, params=None, exc=DBAPIError):
    with pytest.raises(exc) as e:
        with dbs.begin_nested():
            dbs.execute(text(sql), params or {})
    return str(e.value)


def test_an_exclusion_via_sql_on_the_apps_connection_is_refused(dbs, quantified):
    c, q, settled = quantified
    base = ("INSERT INTO distribution (collective_id, quantification_id, amount_fen, paid_on, "
            "rule, rule_note, total_centi, created_by) VALUES (:c, :q, 100000, '2025-12-20', "
            "CAST(:rule AS jsonb), :note, :t, 'sql') RETURNING id")
    p = {"c": c.id, "q": q.id, "t": q.total_centi}
    assert "art 55" in assert_refused(dbs, base, {**p, "rule": '{"exclude": ["settled"]}',
                                            "note": None})
    assert "art 55" in assert_refused(dbs, base, {**p, "rule": "{}", "note": "进城落户的不分"})
    # a run that leaves the settled member out cannot be marked paid
    with dbs.begin_nested():
        d_id = dbs.execute(text(base), {**p, "rule": "{}", "note": None}).scalar()
        roll = ops.distribution_roll(q)
        rest = [r for r in roll if r[0] != settled.id]
        weights = [((0, pid), s) for pid, _, s in rest]
        amounts = ops.allocate(100000, weights)
        for pid, hh, s in rest:
            dbs.execute(text("INSERT INTO distribution_payout (distribution_id, person_id, "
                             "household_id, shares_centi, amount_fen) VALUES (:d,:p,:h,:s,:a)"),
                        {"d": d_id, "p": pid, "h": hh, "s": s, "a": amounts[(0, pid)]})
    msg = assert_refused(dbs, "UPDATE distribution SET status = 'paid' WHERE id = :d", {"d": d_id})
    assert "art 55" in msg
    # and the paid ledger is append-only for the app role
    d = ops.distribute("officer", c, 777_777, dt.date(2025, 12, 21), reason="年度分红")
    assert "permission denied" in assert_refused(
        dbs, "UPDATE distribution_payout SET amount_fen = 0 WHERE distribution_id = :d "
             "AND person_id = :p", {"d": d.id, "p": settled.id}, ProgrammingError)
    assert "permission denied" in assert_refused(
        dbs, "DELETE FROM distribution_payout WHERE person_id = :p", {"p": settled.id},
        ProgrammingError)
    assert "paid" in assert_refused(dbs, "INSERT INTO distribution_payout (distribution_id, "
                                   "person_id, shares_centi, amount_fen) VALUES (:d,:p,100,5)",
                              {"d": d.id, "p": settled.id})


def test_payout_list_masks_and_the_bank_file_is_unmasked_and_logged(dbs, quantified):
    c, q, settled = quantified
    ops.set_bank_account("officer", settled, "长治农商银行", "6228480012345678901", reason="开户")
    d = ops.distribute("officer", c, 654_321, dt.date(2025, 12, 20), reason="年度分红")
    listing = ops.payout_csv(d).decode("utf-8-sig")
    assert settled.id_number not in listing and "6228480012345678901" not in listing
    assert "6228" in listing
    rows = list(csv.reader(io.StringIO(ops.bank_batch_csv("officer", d, reason="报银行")
                                       .decode("utf-8-sig"))))
    assert rows[0] == ["account", "name", "amount"]
    assert ["6228480012345678901", settled.name,
            ops.fen(dbs.scalar(select(Payout.amount_fen).where(
                Payout.distribution_id == d.id, Payout.person_id == settled.id)))] in rows
    assert dbs.scalars(select(AuditLog).where(
        AuditLog.action == "distribution.bank_file.download",
        AuditLog.object_id == str(d.id))).one()


def test_amount_must_be_whole_fen(dbs, quantified):
    c, _, _ = quantified
    for bad in (0, -5, 12.5, True, 2 ** 60):
        with pytest.raises(DomainError) as e:
            ops.distribute("officer", c, bad, dt.date(2025, 12, 20))
        assert e.value.code == "distribution.amount"
