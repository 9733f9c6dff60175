"""app.withdrawal.operations called directly, for what tests/test_withdrawal.py (the procedure
end to end) leaves open: the rule catalogue (every refusal cited in Chinese, with its law, and a
status the API can answer with), the steps' boundaries (the cooling-off period's last day, the
18th birthday, the compensation above zero) and every refusal being recorded.  Issue 16 point 6:
the module the mutants of app/withdrawal/operations.py run against first (scripts/mutation.sh)."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from app.audit.models import AuditLog
from app.errors import DomainError, Rule
from app.grounds import DISGUISED
from app.parcels.models import Parcel, RegistrySetting
from app.people.models import Household
from app.settings import operations as settings
from app.withdrawal import operations as ops
from app.withdrawal.models import Withdrawal
from tests.conftest import user
from tests.test_withdrawal import (
    _all_consents,
    holder,  # noqa: F401  (the fixture)
    settled_in_town,
)

TODAY = dt.date.today()
CJK = re.compile(r"[\u4e00-\u9fff]")
RULES = {name: r for name, r in vars(ops).items() if isinstance(r, Rule)}


def test_the_catalogue_is_complete(dbs):
    assert len(RULES) >= 20  # every step's refusals, not an empty module
    codes = [r.code for r in RULES.values()]
    assert len(set(codes)) == len(codes), "two rules share a code"


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_is_cited_in_chinese_with_its_law(dbs, name):
    rule = RULES[name]
    assert rule.code.startswith("withdrawal.") and rule.code == rule.code.strip()
    assert rule.status in (403, 409, 422)
    params = {k: "X" for k in re.findall(r"%\((\w+)\)s", str(rule.message))}
    err = DomainError(rule, **params)
    with force_locale("zh"):
        zh, zh_src = err.message(), err.source()
    assert zh != err.message("en") and CJK.search(zh.replace("X", "")), (name, zh)
    assert zh_src != err.source("en") and CJK.search(zh_src), (name, zh_src)


def test_the_hukou_officer_is_named_in_chinese(dbs, holder):  # noqa: F811
    _, right = holder
    with pytest.raises(DomainError) as e:
        ops.start(user("hukou"), right, "own_account")
    with force_locale("zh"):
        assert CJK.search(str(e.value.params["who"]))


def _refusals(dbs, obj_type=None):
    q = select(AuditLog).where(AuditLog.action == "withdrawal.refused").order_by(AuditLog.seq)
    return [a for a in dbs.scalars(q) if obj_type is None or a.object_type == obj_type]


def test_a_refused_start_is_recorded_against_the_right(dbs, holder):  # noqa: F811
    _, right = holder
    with pytest.raises(DomainError) as e:
        ops.start(user("farmer"), right, "by_post")
    assert e.value.code == "withdrawal.not_holder" and e.value.params["who"] == "by_post"
    [entry] = _refusals(dbs)
    assert (entry.object_type, entry.object_id) == ("land_right", str(right.uid))
    assert entry.changes == {"via": "by_post", "rule": "withdrawal.not_holder"}


def test_a_refused_step_is_recorded_against_the_withdrawal_and_the_right(dbs, holder):  # noqa: F811
    _, right = holder
    w = ops.start(user("farmer"), right, "own_account")
    with pytest.raises(DomainError) as e:
        ops.agree_compensation("bureau", w, Decimal("0"))
    assert e.value.code == "withdrawal.compensation"
    kinds = [(a.object_type, a.object_id, a.changes.get("step")) for a in _refusals(dbs)]
    assert kinds == [("withdrawal", str(w.id), "compensation")]  # once, and raised


def test_user_and_role_of_an_actor(dbs):
    farmer = user("farmer")
    assert ops._user(None) is None and ops._user(farmer) is farmer
    assert ops._user("farmer") is farmer and ops._user("nobody-such") is None
    assert ops._role("farmer") == farmer.role and ops._role(None) is None


def test_the_pilot_switch(dbs):
    county = "990101"
    assert not ops.pilot_enabled(county)
    ops.enable_pilot("bureau", county)
    assert ops.pilot_enabled(county)
    ops.enable_pilot("bureau", county, on=False)
    assert not ops.pilot_enabled(county)
    ons = [a.changes["on"] for a in dbs.scalars(select(AuditLog).where(
        AuditLog.action == "withdrawal.pilot", AuditLog.object_id == county)
        .order_by(AuditLog.seq))]
    assert ons == [True, False]


def test_adult_means_from_the_18th_birthday(dbs, holder):  # noqa: F811
    hh, _ = holder
    members = [m for m in hh.current_members if m.is_coholder]
    births = sorted({m.person.birth_date for m in members})
    for b in births:
        eighteen = dt.date(b.year + 18, b.month, 28 if (b.month, b.day) == (2, 29) else b.day)
        before = {p.id for p in ops.adult_coholders(hh.cbfbm, eighteen - dt.timedelta(days=1))}
        on = {p.id for p in ops.adult_coholders(hh.cbfbm, eighteen)}
        born_then = {m.person.id for m in members if m.person.birth_date == b}
        assert born_then <= on and not (born_then & before)
    assert ops.adult_coholders("no-such-household", TODAY) == []


def test_the_cooling_off_period_includes_its_last_day(dbs, holder):  # noqa: F811
    _, right = holder
    w = ops.start(user("farmer"), right, "own_account")
    assert w.cooling_until == TODAY + dt.timedelta(days=ops._setting("withdrawal_cooling_days",
                                                                    30))
    ops.revoke(user("farmer"), w, w.cooling_until)  # the last day: still revocable
    assert (w.status, w.revoked_on, w.revoked_by) == ("revoked", w.cooling_until, "farmer")
    with pytest.raises(DomainError) as e:
        ops.revoke(user("farmer"), w, w.cooling_until)
    assert e.value.code == "withdrawal.state" and e.value.params == {"status": "revoked"}


def test_someone_elses_withdrawal_is_not_theirs_to_revoke(dbs, holder):  # noqa: F811
    _, right = holder
    w = ops.start(user("farmer"), right, "own_account")
    with pytest.raises(DomainError) as e:
        ops.revoke(user("hukou"), w, TODAY)
    assert e.value.code == "withdrawal.not_holder"
    assert ops._is_holder(user("farmer"), w) and ops._is_holder(user("bureau"), w)
    assert not ops._is_holder(user("hukou"), w)


def test_compensation_above_zero_by_staff_only(dbs, holder):  # noqa: F811
    _, right = holder
    w = ops.start(user("farmer"), right, "own_account")
    for amount in (None, Decimal("0"), Decimal("-1")):
        with pytest.raises(DomainError) as e:
            ops.agree_compensation("bureau", w, amount)
        assert e.value.code == "withdrawal.compensation"
    with pytest.raises(DomainError) as e:
        ops.agree_compensation(user("farmer"), w, Decimal("1"))
    assert e.value.code == "withdrawal.recorder"
    with pytest.raises(DomainError) as e:
        ops.record_payment("bureau", w, "ref")  # nothing agreed yet
    assert e.value.code == "withdrawal.compensation"
    ops.agree_compensation("bureau", w, Decimal("0.01"), today=TODAY)
    assert (w.compensation, w.compensation_agreed_on, w.compensation_by) == (
        Decimal("0.01"), TODAY, "bureau")
    with pytest.raises(DomainError) as e:
        ops.record_payment(user("farmer"), w, "ref")
    assert e.value.code == "withdrawal.recorder"
    ops.record_payment("officer", w, "ref-9", paid_on=TODAY)
    assert (w.paid_on, w.paid_reference, w.paid_by) == (TODAY, "ref-9", "officer")


def test_an_unflagged_withdrawal_needs_no_check(dbs, holder):  # noqa: F811
    _, right = holder
    w = ops.start(user("farmer"), right, "own_account")
    assert not w.flagged
    with pytest.raises(DomainError) as e:
        ops.check(user("officer"), w, "谈话记录")
    assert e.value.code == "withdrawal.not_flagged"


def test_lists_of_withdrawals(dbs, holder):  # noqa: F811
    hh, right = holder
    w1 = ops.start(user("farmer"), right, "own_account")
    ops.revoke(user("farmer"), w1, TODAY)
    w2 = ops.start(user("farmer"), right, "own_account")
    assert [w.id for w in ops.of_household(hh.cbfbm)][:2] == [w2.id, w1.id]
    assert [w.id for w in ops.withdrawals(hh.cbfbm)] == [w2.id, w1.id]
    assert [w.id for w in ops.withdrawals(hh.cbfbm, limit=1)] == [w2.id]
    assert [w.id for w in ops.withdrawals()][:2] == [w2.id, w1.id]
    assert ops.withdrawals("no-such%") == []
    scope = ops.withdrawal_scope(w2.id)
    assert scope is not None and ops.withdrawal_scope(-1) is None
    assert ops.effective_withdrawal_id(w2.id, right.uid, TODAY) is None  # not effective
    assert dbs.get(Withdrawal, w2.id).household_code == hh.cbfbm


@pytest.mark.parametrize("witness", [None, "bureau", "farmer", "nobody-such"])
def test_in_person_needs_another_active_staff_officer_as_witness(dbs, holder, witness):  # noqa: F811
    _, right = holder
    with pytest.raises(DomainError) as e:
        ops.start(user("bureau"), right, "in_person", statement=b"%PDF signed",
                  witness=user(witness) if witness in ("bureau", "farmer") else witness)
    assert e.value.code == "withdrawal.witness" and e.value.params == {"who": "bureau"}
    [entry] = _refusals(dbs)
    assert entry.changes["witness"] == witness and entry.changes["via"] == "in_person"
    w = ops.start(user("bureau"), right, "in_person", statement=b"%PDF signed",
                  witness="officer")  # a username will do
    assert w.witnessed_by == "officer" and w.statement_filename is None


def test_a_co_holder_agrees_only_for_themselves(dbs, holder):  # noqa: F811
    hh, right = holder
    farmer = user("farmer")
    w = ops.start(farmer, right, "own_account")
    others = [p for p in ops.missing_consents(w, TODAY) if p.id != farmer.person_id]
    assert others, "the fixture's household has another adult co-holder"
    with pytest.raises(DomainError) as e:  # the farmer for somebody else
        ops.consent(farmer, w, others[0], today=TODAY)
    assert e.value.code == "withdrawal.consent_self"
    assert e.value.params == {"name": others[0].name}
    with pytest.raises(DomainError) as e:  # staff without the signed agreement
        ops.consent("officer", w, others[0], today=TODAY)
    assert e.value.code == "withdrawal.consent_self"
    c = ops.consent("officer", w, others[0], b"%PDF agreement", TODAY, "同意书.pdf")
    assert (c.via, c.document_filename, c.recorded_by) == ("in_person", "同意书.pdf", "officer")


@pytest.mark.parametrize("change", [{"kind": "management"}, {"status": "ended"},
                                    {"end_lifespan": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}])
def test_only_a_current_contract_or_homestead_right_is_withdrawn(dbs, holder, change):  # noqa: F811
    """The right as the caller holds it (a copy, never written): another kind, an ended right
    or a past version of one is refused before anything is recorded but the refusal."""
    from app.rights.models import Right

    _, right = holder
    copy = Right(**{c: getattr(right, c) for c in ("uid", "kind", "status", "fbfbm",
                                                  "holder_household_code", "end_lifespan")})
    for k, v in change.items():
        setattr(copy, k, v)
    with pytest.raises(DomainError) as e:
        ops.start(user("farmer"), copy, "own_account")
    assert e.value.code == "withdrawal.right"
    assert ops.of_household(right.holder_household_code) == []


def test_only_an_adult_co_holder_consents(dbs, holder):  # noqa: F811
    from app.people.models import Person

    hh, right = holder
    w = ops.start(user("farmer"), right, "own_account")
    inside = {p.id for p in ops.adult_coholders(hh.cbfbm, TODAY)}
    stranger = dbs.scalar(select(Person).where(Person.id.not_in(inside)).limit(1))
    with pytest.raises(DomainError) as e:
        ops.consent("officer", w, stranger, b"%PDF agreement", TODAY)
    assert e.value.code == "withdrawal.consent_person"
    assert e.value.params == {"name": stranger.name, "household": hh.cbfbm}


def test_no_effect_while_the_holder_may_still_revoke(dbs, holder):  # noqa: F811
    _, right = holder
    w = ops.start(user("farmer"), right, "own_account")
    for p in ops.missing_consents(w, TODAY):
        ops.consent("bureau", w, p, f"{p.name} 签字同意书".encode(), TODAY)
    ops.agree_compensation("bureau", w, Decimal("1000"))
    ops.record_payment("bureau", w, "ref-c")
    with pytest.raises(DomainError) as e:
        ops.take_effect("bureau", w, w.cooling_until - dt.timedelta(days=1))
    assert e.value.code == "withdrawal.cooling" and e.value.params == {"until": w.cooling_until}


def _settled_days_ago(dbs, hh, days: int, officer: str) -> None:
    """The household head settled in town `days` ago, moved by `officer` (an earlier, decided
    case: history, as tests/test_withdrawal.py writes it), so a withdrawal now is flagged."""
    from sqlalchemy import text

    app_id = dbs.execute(text("""
        INSERT INTO settlement_application (applicant_id, town_id, basis,
            property_certificate_no, living_there, residence_address, destination,
            destination_address, status, created_by)
        SELECT :p, min(id), 'owned_house', 'X', true, 'addr', 'house_address', 'addr',
               'submitted', :o FROM settlement_town RETURNING id"""),
        {"p": hh.head.id, "o": officer}).scalar()
    dbs.execute(text("""INSERT INTO hukou_move (person_id, application_id, to_division_code,
        to_address, moved_on, moved_by, txid) VALUES (:p, :a, '140403', 'addr', :d, :o, 0)"""),
        {"p": hh.head.id, "a": app_id, "d": TODAY - dt.timedelta(days=days), "o": officer})


def test_the_voluntariness_check_is_made_by_staff_only(dbs, holder):  # noqa: F811
    """Someone who took no part in the case but is no bureau or collective officer (the hukou
    officer when another officer settled the holder, the exchange, auditor, supervisor...)."""
    from app.auth.models import User

    hh, right = holder
    _settled_days_ago(dbs, hh, 40, "bureau")
    w = ops.start(user("farmer"), right, "own_account")
    assert w.flagged
    others = ops.participants(w)
    outsiders = [u for u in dbs.scalars(select(User).where(User.role.not_in(ops.STAFF_ROLES))
                                        .order_by(User.username))
                 if u.username not in others]
    assert {u.role for u in outsiders} >= {"hukou_officer", "auditor"}, outsiders
    for u in outsiders:
        with pytest.raises(DomainError) as e:
            ops.check(u, w, "谈话记录")
        assert e.value.code == "withdrawal.checker_role", u.username
    assert w.checked_by is None
    refused = [(a.actor_name, a.changes) for a in _refusals(dbs, "withdrawal")]
    assert refused == [(u.username, {"step": "check", "rule": "withdrawal.checker_role"})
                       for u in outsiders]
    ops.check(user("officer"), w, "单独谈话：本人自愿")  # a staff officer outside the case may
    assert w.checked_by == "officer"


def test_the_checker_takes_no_other_part(dbs, holder):  # noqa: F811
    """After the check its officer records no consent, compensation or payment; anyone else on
    the staff still may."""
    hh, right = holder
    _settled_days_ago(dbs, hh, 40, "hukou")
    w = ops.start(user("farmer"), right, "own_account")
    ops.check(user("officer"), w, "单独谈话：本人自愿")
    missing = ops.missing_consents(w, TODAY)
    assert missing and w.status == "consent"
    steps = [("consent", lambda who: ops.consent(who, w, missing[0], b"%PDF agreement", TODAY)),
             ("compensation", lambda who: ops.agree_compensation(who, w, Decimal("500"))),
             ("payment", lambda who: ops.record_payment(who, w, "ref-x"))]
    for step, do in steps:
        with pytest.raises(DomainError) as e:
            do("officer")
        assert e.value.code == "withdrawal.checker_elsewhere", step
        assert e.value.params == {"who": "officer"}
        assert _refusals(dbs, "withdrawal")[-1].changes == {
            "step": step, "rule": "withdrawal.checker_elsewhere"}
        do("bureau")  # another officer records the step
    assert {c.recorded_by for c in w.consents if c.person_id == missing[0].id} == {"bureau"}
    assert (w.compensation, w.compensation_by, w.paid_reference, w.paid_by) == (
        Decimal("500"), "bureau", "ref-x", "bureau")


# ---------------------------------------------------------------- what mutation testing found
# (docs/mutation.md, 2026-11-30: survivors on lines 104-503 of app/withdrawal/operations.py)


def test_a_farmer_of_another_household_is_not_the_holder(dbs, holder):  # noqa: F811
    hh, right = holder
    farmer = user("farmer")
    other = dbs.scalar(select(Household.cbfbm).where(Household.cbfbm != hh.cbfbm,
                                                     Household.cbfbm.like(hh.cbfbm[:14] + "%")))
    farmer.household_code = other  # the same village, another household's account
    dbs.flush()
    with pytest.raises(DomainError) as e:
        ops.start(farmer, right)  # own_account is the default way
    assert e.value.code == "withdrawal.not_holder"
    farmer.household_code = hh.cbfbm
    dbs.flush()
    w = ops.start(farmer, right)  # the holder's own account, by default
    assert w.started_via == "own_account" and w.started_by == "farmer"


@pytest.mark.parametrize("step", ["consent", "check", "cooling"])
def test_one_open_withdrawal_per_right_at_every_open_step(dbs, holder, step):  # noqa: F811
    hh, right = holder
    if step == "check":
        settled_in_town(dbs, hh.head, days_ago=40)
    w = ops.start(user("farmer"), right, "own_account")
    if step != "consent":
        _all_consents(w, hh)
    assert w.status == step
    with pytest.raises(DomainError) as e:
        ops.start(user("farmer"), right, "own_account")
    assert e.value.code == "withdrawal.open" and e.value.params["id"] == w.id


def test_contract_land_may_pass_to_a_household_that_has_a_homestead(dbs, holder):  # noqa: F811
    """一户一宅 is about homesteads: contract land passing within the collective does not ask
    whether the receiving household has one."""
    from app.rights import operations as rights

    hh, right = holder
    others = dbs.scalars(select(Household).where(Household.cbfbm.like(hh.cbfbm[:14] + "%"),
                                                 Household.cbfbm != hh.cbfbm)
                         .order_by(Household.id)).all()
    with_home = next(o for o in others if dbs.scalar(select(Parcel.id).where(
        Parcel.household_code == o.cbfbm, Parcel.kind == "homestead")))
    home = dbs.scalar(select(Parcel).where(Parcel.household_code == with_home.cbfbm,
                                           Parcel.kind == "homestead"))
    rights.register_homestead("bureau", with_home.cbfbm, home, reason="确权")
    w = ops.start(user("farmer"), right, "own_account", land_to="within",
                  transferee=with_home.cbfbm)
    assert w.transferee_household_code == with_home.cbfbm


def test_the_county_settings_set_the_cooling_off_and_the_check_window(dbs, holder):  # noqa: F811
    hh, right = holder
    settings.change(user("admin"), "withdrawal_cooling_days", "45", "试点方案第七条")
    settings.change(user("admin"), "withdrawal_check_window_days", "30", "试点方案第八条")
    settled_in_town(dbs, hh.head, days_ago=40)  # outside a 30-day window (the default: 180)
    w = ops.start(user("farmer"), right, "own_account")
    assert w.cooling_until == TODAY + dt.timedelta(days=45)
    assert not w.flagged
    dbs.refresh(w)
    assert not w.flagged  # the database's flag reads the same setting


def test_a_withdrawal_belongs_to_its_village_group_and_household(dbs, holder):  # noqa: F811
    hh, right = holder
    w = ops.start(user("farmer"), right, "own_account")
    scope = ops.withdrawal_scope(w.id)
    assert scope.division_codes == [hh.cbfbm[:14]] and scope.household_codes == {hh.cbfbm}
    assert ops.withdrawal_scope(w.id + 10**6) is None


def test_switching_the_pilot_on_and_off_is_recorded(dbs, holder):  # noqa: F811
    hh, _ = holder
    county = hh.cbfbm[:6]
    ops.enable_pilot(user("bureau"), county, on=False)
    assert not ops.pilot_enabled(county)
    ops.enable_pilot(user("bureau"), county)
    assert ops.pilot_enabled(county)
    entries = dbs.scalars(select(AuditLog).where(AuditLog.action == "withdrawal.pilot",
                                                 AuditLog.object_id == county)
                          .order_by(AuditLog.seq)).all()
    assert [(a.object_type, a.changes) for a in entries[-2:]] == \
        [("county", {"on": False}), ("county", {"on": True})]


def test_a_new_county_starts_with_the_pilot_off_until_switched_on(dbs):
    county = "149999"
    assert not ops.pilot_enabled(county)
    ops.enable_pilot("bureau", county, on=False)
    assert not ops.pilot_enabled(county)
    assert dbs.get(RegistrySetting, f"withdrawal_pilot:{county}").value == "off"


def test_a_withdrawal_traded_for_the_hukou_is_refused_and_recorded_against_the_right(
        dbs, holder):  # noqa: F811
    _, right = holder
    with pytest.raises(DomainError) as e:
        ops.start(user("bureau"), right, "in_person", statement=b"%PDF",
                  statement_name="以地换户协议.pdf", witness=user("officer"))
    assert e.value.code == DISGUISED.code
    [entry] = _refusals(dbs)
    assert (entry.object_type, entry.object_id) == ("land_right", str(right.uid))
    assert entry.changes["field"] == "statement_name" and entry.changes["policy"] == "withdrawal"
    assert not dbs.scalar(select(Withdrawal.id).where(Withdrawal.right_uid == right.uid))


@pytest.mark.parametrize("starter,witness", [("bureau", "admin"), ("admin", "officer")])
def test_every_staff_role_may_start_in_person_or_witness(
        dbs, holder, starter, witness):  # noqa: F811
    _, right = holder
    w = ops.start(user(starter), right, "in_person", statement=b"%PDF signed",
                  statement_name="退出申请书.pdf", witness=user(witness))
    assert (w.started_by, w.witnessed_by) == (starter, witness)


def test_the_holder_signing_in_agrees_for_themselves_only(dbs, holder):  # noqa: F811
    hh, right = holder
    farmer = user("farmer")
    w = ops.start(farmer, right, "own_account")
    adults = {p.id for p in ops.adult_coholders(hh.cbfbm, TODAY)}
    assert [c.person_id for c in w.consents] == [farmer.person_id]
    assert w.consents[0].via == "own_account" and w.consents[0].recorded_by == "farmer"
    assert {p.id for p in ops.missing_consents(w, TODAY)} == adults - {farmer.person_id}
    # in person, the signed statement is no one's consent: every co-holder agrees separately
    ops.revoke(farmer, w, TODAY)
    w2 = ops.start(user("bureau"), right, "in_person", statement=b"%PDF signed",
                   statement_name="退出申请书.pdf", witness=user("officer"))
    assert w2.consents == [] and {p.id for p in ops.missing_consents(w2, TODAY)} == adults


def test_the_start_is_recorded_with_how_and_by_whose_hand(dbs, holder):  # noqa: F811
    _, right = holder
    w = ops.start(user("bureau"), right, "in_person", statement=b"%PDF signed",
                  statement_name="退出申请书.pdf", witness=user("officer"))
    entry = dbs.scalar(select(AuditLog).where(AuditLog.action == "withdrawal.start",
                                              AuditLog.object_id == str(w.id)))
    assert entry.object_type == "withdrawal" and entry.actor_name == "bureau"
    assert entry.changes == {"right": right.uid, "via": "in_person", "land_to": "collective",
                             "flagged": False, "witness": "officer",
                             "statement_sha256": w.statement_sha256}


def test_a_co_holder_consents_for_themselves_only(dbs, holder):  # noqa: F811
    """Signed in to their own account (no file: the account is the signature), or in person
    with their signed agreement recorded by an officer; never one for another; never on a
    closed case; every refusal recorded against the withdrawal."""
    hh, right = holder
    farmer = user("farmer")
    w = ops.start(user("bureau"), right, "in_person", statement=b"%PDF signed",
                  statement_name="退出申请书.pdf", witness=user("officer"))
    me = next(p for p in ops.missing_consents(w, TODAY) if p.id == farmer.person_id)
    other = next((p for p in ops.missing_consents(w, TODAY) if p.id != farmer.person_id), None)
    if other is not None:
        with pytest.raises(DomainError) as e:  # a farmer for another co-holder
            ops.consent(farmer, w, other)
        assert e.value.code == "withdrawal.consent_self"
        with pytest.raises(DomainError) as e:  # staff without the signed agreement
            ops.consent(user("bureau"), w, other)
        assert e.value.code == "withdrawal.consent_self"
    with pytest.raises(DomainError) as e:
        ops.consent(user("bureau"), w, me, b"%PDF", document_name="以地换户同意书.pdf")
    assert e.value.code == DISGUISED.code
    refused = [(a.object_type, a.object_id) for a in _refusals(dbs)]
    assert refused and set(refused) == {("withdrawal", str(w.id))}
    c = ops.consent(farmer, w, me)
    assert (c.via, c.person_id, c.document, c.recorded_by) == \
        ("own_account", me.id, None, "farmer")
    assert c.document_sha256 == hashlib.sha256(f"own account farmer {TODAY}".encode()) \
        .hexdigest()
    entry = dbs.scalar(select(AuditLog).where(AuditLog.action == "withdrawal.consent",
                                              AuditLog.object_id == str(w.id)))
    assert entry.changes == {"person": me.id, "via": "own_account"}
    ops.revoke(farmer, w, TODAY)
    with pytest.raises(DomainError) as e:  # a closed case takes no consent
        ops.consent(user("bureau"), w, other or me, b"%PDF signed")
    assert e.value.code == "withdrawal.state"
