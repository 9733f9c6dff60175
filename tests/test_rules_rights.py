"""app.rights.operations called directly, for the rule at the heart of the register: a right ends
only on a lawful ground with its proof (domain.md §9 rule 3; 农村土地承包法 art 27; 乡村振兴促进法
art 55).  Every forbidden and unknown ground, every ground's proof (a record that is really this
right's, in time), expiry's boundaries, the free text read by the rights guard's detector, the
records behind a judgment or an expropriation, and what an end records.  Issue 16 point 6: the
module the mutants of app/rights/operations.py run against first (scripts/mutation.sh)."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from decimal import Decimal

import pytest
from flask_babel import force_locale
from flask_babel.speaklater import LazyString
from sqlalchemy import select

from app import signals
from app.audit.models import AuditLog
from app.errors import DomainError, Rule
from app.rights import operations as ops
from app.rights.models import LAWFUL_END_GROUNDS, CourtJudgment, Expropriation, Right
from tests.test_rights import _contract, _household_with_land, _proof_for

TODAY = dt.date.today()
CJK = re.compile(r"[\u4e00-\u9fff]")
RULES = {name: r for name, r in vars(ops).items() if isinstance(r, Rule)}
ON = dt.date(2026, 1, 1)


def _refused(code, call, *args, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as e:
        call(*args, **kwargs)
    assert e.value.code == code, (e.value.code, e.value.message("en"))
    with force_locale("zh"):  # the rule and every reason it gives, in Chinese
        for k, v in e.value.params.items():
            if isinstance(v, LazyString):
                assert CJK.search(str(v)), (code, k)
    return e.value


def _en(lazy) -> str:
    with force_locale("en"):
        return str(lazy)


def _refusals(dbs, r):
    """The refusals recorded against right `r` (a land_right: its type named, not only its id)."""
    return list(dbs.scalars(select(AuditLog).where(
        AuditLog.action == "right.end.refused", AuditLog.object_type == "land_right",
        AuditLog.object_id == str(r.uid)).order_by(AuditLog.seq)))


@pytest.fixture()
def land(dbs):
    hh, fields, home = _household_with_land(dbs)
    return hh, fields, _contract(dbs, hh, fields, end=dt.date(2020, 12, 31))


# --- the catalogue ---------------------------------------------------------------------------

def test_the_catalogue_is_complete(dbs):
    assert len(RULES) >= 15
    codes = [r.code for r in RULES.values()]
    assert len(set(codes)) == len(codes)


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_is_cited_in_chinese_with_its_law(dbs, name):
    rule = RULES[name]
    assert rule.code.startswith("right.") and rule.code == rule.code.strip()
    assert rule.status in (404, 409, 422)
    params = {k: "X" for k in re.findall(r"%\((\w+)\)s", str(rule.message))}
    err = DomainError(rule, **params)
    with force_locale("zh"):
        zh = err.message()
    assert zh != err.message("en") and CJK.search(zh.replace("X", "")), (name, zh)
    assert err.source("zh") != err.source("en") and CJK.search(err.source("zh")), name


def test_every_ground_is_labelled_in_chinese(dbs):
    assert set(LAWFUL_END_GROUNDS) <= set(ops.GROUND_LABELS)
    assert not set(ops.FORBIDDEN_GROUNDS) & set(ops.GROUND_LABELS)
    assert {"settled_in_town", "hukou_moved", "married_out"} <= set(ops.FORBIDDEN_GROUNDS)
    with force_locale("zh"):
        for label in [*ops.GROUND_LABELS.values(), *ops.FORBIDDEN_GROUNDS.values()]:
            assert CJK.search(str(label)), _en(label)


# --- grounds ---------------------------------------------------------------------------------

@pytest.mark.parametrize("ground", sorted(ops.FORBIDDEN_GROUNDS))
def test_every_forbidden_ground_is_refused_with_art_27_55_and_recorded(dbs, land, ground):
    _, _, r = land
    err = _refused("right.end.forbidden_ground", ops.end_right, "bureau", r, f" {ground} ", ON,
                   reason="理由")
    assert err.params == {"ground": ops.FORBIDDEN_GROUNDS[ground]}
    assert "art 27" in err.source("en") and "art 55" in err.source("en")
    [entry] = _refusals(dbs, r)
    assert entry.changes == {"ground": ground, "rule": "right.end.forbidden_ground"}
    assert (entry.object_type, entry.reason, entry.actor_name) == ("land_right", "理由",
                                                                   "bureau")
    assert r.status == "current"


@pytest.mark.parametrize("ground", ["", None, "whatever", "Expiry", "transfer_terminated"])
def test_a_ground_not_on_the_list_is_unknown(dbs, land, ground):
    _, _, r = land
    err = _refused("right.end.unknown_ground", ops.end_right, "bureau", r, ground, ON)
    assert err.params == {"ground": (ground or "").strip()}
    [entry] = _refusals(dbs, r)
    assert entry.changes["rule"] == "right.end.unknown_ground"


def test_the_forbidden_ground_in_disguise_is_refused(dbs, land):
    """A lawful ground with settling in town written beside it, in the reason or the evidence."""
    _, _, r = land
    for kw in ({"reason": "户主已进城落户，合同到期收回"}, {"evidence": "进城落户后收回承包地"}):
        err = _refused("guard.text", ops.end_right, "bureau", r, "expiry", ON, **kw)
        assert err.params["field"] is not None
    assert [e.changes["field"] for e in _refusals(dbs, r)] == ["reason", "evidence"]
    assert {e.changes["policy"] for e in _refusals(dbs, r)} == {"right_end"}
    # a voluntary withdrawal may say the holder settled in town (the pilot is for them): what
    # stops this one is the missing withdrawal, not the words
    err = _refused("right.end.evidence", ops.end_right, "bureau", r, "voluntary_withdrawal", ON,
                   reason="已进城落户，自愿有偿退出")
    assert "withdrawal" in _en(err.params["what"])
    assert r.status == "current"


# --- which right -----------------------------------------------------------------------------

def test_only_the_current_version_of_a_current_right_ends(dbs, land):
    hh, fields, r = land
    old = r
    new = ops.extend_contract("bureau", r, 30, "延包")
    dbs.refresh(old)
    _refused("right.not_current", ops.end_right, "bureau", old, "expiry", ON)
    assert [e.changes for e in _refusals(dbs, old)] == [
        {"ground": "expiry", "ended_on": ON.isoformat(), "rule": "right.not_current"}]
    record = _proof_for(dbs, "court_judgment", hh, new, fields)
    ops.end_right("bureau", new, "court_judgment", ON, record=record)
    _refused("right.not_current", ops.end_right, "bureau", new, "court_judgment", ON,
             record=record)
    _refused("right.not_current", ops.extend_contract, "bureau", new)


# --- proofs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("ground", ["court_judgment", "expropriation", "mutation",
                                    "voluntary_withdrawal"])
def test_a_ground_with_a_record_needs_it(dbs, land, ground):
    _, _, r = land
    for record in (None, -1, 987654321):
        err = _refused("right.end.evidence", ops.end_right, "bureau", r, ground, ON,
                       record=record, evidence="有据")
        assert err.params["ground"] is ops.GROUND_LABELS[ground]
    assert len(_refusals(dbs, r)) == 3 and r.status == "current"


def test_the_record_must_be_this_rights(dbs, land):
    """The contract's judgment, expropriation and parcel mutation prove nothing about the same
    household's homestead."""
    hh, fields, r = land
    home = ops.register_homestead("bureau", hh.cbfbm, _household_with_land(dbs)[2],
                                  reason="确权")
    j = _proof_for(dbs, "court_judgment", hh, r, fields)
    x = ops.record_expropriation("bureau", r, "市政府", "征-1", ON, Decimal("1"), b"%PDF")
    m = _proof_for(dbs, "mutation", hh, r, fields)  # a mutation of the contract's parcel
    for ground, record in (("court_judgment", j), ("expropriation", x), ("mutation", m)):
        _refused("right.end.evidence", ops.end_right, "bureau", home, ground, ON, record=record)
    assert home.status == "current" and len(_refusals(dbs, home)) == 3
    assert ops._proof("mutation", r, m, ON) == m and ops._proof("mutation", home, m, ON) is None
    assert ops._proof("court_judgment", r, j, ON) == j.id
    assert ops._proof("court_judgment", r, j.id, ON) == j.id
    assert ops._proof("expropriation", r, x, ON) == x.id
    assert ops._proof("expiry", r, j, ON) is None and ops._proof("mutation", r, None, ON) is None


def test_a_judgment_must_come_first(dbs, land):
    hh, fields, r = land
    j = ops.record_court_judgment("bureau", r, "法院", "（2026）民初1号", ON, b"%PDF")
    _refused("right.end.evidence", ops.end_right, "bureau", r, "court_judgment",
             ON - dt.timedelta(days=1), record=j)
    ops.end_right("bureau", r, "court_judgment", ON, record=j)  # judged that very day
    assert (r.status, r.end_record_id, r.ended_on) == ("ended", j.id, ON)
    assert r.end_evidence == f"法院 （2026）民初1号 ({ON})"


def test_what_an_expropriation_records_and_ends(dbs, land):
    _, _, r = land
    x = ops.record_expropriation("bureau", r, " 市政府 ", " 长政征〔2025〕12号 ", ON,
                                 Decimal("1234.50"), b"%PDF d", reason="征收")
    assert (x.right_uid, x.authority, x.decision_number, x.decided_on, x.compensation,
            x.filename, x.sha256, x.recorded_by) == (
        r.uid, "市政府", "长政征〔2025〕12号", ON, Decimal("1234.50"), "decision.pdf",
        hashlib.sha256(b"%PDF d").hexdigest(), "bureau")
    [entry] = dbs.scalars(select(AuditLog).where(AuditLog.action == "right.expropriation",
                                                 AuditLog.object_id == str(r.uid))).all()
    assert entry.changes == {"expropriation": x.id, "decision": "长政征〔2025〕12号",
                             "compensation": "1234.50"} and entry.reason == "征收"
    ops.end_right("bureau", r, "expropriation", ON, evidence="补偿已到账", record=x)
    assert r.end_evidence == "补偿已到账; 长政征〔2025〕12号, compensation 1234.50"
    assert r.end_record_id == x.id


def test_an_expropriation_without_evidence_text(dbs, land):
    _, _, r = land
    x = ops.record_expropriation("bureau", r, "市政府", "征-2", ON, Decimal("5"), b"%PDF",
                                 "决定书.pdf")
    assert x.filename == "决定书.pdf"
    ops.end_right("bureau", r, "expropriation", ON, record=x.id)
    assert r.end_evidence == f"征-2, compensation {x.compensation}"


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-0.01")])
def test_an_expropriation_needs_compensation_above_zero(dbs, land, amount):
    _, _, r = land
    err = _refused("right.end.evidence", ops.record_expropriation, "bureau", r, "市政府",
                   "征-3", ON, amount, b"%PDF", reason="无补偿")
    assert err.params["ground"] is ops.GROUND_LABELS["expropriation"]
    assert "compensation" in _en(err.params["what"])
    [entry] = _refusals(dbs, r)
    assert entry.changes == {"compensation": str(amount), "rule": "right.end.evidence"}
    assert entry.reason == "无补偿"
    assert dbs.scalars(select(Expropriation).where(Expropriation.right_uid == r.uid)).all() == []


def test_a_record_behind_an_end_is_complete(dbs, land):
    _, _, r = land
    err = _refused("right.end.record", ops.record_court_judgment, "bureau", r, " ", None, ON,
                   None, reason="缺件")
    assert err.params["missing"] == "court, case_number, file"
    assert "court judgment" in _en(err.params["what"])
    err = _refused("right.end.record", ops.record_expropriation, "bureau", r, "市政府", "征",
                   None, None, b"%PDF")
    assert err.params["missing"] == "decided_on, compensation"
    assert _en(err.params["what"]) == "expropriation"
    err = _refused("right.end.record", ops.record_court_judgment, "bureau", r, "法院", "案",
                   ON, b"")
    assert err.params["missing"] == "file"
    entries = _refusals(dbs, r)
    assert [e.changes["missing"] for e in entries] == [
        ["court", "case_number", "file"], ["decided_on", "compensation"], ["file"]]
    assert entries[0].reason == "缺件"
    assert dbs.scalars(select(CourtJudgment).where(CourtJudgment.right_uid == r.uid)).all() == []


def test_what_a_judgment_records(dbs, land):
    _, _, r = land
    j = ops.record_court_judgment("bureau", r, " 上党区人民法院 ", " （2025）民初9号 ", ON,
                                  b"%PDF j", reason="判决")
    assert (j.right_uid, j.court, j.case_number, j.judged_on, j.filename, j.sha256,
            j.recorded_by) == (r.uid, "上党区人民法院", "（2025）民初9号", ON, "judgment.pdf",
                               hashlib.sha256(b"%PDF j").hexdigest(), "bureau")
    [entry] = dbs.scalars(select(AuditLog).where(AuditLog.action == "right.judgment",
                                                 AuditLog.object_id == str(r.uid))).all()
    assert entry.changes == {"judgment": j.id, "court": j.court, "case_number": j.case_number,
                             "judged_on": ON.isoformat(), "sha256": j.sha256}
    ops.end_right("bureau", r, "court_judgment", ON, evidence="判决生效", record=j)
    assert r.end_evidence == "判决生效"


# --- expiry ----------------------------------------------------------------------------------

def test_expiry_from_the_term_end_on(dbs):
    hh, fields, _ = _household_with_land(dbs)
    end = TODAY - dt.timedelta(days=5)
    r = _contract(dbs, hh, fields, end=end)
    err = _refused("right.end.not_expired", ops.end_right, "bureau", r, "expiry",
                   end - dt.timedelta(days=1))
    assert err.params == {"term_end": end}
    # ended on a later day, but that day has not come
    _refused("right.end.not_expired", ops.end_right, "bureau", r, "expiry", end,
             today=end - dt.timedelta(days=1))
    ops.end_right("bureau", r, "expiry", end, today=end)  # the term's last day, that day
    assert (r.status, r.end_ground, r.ended_on, r.end_record_id) == ("ended", "expiry", end,
                                                                     None)


def test_expiry_not_before_today_by_default(dbs):
    hh, fields, _ = _household_with_land(dbs)
    end = TODAY + dt.timedelta(days=3)
    r = _contract(dbs, hh, fields, end=end)
    # ended_on after the term, but today (the default) is still inside it
    err = _refused("right.end.not_expired", ops.end_right, "bureau", r, "expiry",
                   end + dt.timedelta(days=1))
    assert err.params == {"term_end": end}
    assert (r.status, r.end_ground, r.ended_on) == ("current", None, None)


def test_a_homestead_never_expires(dbs):
    hh, _, home = _household_with_land(dbs)
    h = ops.register_homestead("bureau", hh.cbfbm, home, reason="确权")
    err = _refused("right.end.not_expired", ops.end_right, "bureau", h, "expiry", ON)
    assert err.params == {"term_end": "—"}


def test_a_household_ends_only_on_its_own_ground(dbs, land):
    hh, fields, r = land
    err = _refused("right.end.evidence", ops.end_right, "bureau", r, "holder_extinct", ON)
    assert err.params["ground"] is ops.GROUND_LABELS["holder_extinct"]
    assert "household" in _en(err.params["what"])
    _proof_for(dbs, "holder_extinct", hh, r, fields)
    ops.end_right("bureau", r, "holder_extinct", ON)
    assert r.end_ground == "holder_extinct"


# --- what an end records ---------------------------------------------------------------------

def test_an_end_is_recorded_and_announced(dbs, land):
    _, _, r = land
    heard = []

    def hear(actor, right_uid, reason):
        heard.append((actor, right_uid, reason))

    signals.right_ended.connect(hear)
    try:
        ops.end_right("bureau", r, " expiry ", ON, evidence="期满未续", reason="到期")
    finally:
        signals.right_ended.disconnect(hear)
    assert (r.status, r.end_ground, r.ended_on, r.end_evidence) == ("ended", "expiry", ON,
                                                                    "期满未续")
    assert heard == [("bureau", r.uid, f"{ops.GROUND_LABELS['expiry']}: 期满未续")]
    [entry] = dbs.scalars(select(AuditLog).where(AuditLog.action == "right.end",
                                                 AuditLog.object_id == str(r.uid))).all()
    assert entry.changes == {"ground": "expiry", "ended_on": ON.isoformat(),
                             "evidence": "期满未续", "record": None}
    assert entry.reason == "到期"
    assert dbs.get(Right, r.id) is not None  # never deleted


def test_an_end_without_evidence_announces_the_ground_alone(dbs, land):
    _, _, r = land
    heard = []

    def hear(actor, right_uid, reason):
        heard.append(reason)

    signals.right_ended.connect(hear)
    try:
        ops.end_right("bureau", r, "expiry", ON)
    finally:
        signals.right_ended.disconnect(hear)
    assert r.end_evidence == ""
    assert heard == [str(ops.GROUND_LABELS["expiry"])]
