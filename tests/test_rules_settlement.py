"""app.settlement.operations called directly, branch by branch: the rule catalogue (every refusal
cited in Chinese with its law), the rights guard on every way into a settlement case (extra
fields, field names, free text, document types, conditions, refusal reasons: refused with art 27 /
art 55 and recorded), who may move with the applicant, the residence basis and its permit, the
jurisdiction of co-movers, and what apply / approve / reject record.  Issue 16 point 6: the
module the mutants of app/settlement/operations.py run against first (scripts/mutation.sh);
tests/test_settlement.py keeps the end-to-end cases (nothing but the hukou changes)."""
from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from flask_babel import force_locale
from flask_babel.speaklater import LazyString
from sqlalchemy import select, text

from app.audit.models import AuditLog
from app.dates import add_months
from app.divisions.models import Division
from app.errors import DomainError, Rule
from app.people.models import Household, Person
from app.settlement import operations as ops
from app.settlement.models import (
    CONDITIONS,
    DOCUMENT_TYPES,
    REFUSAL_REASONS,
    HukouMove,
    SettlementApplication,
    SettlementMember,
    SettlementTown,
)
from tests.conftest import user
from tests.test_settlement import family, town

TODAY = dt.date.today()
CJK = re.compile(r"[\u4e00-\u9fff]")
RULES = {name: r for name, r in vars(ops).items() if isinstance(r, Rule)}
DISGUISED = "迁户口要先把地还给集体"  # read by the detector only (no word of the name list)


def _entries(dbs, action, obj_id=None):
    q = select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.seq)
    if obj_id is not None:  # the demo county's story has its own cases
        q = q.where(AuditLog.object_id == str(obj_id))
    return list(dbs.scalars(q))


def _en(lazy) -> str:
    with force_locale("en"):
        return str(lazy)


def _zh(err: DomainError) -> str:
    with force_locale("zh"):
        return err.message()


@pytest.fixture()
def case(dbs):
    """The first household's head, those who may move with them, a town, an owned house."""
    hh = dbs.scalars(select(Household).order_by(Household.id)).first()
    head, moving = family(hh)
    assert moving
    house = "潞州区英雄中路 8 号 3-2-501"
    fields = {"basis": "owned_house", "property_certificate_no": "晋(2025)不动产权第0012345号",
              "living_there": True, "residence_address": house, "destination": "house_address",
              "destination_address": house}
    return head, moving, town(dbs), fields


def _permit(head, t, number="RP-1", valid_until=None):
    return ops.record_permit("hukou", head, number, t, "潞州区太行东街 1 号",
                             TODAY - dt.timedelta(days=400), TODAY - dt.timedelta(days=200),
                             valid_until)


def _rental(permit, **over):
    return {"basis": "rental", "rental_registration_no": "长房租备 2025-0815",
            "residence_permit_id": permit.id, "residence_address": "潞州区太行东街 1 号",
            "destination": "community_collective", "police_station": "太行东街派出所",
            "destination_address": "太行东街派出所 社区集体户", **over}


def _refused(code, call, *args, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as e:
        call(*args, **kwargs)
    assert e.value.code == code, (e.value.code, e.value.message("en"))
    with force_locale("zh"):  # the rule and every reason it gives, in Chinese
        for k, v in e.value.params.items():
            if isinstance(v, LazyString):
                assert CJK.search(str(v)), (code, k, _en(v))
    return e.value


# --- the catalogue ---------------------------------------------------------------------------

def test_the_catalogue_is_complete(dbs):
    assert len(RULES) >= 13
    codes = [r.code for r in RULES.values()]
    assert len(set(codes)) == len(codes), "two rules share a code"


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_is_cited_in_chinese_with_its_law(dbs, name):
    rule = RULES[name]
    assert rule.code.startswith("settlement.") and rule.code == rule.code.strip()
    assert rule.status == {"NOT_OPEN": 409, "MEMBER_OUT_OF_SCOPE": 403}.get(name, 422)
    params = {k: "X" for k in re.findall(r"%\((\w+)\)s", str(rule.message))}
    err = DomainError(rule, **params)
    zh, zh_src = _zh(err), err.source("zh")
    assert zh != err.message("en") and CJK.search(zh.replace("X", "")), (name, zh)
    assert zh_src != err.source("en") and CJK.search(zh_src), (name, zh_src)


def test_the_rights_rule_cites_art_27_and_55(dbs):
    src_en, src_zh = (DomainError(ops.RIGHTS_CONDITION, what="x").source(lc)
                      for lc in ("en", "zh"))
    assert "art 27" in src_en and "art 55" in src_en
    assert "第二十七条" in src_zh and "第五十五条" in src_zh


# --- the name list and the detector ----------------------------------------------------------

@pytest.mark.parametrize("name", [
    "give_up", "give-up-land", "surrender", "relinquish", "waive", "waiver", "withdraw",
    "hand_back", "return_the_land", "return_land", "退出", "放弃", "交回", "退回", "退还", "收回",
    "自愿有偿", "承包地", "承包经营权", "宅基地", "收益分配", "分配权", "成员资格",
    "contract_right", "land_contract", "homestead", "membership", "distribution",
    "income_right", "INCOME RIGHT", "Homestead"])
def test_every_word_of_the_name_list_is_a_rights_name(name):
    assert ops._RIGHTS_WORDS.search(name), name  # a field or code name, before any detector
    assert ops.rights_related(name)


def test_rights_related_reads_names_and_disguised_text(dbs):
    for nothing in (None, "", 0, False):
        assert ops.rights_related(nothing) is False
    for plain in ("favourite_colour", "id_card", "present_originals", "潞州区英雄中路 8 号"):
        assert ops.rights_related(plain) is False, plain
    assert not ops._RIGHTS_WORDS.search(DISGUISED) and ops.rights_related(DISGUISED) is True
    assert ops.rights_related(12345) is False and ops.rights_related(["homestead"]) is True


# --- extra fields ----------------------------------------------------------------------------

def test_an_extra_field_about_a_right_is_refused_and_recorded(dbs):
    long = "放弃" + "宅" * 300
    for key, value in (("give_up_contract_right", "1"), ("承诺", long),
                       ("note2", DISGUISED)):
        err = _refused("settlement.rights_condition", ops.guard_extra, "hukou", {key: value}, 77)
        assert err.params == {"what": f"'{key}'"} and err.rule is ops.RIGHTS_CONDITION
    entries = _entries(dbs, "settlement.refused.rights_field")
    assert [(e.object_type, e.object_id, e.actor_name) for e in entries] == \
        [("settlement_application", "77", "hukou")] * 3
    assert [e.changes for e in entries] == [
        {"field": "give_up_contract_right", "value": "1", "rule": "settlement.rights_condition"},
        {"field": "承诺", "value": long[:200], "rule": "settlement.rights_condition"},
        {"field": "note2", "value": DISGUISED, "rule": "settlement.rights_condition"}]


def test_any_other_extra_field_is_unknown_and_nothing_extra_passes(dbs):
    err = _refused("settlement.field", ops.guard_extra, "hukou", {"favourite_colour": "red"})
    assert err.params == {"field": "favourite_colour"} and CJK.search(_zh(err))
    ops.guard_extra("hukou", None)
    ops.guard_extra("hukou", {})
    assert _entries(dbs, "settlement.refused.rights_field") == []


def test_guard_fields_lets_known_and_patterned_keys_through(dbs):
    known = ("basis", "csrf_token")
    pattern = re.compile(r"member_\d+$")
    ops.guard_fields("hukou", {"basis": "rental", "member_3": "x"}, known, 5, pattern)
    ops.guard_fields("hukou", {"basis": "rental"}, known)
    err = _refused("settlement.field", ops.guard_fields, "hukou",
                   {"basis": "rental", "member_3": "x"}, known)  # no pattern: member_3 unknown
    assert err.params == {"field": "member_3"}
    err = _refused("settlement.field", ops.guard_fields, "hukou",
                   {"basis": "rental", "member_x": "x"}, known, 5, pattern)
    assert err.params == {"field": "member_x"}
    _refused("settlement.rights_condition", ops.guard_fields, "hukou",
             {"basis": "rental", "homestead_1": "y"}, known, 5, pattern)
    [entry] = _entries(dbs, "settlement.refused.rights_field")
    assert entry.object_id == "5" and entry.changes["field"] == "homestead_1"


# --- towns, lists ----------------------------------------------------------------------------

def test_the_default_towns_are_made_once(dbs):
    expected = {}
    for code, kind, suffix in ops.DEFAULT_TOWNS:
        d = dbs.get(Division, code)
        if d is not None:
            expected[d.name + suffix] = (code, kind)
    assert expected, "the seeded city has its districts"
    assert ops.ensure_towns() == 0  # already made by the build
    dbs.execute(text("UPDATE settlement_town SET name = name || '（旧）'"))
    assert ops.ensure_towns() == len(expected)
    made = {t.name: (t.division_code, t.kind) for t in dbs.scalars(
        select(SettlementTown).where(SettlementTown.name.in_(expected)))}
    assert made == expected
    assert ops.ensure_towns() == 0
    assert {c for c, _, s in ops.DEFAULT_TOWNS if s} == {
        c for c, k, _ in ops.DEFAULT_TOWNS if k == "county_seat"}


def test_towns_lists_the_active_ones_by_kind_and_name(dbs):
    listed = ops.towns()
    assert listed and all(t.active for t in listed)
    assert [(t.kind, t.name) for t in listed] == sorted((t.kind, t.name) for t in listed)
    first = listed[0]
    first.active = False
    dbs.flush()
    assert first not in ops.towns() and len(ops.towns()) == len(listed) - 1


def test_lists_of_applications(dbs, case):
    head, moving, t, f = case
    a1 = ops.apply("hukou", head, t, [], **f)
    a2 = ops.apply("hukou", head, t, moving, **f)
    prefix = head.hukou_division_code
    assert [a.id for a in ops.applications()][:2] == [a2.id, a1.id]
    assert [a.id for a in ops.applications(prefix + "%")][:2] == [a2.id, a1.id]
    assert [a.id for a in ops.applications(prefix + "%", limit=1)] == [a2.id]
    assert ops.applications("no-such%") == []
    assert [a.id for a in ops.applications_of_person(head.id)][:2] == [a2.id, a1.id]
    mover = moving[0]["person_id"]
    assert a2.id in [a.id for a in ops.applications_of_person(mover)]
    assert a1.id not in [a.id for a in ops.applications_of_person(mover)]
    assert ops.applications_of_person(None) == []


# --- residence permits -----------------------------------------------------------------------

def test_a_permit_comes_after_six_months_residence(dbs, case):
    head, _, t, _ = case
    since = TODAY - dt.timedelta(days=400)
    six = add_months(since, 6)
    err = _refused("settlement.permit", ops.record_permit, "hukou", head, "RP-early", t, "x",
                   since, six - dt.timedelta(days=1))
    assert err.params["number"] == "RP-early" and CJK.search(_zh(err).replace("RP-early", ""))
    assert "six months" in err.message("en")
    p = ops.record_permit("hukou", head, "RP-six", t, "太行东街 1 号", since, six,
                          TODAY + dt.timedelta(days=30))  # on the day six months are up
    assert (p.person_id, p.number, p.town_id, p.address, p.resident_since, p.issued_on,
            p.valid_until, p.recorded_by) == (head.id, "RP-six", t.id, "太行东街 1 号", since,
                                              six, TODAY + dt.timedelta(days=30), "hukou")
    assert ops.permit_by_number("RP-six") is p
    assert ops.permit_by_number("RP-none") is None and ops.permit_by_number(None) is None
    assert ops.permit_by_number("") is None
    [entry] = _entries(dbs, "settlement.permit", head.id)
    assert (entry.object_type, entry.object_id) == ("person", str(head.id))
    assert entry.changes == {"permit": "RP-six", "town": t.name, "since": since.isoformat(),
                             "issued": six.isoformat()}


def test_a_permit_text_about_a_right_is_refused(dbs, case):
    head, _, t, _ = case
    err = _refused("settlement.rights_condition", ops.record_permit, "hukou", head, "RP-2", t,
                   DISGUISED, TODAY - dt.timedelta(days=400), TODAY)
    assert err.rule is ops.RIGHTS_CONDITION
    [entry] = _entries(dbs, "settlement.refused.rights_field")
    assert entry.object_type == "settlement_application" and entry.changes["field"] == "address"
    assert entry.changes["policy"] == "settlement"


# --- who moves -------------------------------------------------------------------------------

def _born(dbs, head, cmp):
    return dbs.scalar(select(Person).where(cmp(Person.birth_date, head.birth_date))
                      .order_by(Person.id).limit(1))


def test_who_may_move_each_branch(dbs, case):
    head, moving, t, f = case
    younger = _born(dbs, head, lambda a, b: a > b)
    older = _born(dbs, head, lambda a, b: a < b)
    refused = [
        ({"person_id": younger.id, "relation": "sibling"}, younger, "not spouse"),
        ({"person_id": younger.id}, younger, "not spouse"),
        ({"person_id": younger.id, "relation": "child"}, younger, "married child"),
        ({"person_id": younger.id, "relation": "child", "unmarried": False}, younger,
         "married child"),
        ({"person_id": younger.id, "relation": "spouse", "lives_with_applicant": False},
         younger, "live with"),
        ({"person_id": younger.id, "relation": "child", "unmarried": True,
          "lives_with_applicant": False}, younger, "live with"),
        ({"person_id": older.id, "relation": "child", "unmarried": True}, older, "younger"),
        # the applicant named again (any of their rows): one human, one place on the case
        ({"person_id": head.id, "relation": "child", "unmarried": True}, head, "same ID number"),
        ({"person_id": younger.id, "relation": "parent"}, younger, "older"),
        ({"person_id": head.id, "relation": "parent"}, head, "same ID number"),
    ]
    for member, person, why in refused:
        err = _refused("settlement.relation", ops.apply, "hukou", head, t, [member], **f)
        assert err.params["name"] == person.name and why in _en(err.params["why"]), member
        assert CJK.search(_zh(err).replace(person.name, "")[:40]), member
        with force_locale("zh"):
            assert CJK.search(str(err.params["why"])), member  # the reason translated too
    ok = [{"person_id": younger.id, "relation": "child", "unmarried": True},
          {"person_id": older.id, "relation": "parent", "lives_with_applicant": True},
          {"person_id": older.id, "relation": "spouse"}]
    for member in ok:
        a = ops.apply("hukou", head, t, [member], **f)
        assert {m.person_id for m in a.members} == {head.id, member["person_id"]}


def test_co_movers_from_outside_the_officers_jurisdiction_are_refused(dbs, case):
    head, _, t, f = case
    officer = user("officer")
    outside = dbs.scalar(select(Person).where(
        ~Person.hukou_division_code.startswith(officer.jurisdiction_code),
        Person.birth_date > head.birth_date).order_by(Person.id).limit(1))
    inside = dbs.scalar(select(Person).where(
        Person.hukou_division_code.startswith(officer.jurisdiction_code),
        Person.birth_date > head.birth_date, Person.id != head.id).order_by(Person.id).limit(1))
    assert outside is not None and inside is not None
    mover = {"person_id": outside.id, "relation": "child", "unmarried": True}
    err = _refused("settlement.member_out_of_scope", ops.apply, officer, head, t, [mover], **f)
    assert err.params == {"name": outside.name, "where": outside.hukou_division_code}
    assert err.rule.status == 403
    [entry] = _entries(dbs, "scope.widening.refused")
    assert (entry.actor_name, entry.object_type, entry.object_id) == (
        "officer", "person", str(outside.id))
    assert entry.changes == {"where": outside.hukou_division_code,
                             "rule": "settlement.member_out_of_scope"}
    a = ops.apply(officer, head, t, [{**mover, "person_id": inside.id}], **f)
    assert a.created_by == "officer"
    for actor in (user("admin"), "hukou", None):  # an administrator, or the system: no scope
        a = ops.apply(actor, head, t, [mover], **f)
        assert outside.id in {m.person_id for m in a.members}


def test_a_co_mover_without_a_hukou_place_is_outside_every_jurisdiction(dbs, case):
    head, _, t, f = case
    younger = _born(dbs, head, lambda a, b: a > b)
    younger.hukou_division_code = None
    dbs.flush()
    err = _refused("settlement.member_out_of_scope", ops.apply, user("hukou"), head, t,
                   [{"person_id": younger.id, "relation": "spouse"}], **f)
    assert err.params["where"] == "—"


# --- the residence basis ---------------------------------------------------------------------

def test_an_owned_house_each_branch(dbs, case):
    head, _, t, f = case
    err = _refused("settlement.basis", ops.apply, "hukou", head, t, [],
                   **{**f, "basis": "bought"})
    assert err.params["basis"] == "bought" and "three" in _en(err.params["what"])
    for missing in ({"property_certificate_no": None}, {"property_certificate_no": ""}):
        err = _refused("settlement.basis", ops.apply, "hukou", head, t, [], **{**f, **missing})
        assert "property certificate" in _en(err.params["what"])
    err = _refused("settlement.basis", ops.apply, "hukou", head, t, [],
                   **{**f, "living_there": False})
    assert err.params["basis"] == "owned_house" and "living there" in _en(err.params["what"])
    for wrong in ({"destination": "community_collective"},
                  {"destination_address": f["residence_address"] + " 隔壁"}):
        err = _refused("settlement.destination", ops.apply, "hukou", head, t, [],
                       **{**f, **wrong})
        assert "house's own address" in _en(err.params["expected"])
    bought = {**f, "property_certificate_no": "", "purchase_contract_no": "长房备 2025-1"}
    a = ops.apply("hukou", head, t, [], **bought)  # a filed purchase contract will do
    assert a.property_certificate_no is None and a.purchase_contract_no == "长房备 2025-1"
    assert ops._check_basis(f, head, t, TODAY) is None  # no permit for an owned house


def test_a_rental_or_dormitory_each_branch(dbs, case):
    head, moving, t, _ = case
    permit = _permit(head, t)
    r = _rental(permit)
    assert ops._check_basis(r, head, t, TODAY) is permit
    err = _refused("settlement.basis", ops.apply, "hukou", head, t, [],
                   **{**r, "rental_registration_no": ""})
    assert err.params["basis"] == "rental" and "registration" in _en(err.params["what"])
    dorm = {**r, "basis": "dormitory", "rental_registration_no": None,
            "destination": "employer_collective", "employer_name": "某机械有限公司"}
    assert ops._check_basis(dorm, head, t, TODAY) is permit
    err = _refused("settlement.basis", ops.apply, "hukou", head, t, [],
                   **{**dorm, "employer_name": None})
    assert err.params["basis"] == "dormitory" and "employer" in _en(err.params["what"])
    for no_permit in (None, 0, -1):
        err = _refused("settlement.basis", ops.apply, "hukou", head, t, [],
                       **{**r, "residence_permit_id": no_permit})
        assert "residence permit" in _en(err.params["what"])
    other = dbs.get(Person, moving[0]["person_id"])
    theirs = _permit(other, t, "RP-other")
    err = _refused("settlement.permit", ops.apply, "hukou", head, t, [],
                   **{**r, "residence_permit_id": theirs.id})
    assert err.params["number"] == "RP-other" and "applicant" in _en(err.params["why"])
    t2 = town(dbs, "county_seat")
    assert t2.id != t.id
    err = _refused("settlement.permit", ops.apply, "hukou", head, t2, [], **r)
    assert err.params["number"] == "RP-1" and "another town" in _en(err.params["why"])


def test_a_permit_valid_through_today_but_not_after(dbs, case):
    head, _, t, _ = case
    permit = _permit(head, t, "RP-v", valid_until=TODAY)
    a = ops.apply("hukou", head, t, [], today=TODAY, **_rental(permit))
    assert a.residence_permit_id == permit.id
    err = _refused("settlement.permit", ops.apply, "hukou", head, t, [],
                   today=TODAY + dt.timedelta(days=1), **_rental(permit))
    assert "expired" in _en(err.params["why"])
    later = _permit(head, t, "RP-w", valid_until=TODAY + dt.timedelta(days=1))
    ops.apply("hukou", head, t, [], **_rental(later))  # today by default: still valid


def test_the_hukou_goes_to_a_collective_household(dbs, case):
    head, _, t, _ = case
    r = _rental(_permit(head, t))
    err = _refused("settlement.destination", ops.apply, "hukou", head, t, [],
                   **{**r, "police_station": ""})
    assert "police station" in _en(err.params["expected"])
    err = _refused("settlement.destination", ops.apply, "hukou", head, t, [],
                   **{**r, "destination": "employer_collective"})  # no employer named
    assert "employer" in _en(err.params["expected"])
    for dest in ("house_address", None):
        err = _refused("settlement.destination", ops.apply, "hukou", head, t, [],
                       **{**r, "destination": dest})
        assert _en(err.params["expected"]) == "a collective household"
    a = ops.apply("hukou", head, t, [], **{**r, "destination": "employer_collective",
                                           "employer_name": "某公司"})
    assert a.destination == "employer_collective"


# --- apply -----------------------------------------------------------------------------------

def test_apply_refuses_unknown_and_rights_fields(dbs, case):
    head, moving, t, f = case
    err = _refused("settlement.field", ops.apply, "hukou", head, t, moving,
                   favourite_colour="red", **f)
    assert err.params == {"field": "favourite_colour"}
    _refused("settlement.rights_condition", ops.apply, "hukou", head, t, moving,
             give_up_homestead="1", **f)
    _refused("settlement.rights_condition", ops.apply, "hukou", head, t, moving,
             extra={"备注": "退出承包地"}, **f)
    _refused("settlement.field", ops.apply, "hukou", head, t, moving, extra={"x": "y"}, **f)
    assert [e.changes["field"] for e in _entries(dbs, "settlement.refused.rights_field")] == \
        ["give_up_homestead", "备注"]


@pytest.mark.parametrize("field", ["residence_address", "destination_address", "police_station",
                                   "employer_name", "property_certificate_no"])
def test_apply_reads_every_text_field(dbs, case, field):
    head, moving, t, f = case
    err = _refused("settlement.rights_condition", ops.apply, "hukou", head, t, moving,
                   **{**f, field: DISGUISED})
    assert err.rule is ops.RIGHTS_CONDITION
    [entry] = _entries(dbs, "settlement.refused.rights_field")
    assert entry.changes["field"] == field and entry.changes["text"] == DISGUISED
    assert entry.object_type == "settlement_application" and entry.object_id is None
    assert dbs.scalar(select(SettlementApplication.id).where(
        SettlementApplication.applicant_id == head.id)) is None


def test_apply_needs_an_open_town(dbs, case):
    head, moving, t, f = case
    err = _refused("settlement.town", ops.apply, "hukou", head, None, moving, **f)
    assert err.params == {"town": "—"}
    t.active = False
    dbs.flush()
    err = _refused("settlement.town", ops.apply, "hukou", head, t, moving, **f)
    assert err.params == {"town": t.name}


def test_apply_records_the_case_and_who_moves(dbs, case):
    head, moving, t, f = case
    moving = [{**moving[0], "lives_with_applicant": True}, *moving[1:]]
    a = ops.apply("hukou", head, t, moving, **{**f, "police_station": "", "living_there": 1})
    assert (a.applicant_id, a.town_id, a.created_by, a.status) == (
        head.id, t.id, "hukou", "submitted")
    assert a.police_station is None and a.living_there is True
    assert (a.basis, a.destination_address) == (f["basis"], f["destination_address"])
    members = dbs.scalars(select(SettlementMember).where(
        SettlementMember.application_id == a.id).order_by(SettlementMember.id)).all()
    expected = [{"person_id": head.id, "relation": "self"}, *moving]
    assert [(m.person_id, m.relation, m.unmarried, m.lives_with_applicant) for m in members] == \
        [(x["person_id"], x["relation"], x.get("unmarried"), x.get("lives_with_applicant", True))
         for x in expected]
    for m in members:
        p = dbs.get(Person, m.person_id)
        assert (m.from_division_code, m.from_address) == (p.hukou_division_code,
                                                           p.hukou_address)
    [entry] = _entries(dbs, "settlement.apply", a.id)
    assert (entry.object_type, entry.object_id) == ("settlement_application", str(a.id))
    assert entry.changes == {"applicant": head.id, "town": t.name, "basis": f["basis"],
                             "members": [m["person_id"] for m in moving]}


# --- documents -------------------------------------------------------------------------------

def test_documents_each_branch(dbs, case):
    head, moving, t, f = case
    a = ops.apply("hukou", head, t, moving, **f)
    for doc_type in ("rights_withdrawal", "宅基地退出承诺"):
        err = _refused("settlement.rights_condition", ops.add_document, "hukou", a, doc_type,
                       "x.pdf", b"%PDF")
        assert err.params == {"what": f"'{doc_type}'"}
    err = _refused("settlement.rights_condition", ops.add_document, "hukou", a, "id_card",
                   DISGUISED + ".pdf", b"%PDF")
    entries = _entries(dbs, "settlement.refused.rights_document")
    assert [(e.object_type, e.object_id) for e in entries] == \
        [("settlement_application", str(a.id))] * 3
    assert [e.changes.get("doc_type") for e in entries[:2]] == ["rights_withdrawal",
                                                               "宅基地退出承诺"]
    assert entries[0].changes["filename"] == "x.pdf"
    assert entries[2].changes["field"] == "filename"
    err = _refused("settlement.document_type", ops.add_document, "hukou", a, "photo", "x.jpg",
                   b"x")
    assert err.params == {"doc_type": "photo"}
    data = b"%PDF-1.4 property"
    d = ops.add_document("hukou", a, DOCUMENT_TYPES[0], "证" * 250 + ".pdf", data)
    assert (d.application_id, d.doc_type, d.filename, d.sha256, d.size, d.uploaded_by) == (
        a.id, DOCUMENT_TYPES[0], ("证" * 250)[:200], hashlib.sha256(data).hexdigest(),
        len(data), "hukou")
    [entry] = _entries(dbs, "settlement.document", a.id)
    assert entry.object_type == "settlement_application" and entry.changes == {
        "doc_type": DOCUMENT_TYPES[0], "sha256": d.sha256}
    ops.reject("hukou", a, [REFUSAL_REASONS[0]])
    err = _refused("settlement.decided", ops.add_document, "hukou", a, "id_card", "x.pdf", b"x")
    assert err.params == {"status": "rejected"}


# --- approve ---------------------------------------------------------------------------------

def test_approve_each_branch_and_what_it_records(dbs, case):
    head, moving, t, f = case
    a = ops.apply("hukou", head, t, moving, **f)
    for cond in ("give_up_homestead", " 交回承包地后办理 "):
        err = _refused("settlement.rights_condition", ops.approve, "hukou", a,
                       conditions=[cond])
        assert err.params == {"what": f"'{cond.strip()}'"}
    err = _refused("settlement.condition", ops.approve, "hukou", a, conditions=["pay_fee"])
    assert err.params == {"condition": "pay_fee"}
    _refused("settlement.rights_condition", ops.approve, "hukou", a, note=DISGUISED)
    entries = _entries(dbs, "settlement.refused.rights_condition")
    assert [e.changes.get("condition") for e in entries] == [
        "give_up_homestead", "交回承包地后办理", None]
    assert entries[2].changes["field"] == "note"
    assert {(e.object_type, e.object_id) for e in entries} == {
        ("settlement_application", str(a.id))}
    assert a.status == "submitted"
    before = {m.person_id: (m.person.hukou_division_code, m.person.hukou_address)
              for m in a.members}
    day = TODAY - dt.timedelta(days=3)
    ops.approve(user("hukou"), a, conditions=["", " ", f" {CONDITIONS[0]} ", CONDITIONS[1]],
                note="准予落户", today=day)
    assert (a.status, a.decided_by, a.decision_note) == ("approved", "hukou", "准予落户")
    assert a.conditions == [CONDITIONS[0], CONDITIONS[1]] and a.decided_at is not None
    moves = dbs.scalars(select(HukouMove).where(HukouMove.application_id == a.id)).all()
    assert {m.person_id: (m.from_division_code, m.from_address) for m in moves} == before
    assert {(m.to_division_code, m.to_address, m.moved_on, m.moved_by) for m in moves} == {
        (t.division_code, f["destination_address"], day, "hukou")}
    for pid in before:
        p = dbs.get(Person, pid)
        assert (p.hukou_division_code, p.hukou_address) == (t.division_code,
                                                            f["destination_address"])
    [entry] = _entries(dbs, "settlement.approve", a.id)
    assert entry.object_type == "settlement_application"
    assert entry.reason == "准予落户" and entry.changes == {
        "persons": [m.person_id for m in a.members],
        "to": f["destination_address"], "conditions": [CONDITIONS[0], CONDITIONS[1]]}
    err = _refused("settlement.decided", ops.approve, "hukou", a)
    assert err.params == {"status": "approved"}


def test_approve_without_conditions_stores_none_and_moves_today(dbs, case):
    head, _, t, f = case
    a = ops.apply("hukou", head, t, [], **f)
    ops.approve("hukou", a, conditions=[" "])
    assert a.conditions is None and a.decision_note is None
    [move] = dbs.scalars(select(HukouMove).where(HukouMove.application_id == a.id)).all()
    assert move.moved_on == TODAY and move.moved_by == "hukou"


# --- reject ----------------------------------------------------------------------------------

def test_reject_each_branch_and_what_it_records(dbs, case):
    head, moving, t, f = case
    a = ops.apply("hukou", head, t, moving, **f)
    for reason in ("homestead_not_surrendered", " 未退出承包地 "):
        err = _refused("settlement.rights_condition", ops.reject, "hukou", a, [reason])
        assert err.params == {"what": f"'{reason.strip()}'"}
    _refused("settlement.rights_condition", ops.reject, "hukou", a, [REFUSAL_REASONS[0]],
             DISGUISED)
    _refused("settlement.rights_condition", ops.reject, "hukou", a, DISGUISED)  # as free text
    entries = _entries(dbs, "settlement.refused.rights_condition")
    assert [e.changes.get("reason") for e in entries] == [
        "homestead_not_surrendered", "未退出承包地", None, None]
    assert [e.changes.get("field") for e in entries[2:]] == ["note", "note"]
    assert {e.object_id for e in entries} == {str(a.id)}
    err = _refused("settlement.refusal_reason", ops.reject, "hukou", a, ["too_poor"])
    assert err.params == {"reason": "too_poor"}
    for nothing in ([], ["", "  "], None, "材料不全"):
        _refused("settlement.reason", ops.reject, "hukou", a, nothing)
    _refused("settlement.reason", ops.reject, "hukou", a, "材料不全", "另附说明")
    assert a.status == "submitted"
    ops.reject(user("hukou"), a, (f" {REFUSAL_REASONS[1]} ", REFUSAL_REASONS[2]), "  ")
    assert (a.status, a.decided_by, a.decision_note) == ("rejected", "hukou", None)
    assert a.refusal_reasons == [REFUSAL_REASONS[1], REFUSAL_REASONS[2]]
    assert a.decided_at is not None
    [entry] = _entries(dbs, "settlement.reject", a.id)
    assert entry.changes == {"reasons": [REFUSAL_REASONS[1], REFUSAL_REASONS[2]]}
    assert (entry.object_type, entry.reason) == ("settlement_application", None)
    err = _refused("settlement.decided", ops.reject, "hukou", a, [REFUSAL_REASONS[0]])
    assert err.params == {"status": "rejected"}
    assert dbs.scalars(select(HukouMove).where(HukouMove.application_id == a.id)).all() == []


def test_reject_keeps_its_note(dbs, case):
    head, _, t, f = case
    a = ops.apply("hukou", head, t, [], **f)
    ops.reject("hukou", a, [REFUSAL_REASONS[-1]], " 重复申请 ")
    assert a.decision_note == "重复申请"
    [entry] = _entries(dbs, "settlement.reject", a.id)
    assert entry.reason == "重复申请"
