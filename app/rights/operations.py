"""The rights register: land-contract and homestead rights, their registration, extension and
lawful end.  A right ends only on a ground of the closed list; settling in town is never one
(农村土地承包法 art 27; 乡村振兴促进法 art 55).  Ending a right never deletes it."""
from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text

from app import signals
from app.audit import operations as audit
from app.collectives.models import Collective
from app.errors import DomainError, Rule
from app.extensions import db
from app.grounds import guard_text, lawful_ground, refuse
from app.parcels.models import Parcel, RegistrySetting
from app.people.models import Household

from .models import LAWFUL_END_GROUNDS, CourtJudgment, Expropriation, Right, RightParcel

ART27_55 = _l("农村土地承包法 (Rural Land Contracting Law) art 27; 乡村振兴促进法 (Rural "
              "Revitalisation Promotion Law) art 55; source document item 14")
CONTRACT_LAW = _l("农村土地承包法 (Rural Land Contracting Law) arts 21, 27, 30, 31")
LAND_LAW_62 = _l("土地管理法 (Land Administration Law, 2019) art 62")
NYT = _l("NY/T 2539-2016 rural land contract data standard")

FORBIDDEN = Rule(
    "right.end.forbidden_ground",
    _l("A right may not be ended because of %(ground)s. Giving up the land-contract right, the "
       "homestead right or the collective income-distribution right may not be made a condition "
       "of settling in town; a right ends only on expiry, a voluntary withdrawal that has taken "
       "effect, expropriation with compensation, a court judgment, a mutation handing it to "
       "successor parcels, or the holder household ceasing to exist with no successor."),
    ART27_55)
UNKNOWN_GROUND = Rule(
    "right.end.unknown_ground",
    _l("'%(ground)s' is not a ground on which a right ends. Lawful grounds: expiry, voluntary "
       "withdrawal that has taken effect, expropriation with compensation, court judgment, "
       "mutation to successor parcels, holder household ceased with no successor."), ART27_55)
GROUND_EVIDENCE = Rule("right.end.evidence",
                       _l("Ending a right on the ground %(ground)s needs %(what)s."), ART27_55)
NOT_EXPIRED = Rule("right.end.not_expired",
                   _l("The contract runs until %(term_end)s; it has not expired."),
                   CONTRACT_LAW)
NOT_CURRENT = Rule("right.not_current",
                   _l("This right has ended or been superseded; history is never rewritten."),
                   CONTRACT_LAW, 409)
EXTEND_YEARS = Rule(
    "right.extend.years",
    _l("An extension lengthens the contract term by a whole number of years from 1 to 70; "
       "%(years)s is not one (a term is never shortened by an extension)."),
    _l("农村土地承包法 art 21 (extension on expiry; cultivated land 30 years)"), 422)
SECOND_HOMESTEAD = Rule(
    "right.homestead.second",
    _l("Household %(household)s already holds homestead %(parcel)s: one household, one "
       "homestead. A second is possible only once the first right has ended."), LAND_LAW_62, 409)
HOMESTEAD_CAP = Rule(
    "right.homestead.area_cap",
    _l("Homestead %(parcel)s measures %(area)s m², above the cap of %(cap)s m² set for county "
       "%(county)s."), LAND_LAW_62)
BASIC_FARMLAND = Rule(
    "right.homestead.basic_farmland",
    _l("Homestead %(parcel)s lies on permanent basic farmland (parcel %(other)s, %(overlap)s m²)."),
    LAND_LAW_62)
NOT_HOMESTEAD = Rule("right.homestead.parcel_kind",
                     _l("Parcel %(parcel)s is not a homestead parcel."), LAND_LAW_62)
NOT_CONTRACT_LAND = Rule("right.contract.parcel_kind",
                         _l("Parcel %(parcel)s is not contract land."), NYT)
BAD_CONTRACT_CODE = Rule(
    "right.contract.code",
    _l("Contract code %(code)s must be the household's code followed by J."), NYT)
PARCEL_TAKEN = Rule("right.contract.parcel_taken",
                    _l("Parcel %(parcel)s is already under the current contract %(other)s."),
                    CONTRACT_LAW, 409)
RECORD_INCOMPLETE = Rule(
    "right.end.record",
    _l("The %(what)s behind ending a right is recorded in full: %(missing)s."), ART27_55)
UNKNOWN_PARCEL = Rule("right.parcel.unknown",
                      _l("Parcel %(code)s is not a current parcel of the register."), NYT, 404)
PARCEL_OTHER_COLLECTIVE = Rule(
    "right.contract.parcel_collective",
    _l("Parcel %(parcel)s belongs to the collective %(owner)s, not to %(fbfbm)s that issues "
       "household %(household)s's contract: an issuing party contracts out only its own "
       "collective's land."),
    _l("农村土地承包法 (Rural Land Contracting Law) art 13, art 22; NY/T 2539-2016 (CBDKXX.FBFBM)"))
NO_HOUSEHOLD = Rule("right.holder", _l("Household %(code)s is not registered."), NYT)
MUTATION_CARRIED = Rule(
    "right.end.mutation_carried",
    _l("The right goes on over parcel %(parcel)s: a split or merge hands a right on to the "
       "successor parcels, where it continues. It ends on a mutation only when a later current "
       "right of the same holder holds all of its land for at least the same term; a mutation "
       "takes no land back during the term."), ART27_55)
BEFORE_GROUND = Rule(
    "right.end.before_ground",
    _l("A right cannot end on %(ended_on)s, before the %(what)s of %(date)s behind its end."),
    ART27_55)
HOLDER_SUCCEEDED = Rule(
    "right.end.successor",
    _l("Members of household %(code)s live on in other households (%(names)s): its right passes "
       "to a successor household (a division, a transfer within the collective); it does not "
       "end as \"holder extinct\"."),
    _l("农村土地承包法 (Rural Land Contracting Law) arts 27, 31, 34; 乡村振兴促进法 (Rural "
       "Revitalisation Promotion Law) art 55"))
PARCEL_HELD = Rule(
    "right.parcel.held",
    _l("Parcel %(parcel)s is held by the current right %(uid)s: its kind and its collective do "
       "not change while a right holds it; the right ends first on a lawful ground."),
    ART27_55, 409)
OTHER_HOLDER = Rule(
    "right.parcel.other_holder",
    _l("Parcel %(parcel)s is under the current right %(uid)s of household %(holder)s; it passes "
       "to another holder only when that right ends on a lawful ground (a swap, a transfer, a "
       "voluntary withdrawal)."),
    _l("农村土地承包法 (Rural Land Contracting Law) arts 27, 33, 34; 土地管理法 (Land "
       "Administration Law, 2019) art 62"), 409)

FORBIDDEN_GROUNDS = {
    "settled_in_town": _l("settling in town (进城落户)"),
    "hukou_moved": _l("a move of the hukou"),
    "married_out": _l("marriage, divorce or widowhood (农村土地承包法 art 31)"),
    "migrant_work": _l("migrant work"),
    "non_use": _l("the land lying unused"),
}
GROUND_LABELS = {
    "expiry": _l("expiry without extension"),
    "voluntary_withdrawal": _l("voluntary withdrawal that has taken effect"),
    "expropriation": _l("expropriation with compensation recorded"),
    "court_judgment": _l("court judgment"),
    "mutation": _l("mutation handing the right to successor parcels"),
    "holder_extinct": _l("the holder household ceased to exist with no successor"),
    # Only a management right, with its transfer (农村土地承包法 art 42; the market's contract).
    "transfer_terminated": _l("its transfer ended on an art 42 ground"),
}


_who = audit.actor_name


def _household(code: str) -> Household:
    hh = db.session.scalar(select(Household).where(Household.cbfbm == code))
    if hh is None:
        raise DomainError(NO_HOUSEHOLD, code=code)
    return hh


def refuse_other_holder(kind: str, household_code: str, parcel_uids: list[int]) -> None:
    """A parcel is under the current right (of a kind) of one holder only: refused while a
    current right of another holder holds one of `parcel_uids` (the database checks the same,
    land_right_parcel_one_holder, 0053)."""
    if not parcel_uids:
        return
    row = db.session.execute(text("""
        SELECT rp.parcel_code, r.uid, r.holder_household_code FROM land_right r
        JOIN land_right_parcel rp ON rp.right_id = r.id
        WHERE rp.parcel_uid = ANY(:u) AND r.kind = :k AND r.status = 'current'
          AND r.end_lifespan IS NULL AND r.holder_household_code IS DISTINCT FROM :h
        ORDER BY rp.parcel_code LIMIT 1"""),
        {"u": list(parcel_uids), "k": kind, "h": household_code}).first()
    if row:
        raise DomainError(OTHER_HOLDER, parcel=row[0], uid=row[1], holder=row[2] or "—")


def refuse_parcel_change(parcel_uid: int, parcel_code: str, changes: dict) -> None:
    """An amendment of a parcel's household, kind or collective while a current right holds it:
    to another household only when that household holds the right; never its kind or
    collective (the database checks the same, parcel_holder_kept, 0053)."""
    if "household_code" in changes:
        for kind in ("land_contract", "homestead"):
            refuse_other_holder(kind, changes["household_code"], [parcel_uid])
    if "kind" in changes or "collective_id" in changes:
        uid = db.session.scalar(text("""
            SELECT r.uid FROM land_right r JOIN land_right_parcel rp ON rp.right_id = r.id
            WHERE rp.parcel_uid = :u AND r.kind IN ('land_contract', 'homestead')
              AND r.status = 'current' AND r.end_lifespan IS NULL LIMIT 1"""), {"u": parcel_uid})
        if uid is not None:
            raise DomainError(PARCEL_HELD, parcel=parcel_code, uid=uid)


def register_land_contract(actor, household_code: str, contract_code: str,
                           parcels: list[tuple[Parcel, Decimal | None]], term_start: dt.date,
                           term_end: dt.date, obtained_by: str = "110",
                           reason: str | None = None) -> Right:
    """The land-contract right of a household over the parcels of its contract (CBHT)."""
    hh = _household(household_code)
    if contract_code != household_code + "J":
        raise DomainError(BAD_CONTRACT_CODE, code=contract_code)
    for p, _ in parcels:
        if p.kind != "contract":
            raise DomainError(NOT_CONTRACT_LAND, parcel=p.code)
        if p.collective_id != hh.collective_id:
            owner = db.session.get(Collective, p.collective_id)
            raise DomainError(PARCEL_OTHER_COLLECTIVE, parcel=p.code, household=hh.cbfbm,
                              owner=owner.fbfbm if owner else "—", fbfbm=hh.cbfbm[:14])
    if parcels:  # one query for all the contract's parcels
        taken = db.session.execute(text("""
            SELECT rp.parcel_code, r.contract_code FROM land_right r
            JOIN land_right_parcel rp ON rp.right_id = r.id
            WHERE rp.parcel_uid = ANY(:u) AND r.kind = 'land_contract' AND r.status = 'current'
              AND r.end_lifespan IS NULL AND r.contract_code <> :c LIMIT 1"""),
            {"u": [p.uid for p, _ in parcels], "c": contract_code}).first()
        if taken:
            raise DomainError(PARCEL_TAKEN, parcel=taken[0], other=taken[1])
    right = Right(kind="land_contract", holder_household_code=hh.cbfbm, holder_name=hh.name,
                  contract_code=contract_code, obtained_by=obtained_by, fbfbm=hh.cbfbm[:14],
                  term_start=term_start, term_end=term_end,
                  contract_area=sum((a or p.scmj) for p, a in parcels) if parcels else None,
                  change_reason=reason, changed_by=_who(actor))
    db.session.add(right)
    db.session.flush()
    for p, area in parcels:
        db.session.add(RightParcel(right_id=right.id, parcel_uid=p.uid, parcel_code=p.code,
                                   contract_area=area))
    db.session.flush()
    audit.record(actor, "right.register", "land_right", right.uid,
                 {"kind": "land_contract", "contract": contract_code,
                  "parcels": [p.code for p, _ in parcels], "term": [term_start, term_end]},
                 reason)
    return right


def homestead_cap(county: str) -> float | None:
    row = db.session.get(RegistrySetting, f"homestead_cap_m2:{county}")
    return float(row.value) if row else None


def refuse_second_homestead(household_code: str) -> None:
    """One household, one homestead: refused while the household holds a current one."""
    held = db.session.scalar(text("""
        SELECT rp.parcel_code FROM land_right r JOIN land_right_parcel rp ON rp.right_id = r.id
        WHERE r.kind = 'homestead' AND r.status = 'current' AND r.end_lifespan IS NULL
          AND r.holder_household_code = :h LIMIT 1"""), {"h": household_code})
    if held:
        raise DomainError(SECOND_HOMESTEAD, household=household_code, parcel=held)


def register_homestead(actor, household_code: str, parcel: Parcel,
                       reason: str | None = None) -> Right:
    """The homestead use right of a household: one household, one homestead; within the
    county's area cap; never on permanent basic farmland (土地管理法 art 62)."""
    hh = _household(household_code)
    if parcel.kind != "homestead":
        raise DomainError(NOT_HOMESTEAD, parcel=parcel.code)
    refuse_second_homestead(hh.cbfbm)
    refuse_other_holder("homestead", hh.cbfbm, [parcel.uid])
    county = parcel.code[:6]
    cap = homestead_cap(county)
    if cap is not None and float(parcel.scmj) > cap:
        raise DomainError(HOMESTEAD_CAP, parcel=parcel.code, area=parcel.scmj, cap=cap,
                          county=county)
    farmland = db.session.execute(text("""
        SELECT b.code, overlap_area_m2(b.geom, h.geom, h.survey_srid) AS a
        FROM parcel h JOIN parcel b ON b.end_lifespan IS NULL AND b.kind = 'contract'
          AND b.sfjbnt = '1' AND b.geom && h.geom
        WHERE h.id = :i ORDER BY a DESC LIMIT 1"""), {"i": parcel.id}).first()
    tol = float(db.session.get(RegistrySetting, "overlap_tolerance_m2").value)
    if farmland and farmland.a > tol:
        raise DomainError(BASIC_FARMLAND, parcel=parcel.code, other=farmland.code,
                          overlap=f"{farmland.a:.1f}")
    right = Right(kind="homestead", holder_household_code=hh.cbfbm, holder_name=hh.name,
                  fbfbm=parcel.collective.fbfbm, change_reason=reason, changed_by=_who(actor))
    db.session.add(right)
    db.session.flush()
    db.session.add(RightParcel(right_id=right.id, parcel_uid=parcel.uid, parcel_code=parcel.code))
    db.session.flush()
    audit.record(actor, "right.register", "land_right", right.uid,
                 {"kind": "homestead", "parcel": parcel.code, "household": hh.cbfbm}, reason)
    return right


def extend_contract(actor, right: Right, years: int = 30, reason: str | None = None) -> Right:
    """The second-round extension (农村土地承包法 art 21): a new version with a later term end;
    the old version stays, superseded."""
    if right.status != "current" or right.end_lifespan is not None:
        raise DomainError(NOT_CURRENT)
    guard_text(actor, "register", {"reason": reason}, "right.extend.refused", "land_right",
               right.uid, reason=reason)
    if isinstance(years, bool) or not isinstance(years, int) or not 1 <= years <= 70:
        raise DomainError(EXTEND_YEARS, years=years)
    if right.term_end is None:
        raise DomainError(NOT_CURRENT)
    try:
        new_end = right.term_end.replace(year=right.term_end.year + years)
    except ValueError:  # 29 February into a common year: the last day of February
        new_end = right.term_end.replace(year=right.term_end.year + years, day=28)
    new = _new_version(actor, right, reason or f"extended by {years} years",
                       term_end=new_end)
    audit.record(actor, "right.extend", "land_right", right.uid,
                 {"term_end": [right.term_end, new_end], "version": new.version}, reason)
    return new


def _new_version(actor, right: Right, reason: str, parcels_override: bool = False,
                 **changes) -> Right:
    cols = ("kind", "holder_household_code", "holder_person_id", "holder_name",
            "contract_code", "obtained_by", "fbfbm", "term_start", "term_end", "contract_area")
    values = {c: getattr(right, c) for c in cols}
    values.update(changes)
    at = db.session.execute(text("SELECT clock_timestamp()")).scalar()
    db.session.execute(text("UPDATE land_right SET end_lifespan = :at WHERE id = :i"),
                       {"i": right.id, "at": at})
    new = Right(uid=right.uid, version=right.version + 1, change_reason=reason,
                changed_by=_who(actor), begin_lifespan=at, **values)
    db.session.add(new)
    db.session.flush()
    if not parcels_override:  # the caller lays out the new version's parcels
        for rp in right.parcels:
            db.session.add(RightParcel(right_id=new.id, parcel_uid=rp.parcel_uid,
                                       parcel_code=rp.parcel_code, contract_area=rp.contract_area))
    db.session.flush()
    db.session.refresh(right)
    return new


def _file_record(actor, right: Right, what, fields: dict, file: bytes | None, reason):
    missing = [k for k, v in fields.items() if v is None or (isinstance(v, str) and not v.strip())]
    if not file:
        missing.append("file")
    if missing:
        refuse(actor, DomainError(RECORD_INCOMPLETE, what=what, missing=", ".join(missing)),
               "right.end.refused", "land_right", right.uid, {"missing": missing}, reason)


def record_court_judgment(actor, right: Right, court: str, case_number: str,
                          judged_on: dt.date, file: bytes | None, filename: str | None = None,
                          reason: str | None = None) -> CourtJudgment:
    """The judgment behind ending a right on the ground of a court judgment: the court, the case
    number, the date and the judgment itself (the file, kept)."""
    _file_record(actor, right, _l("court judgment"),
                 {"court": court, "case_number": case_number, "judged_on": judged_on}, file,
                 reason)
    j = CourtJudgment(right_uid=right.uid, court=court.strip(), case_number=case_number.strip(),
                      judged_on=judged_on, filename=filename or "judgment.pdf", file=file,
                      sha256=hashlib.sha256(file).hexdigest(), recorded_by=_who(actor))
    db.session.add(j)
    db.session.flush()
    audit.record(actor, "right.judgment", "land_right", right.uid,
                 {"judgment": j.id, "court": j.court, "case_number": j.case_number,
                  "judged_on": judged_on, "sha256": j.sha256}, reason)
    return j


def record_expropriation(actor, right: Right, authority: str, decision_number: str,
                         decided_on: dt.date, compensation: Decimal | None, file: bytes | None,
                         filename: str | None = None, reason: str | None = None) -> Expropriation:
    """The expropriation behind ending a right: the deciding authority, the decision, the
    compensation (土地管理法 art 48) and the decision's file."""
    _file_record(actor, right, _l("expropriation"),
                 {"authority": authority, "decision_number": decision_number,
                  "decided_on": decided_on, "compensation": compensation}, file, reason)
    if Decimal(compensation) <= 0:
        refuse(actor, DomainError(GROUND_EVIDENCE, ground=GROUND_LABELS["expropriation"],
                                  what=_l("the compensation recorded (amount)")),
               "right.end.refused", "land_right", right.uid, {"compensation": compensation},
               reason)
    x = Expropriation(right_uid=right.uid, authority=authority.strip(),
                      decision_number=decision_number.strip(), decided_on=decided_on,
                      compensation=Decimal(compensation), filename=filename or "decision.pdf",
                      file=file, sha256=hashlib.sha256(file).hexdigest(), recorded_by=_who(actor))
    db.session.add(x)
    db.session.flush()
    audit.record(actor, "right.expropriation", "land_right", right.uid,
                 {"expropriation": x.id, "decision": x.decision_number,
                  "compensation": x.compensation}, reason)
    return x


def _proof(ground: str, right: Right, record, ended_on: dt.date):
    """The id of the record behind `ground` when it really is this right's, else None."""
    rid = getattr(record, "id", record)
    if rid is None:
        return None
    if ground == "court_judgment":
        ok = db.session.scalar(select(CourtJudgment.id).where(
            CourtJudgment.id == rid, CourtJudgment.right_uid == right.uid,
            CourtJudgment.judged_on <= ended_on))
    elif ground == "expropriation":
        ok = db.session.scalar(select(Expropriation.id).where(
            Expropriation.id == rid, Expropriation.right_uid == right.uid,
            Expropriation.compensation > 0))
    elif ground == "voluntary_withdrawal":  # the withdrawal feature (higher) keeps that record
        ok = next((r for r in signals.send(signals.right_end_proof, ground, right_uid=right.uid,
                                           record_id=rid, ended_on=ended_on) if r is not None),
                  None)
    elif ground == "mutation":
        # a split (two or more parts) or a merge (two or more parcels) that handed on a parcel
        # this right held when it was handed on; a rename or a correction hands it to nobody
        # (0050).  The database's own test, which land_right_end_proof() applies too (0051).
        ok = rid if db.session.scalar(text("SELECT mutation_handed_on(:u, :m)"),
                                      {"u": right.uid, "m": rid}) else None
    else:
        ok = None
    return ok


def end_right(actor, right: Right, ground: str, ended_on: dt.date, evidence: str | None = None,
              reason: str | None = None, record=None, today: dt.date | None = None) -> Right:
    """End a right on a lawful ground with its proof; anything else is refused, recorded, and
    cites the law.  `record` is the record behind the ground: the CourtJudgment, Expropriation,
    withdrawal (id) or parcel Mutation (id).  The database checks the same (migration 0012)."""
    ground = lawful_ground(actor, ground, LAWFUL_END_GROUNDS, FORBIDDEN_GROUNDS, FORBIDDEN,
                           UNKNOWN_GROUND, "right.end.refused", "land_right", right.uid, reason)
    # A lawful ground with the forbidden one written beside it ("expiry", reason "进城落户") is
    # the forbidden ground in disguise: the free text goes through the rights guard's detector.
    # A voluntary withdrawal may name settling in town (the pilot is for those who settled),
    # never a condition.
    guard_text(actor, "withdrawal" if ground == "voluntary_withdrawal" else "right_end",
               {"reason": reason, "evidence": evidence}, "right.end.refused", "land_right",
               right.uid, reason=reason)
    today = today or dt.date.today()

    def no(rule, **params):
        refuse(actor, DomainError(rule, **params), "right.end.refused", "land_right", right.uid,
               {"ground": ground, "ended_on": ended_on}, reason)

    if right.status != "current" or right.end_lifespan is not None:
        no(NOT_CURRENT)
    needs = {
        "voluntary_withdrawal": _l("a withdrawal of this right that has taken effect (the "
                                   "voluntary withdrawal pilot procedure)"),
        "court_judgment": _l("the judgment recorded: court, case number, date and the file"),
        "mutation": _l("the parcel mutation that changed this right's parcels"),
        "expropriation": _l("the expropriation recorded with its compensation"),
    }
    record_id = None
    if ground in needs:
        record_id = _proof(ground, right, record, ended_on)
        if record_id is None:
            no(GROUND_EVIDENCE, ground=GROUND_LABELS[ground], what=needs[ground])
    if ground == "mutation":
        at = db.session.scalar(text("SELECT (at AT TIME ZONE 'Asia/Shanghai')::date "
                                    "FROM parcel_mutation WHERE id = :m"), {"m": record_id})
        if ended_on < at:
            no(BEFORE_GROUND, ended_on=ended_on, what=_l("parcel mutation"), date=at)
        kept = db.session.scalar(text("SELECT right_land_kept_alone(:v)"), {"v": right.id})
        if kept is not None:  # the database's own test (0053), applied by the proof too
            no(MUTATION_CARRIED, parcel=kept)
    if ground == "expropriation":
        decided = db.session.get(Expropriation, record_id).decided_on
        if ended_on < decided:
            no(BEFORE_GROUND, ended_on=ended_on, what=_l("expropriation decision"), date=decided)
    if ground == "expiry" and (right.term_end is None or ended_on < right.term_end
                               or today < right.term_end):
        no(NOT_EXPIRED, term_end=right.term_end or "—")
    if ground == "holder_extinct":
        ended = db.session.execute(select(Household.ended_on, Household.end_ground).where(
            Household.cbfbm == right.holder_household_code)).first()
        if ended is None or ended.ended_on is None or ended.end_ground is None:
            no(GROUND_EVIDENCE, ground=GROUND_LABELS[ground],
               what=_l("the household's end recorded in the register on its own lawful ground"))
        if ended_on < ended.ended_on:
            no(BEFORE_GROUND, ended_on=ended_on, what=_l("end of the holder household"),
               date=ended.ended_on)
        moved = db.session.scalars(text("""
            SELECT p.name FROM household h JOIN household_member m ON m.household_id = h.id
            JOIN person p ON p.id = m.person_id
            WHERE h.cbfbm = :h AND m.end_ground IN ('joined_other_household', 'household_division')
              -- at the household's end: not a child who married or divided out years before
              AND m.left_on >= COALESCE((SELECT max(d.left_on) FROM household_member d
                  WHERE d.household_id = h.id AND d.end_ground IN ('death', 'nationality_lost')),
                  '-infinity'::date)
            ORDER BY p.name"""), {"h": right.holder_household_code}).all()
        if moved:  # the database's own test too (land_right_end_proof, 0053)
            no(HOLDER_SUCCEEDED, code=right.holder_household_code, names="、".join(moved))
    note = evidence or ""
    if ground == "expropriation":
        x = db.session.get(Expropriation, record_id)
        note = f"{note}; {x.decision_number}, compensation {x.compensation}".strip("; ")
    if ground == "court_judgment":
        j = db.session.get(CourtJudgment, record_id)
        note = note or f"{j.court} {j.case_number} ({j.judged_on})"
    db.session.execute(text("""UPDATE land_right SET status = 'ended', end_ground = :g,
                               ended_on = :d, end_evidence = :e, end_record_id = :r
                               WHERE id = :i"""),
                       {"g": ground, "d": ended_on, "e": note, "r": record_id, "i": right.id})
    db.session.refresh(right)
    audit.record(actor, "right.end", "land_right", right.uid,
                 {"ground": ground, "ended_on": ended_on, "evidence": note,
                  "record": record_id}, reason)
    # its certificate no longer stands (app.certificates subscribes)
    signals.send(signals.right_ended, actor, right_uid=right.uid,
                 reason=f"{GROUND_LABELS[ground]}: {note}".rstrip(": "))
    return right


def add_parcels(actor, household_code: str, parcels: list[tuple[Parcel, Decimal | None]],
                term_end: dt.date | None, reason: str) -> Right:
    """Parcels passing to a household of the same collective (农村土地承包法 art 34): a new
    version of its contract over its parcels and these, or a new contract if it has none."""
    existing = db.session.scalar(select(Right).where(
        Right.holder_household_code == household_code, Right.kind == "land_contract",
        Right.status == "current", Right.end_lifespan.is_(None)))
    refuse_other_holder("land_contract", household_code, [p.uid for p, _ in parcels])
    if existing is None:
        return register_land_contract(actor, household_code, household_code + "J", parcels,
                                      dt.date.today(), term_end, "200", reason=reason)
    new = _new_version(actor, existing, reason, contract_area=(existing.contract_area or 0) +
                       sum((a or p.scmj) for p, a in parcels))
    for p, area in parcels:
        db.session.add(RightParcel(right_id=new.id, parcel_uid=p.uid, parcel_code=p.code,
                                   contract_area=area))
    db.session.flush()
    audit.record(actor, "right.add_parcels", "land_right", existing.uid,
                 {"parcels": [p.code for p, _ in parcels], "version": new.version}, reason)
    return new


def current_version(uid) -> Right | None:
    """The live version (no end of lifespan) of right `uid`, or None."""
    return db.session.scalar(select(Right).where(Right.uid == uid, Right.end_lifespan.is_(None)))


def current_rights(household_code: str) -> list[Right]:
    return list(db.session.scalars(select(Right).where(
        Right.holder_household_code == household_code, Right.status == "current",
        Right.end_lifespan.is_(None)).order_by(Right.kind, Right.id)))


def register_from_batch(actor, batch_id: int, fbfbm: str | None = None) -> dict:
    """Rights from a registered survey delivery (optionally one villagers' group): a
    land-contract right per CBHT contract over its CBDKXX parcels, a homestead right per
    homestead parcel with a household."""
    made = {"land_contract": 0, "homestead": 0, "refused": []}
    group = (fbfbm or "") + "%"
    contracts = db.session.execute(text("""
        SELECT attrs FROM import_record WHERE batch_id = :b AND tbl = 'CBHT'
          AND status = 'registered' AND attrs->>'CBFBM' LIKE :g ORDER BY id"""),
        {"b": batch_id, "g": group}).scalars().all()
    # Everything the contracts need, read once: their CBDKXX rows and current parcels.
    links: dict[str, dict[str, Decimal | None]] = {}
    for hh_code, dkbm, htmj in db.session.execute(text("""
            SELECT r.attrs->>'CBFBM', r.attrs->>'DKBM', (r.attrs->>'HTMJ')::numeric
            FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBDKXX'
              AND r.status IN ('registered', 'valid') AND r.attrs->>'CBFBM' LIKE :g
            ORDER BY r.id"""), {"b": batch_id, "g": group}):
        links.setdefault(hh_code, {})[dkbm] = htmj
    codes = sorted({d for per in links.values() for d in per})
    current = {p.code: p for p in db.session.scalars(select(Parcel).where(
        Parcel.code.in_(codes), Parcel.end_lifespan.is_(None)))} if codes else {}
    done = set(db.session.scalars(select(Right.contract_code).where(
        Right.kind == "land_contract", Right.end_lifespan.is_(None),
        Right.contract_code.in_([c["CBHTBM"] for c in contracts]))))
    for c in contracts:
        code, hh = c["CBHTBM"], c["CBFBM"]
        if code in done:
            continue
        parcels = [(current[d], a) for d, a in sorted(links.get(hh, {}).items()) if d in current]
        try:  # the checks refuse before anything is written: no savepoint needed
            register_land_contract(actor, hh, code, parcels, dt.date.fromisoformat(c["CBQXQ"]),
                                   dt.date.fromisoformat(c["CBQXZ"]), c.get("CBFS") or "110",
                                   reason=f"survey import {batch_id}")
            made["land_contract"] += 1
        except DomainError as e:
            made["refused"].append((code, e.code))
    homesteads = db.session.scalars(select(Parcel).where(
        Parcel.import_batch_id == batch_id, Parcel.kind == "homestead",
        Parcel.end_lifespan.is_(None), Parcel.household_code.like(group))).all()
    for p in homesteads:
        try:
            register_homestead(actor, p.household_code, p, reason=f"survey import {batch_id}")
            made["homestead"] += 1
        except DomainError as e:
            made["refused"].append((p.code, e.code))
    return made


def carry_to_successors(actor, parents: list[Parcel], children: list[Parcel],
                        reason: str) -> list[Right]:
    """After a split or merge, every current right over a parent continues over the successor
    parcels: a new version of the right covering the children instead of the parents."""
    parent_uids = {p.uid for p in parents}
    rights = db.session.scalars(select(Right).join(RightParcel).where(
        RightParcel.parcel_uid.in_(parent_uids), Right.status == "current",
        Right.end_lifespan.is_(None)).distinct()).all()
    carried = []
    for r in rights:
        keep = [(rp.parcel_uid, rp.parcel_code, rp.contract_area) for rp in r.parcels
                if rp.parcel_uid not in parent_uids]
        total_parent = sum(float(p.scmj) for p in parents) or 1.0
        moved_area = sum(float(rp.contract_area or 0) for rp in r.parcels
                         if rp.parcel_uid in parent_uids)
        new = _new_version(actor, r, reason, parcels_override=True)
        for uid, code, area in keep:
            db.session.add(RightParcel(right_id=new.id, parcel_uid=uid, parcel_code=code,
                                       contract_area=area))
        for c in children:  # the contract area follows the surveyed area
            share = Decimal(str(round(moved_area * float(c.scmj) / total_parent, 2))) \
                if moved_area else None
            db.session.add(RightParcel(right_id=new.id, parcel_uid=c.uid, parcel_code=c.code,
                                       contract_area=share))
        db.session.flush()
        audit.record(actor, "right.carry", "land_right", r.uid,
                     {"from": [p.code for p in parents], "to": [c.code for c in children],
                      "version": new.version}, reason)
        carried.append(new)
    return carried


def on_parcel(parcel_uid: int) -> list[Right]:
    """The rights over a spatial unit: current versions first, then ended ones."""
    return list(db.session.scalars(select(Right).join(RightParcel).where(
        RightParcel.parcel_uid == parcel_uid, Right.end_lifespan.is_(None))
        .order_by(Right.status, Right.id)))


def as_of(when: dt.datetime, household_code: str | None = None, fbfbm: str | None = None):
    """The rights register as it stood at `when`: (version alive then, its status then) — a
    right ended after `when` was still current at `when`."""
    q = select(Right).where(Right.begin_lifespan <= when,
                            (Right.end_lifespan.is_(None)) | (Right.end_lifespan > when))
    if household_code:
        q = q.where(Right.holder_household_code == household_code)
    if fbfbm:
        q = q.where(Right.fbfbm == fbfbm)
    day = when.date()
    return [(r, "ended" if r.status == "ended" and r.ended_on <= day else "current")
            for r in db.session.scalars(q.order_by(Right.uid))]


def register_management(actor, holder_name: str, holder_person_id: int | None, fbfbm: str,
                        parcels: list[tuple[int, str]], term_start: dt.date, term_end: dt.date,
                        reason: str) -> Right:
    """The land management right (土地经营权) of a transferee over parcels for the term of a
    filed transfer of 5 years or more (农村土地承包法 art 41), beside the household's contract
    right (三权分置).  `parcels`: (parcel uid, parcel code)."""
    if holder_person_id is not None:  # the holder's row in the right's county (0045)
        holder_person_id = db.session.scalar(text("SELECT person_row_in(:p, :c)"),
                                             {"p": holder_person_id, "c": fbfbm[:6]})
    right = Right(kind="management", holder_person_id=holder_person_id, holder_name=holder_name,
                  fbfbm=fbfbm, term_start=term_start, term_end=term_end, change_reason=reason,
                  changed_by=_who(actor))
    db.session.add(right)
    db.session.flush()
    for uid, code in parcels:
        db.session.add(RightParcel(right_id=right.id, parcel_uid=uid, parcel_code=code))
    db.session.flush()
    audit.record(actor, "right.register", "land_right", right.uid,
                 {"kind": "management", "holder": holder_name,
                  "parcels": [c for _, c in parcels], "term": [term_start, term_end]}, reason)
    return right


def current_management(parcel_uid: int, day: dt.date) -> list[Right]:
    """Management rights over a parcel in force on a day (one ends at its term end by itself)."""
    return db.session.scalars(select(Right).join(RightParcel, RightParcel.right_id == Right.id)
                              .where(RightParcel.parcel_uid == parcel_uid,
                                     Right.kind == "management", Right.status == "current",
                                     Right.end_lifespan.is_(None), Right.term_start <= day,
                                     Right.term_end >= day)).all()


def transferred_from(household_code: str) -> list:
    """三权分置: the household's land under another's current management right (a registered
    transfer), with its term."""
    return db.session.execute(text("""
        SELECT r.uid, r.holder_name, r.term_start, r.term_end, rp.parcel_code
        FROM land_right r JOIN land_right_parcel rp ON rp.right_id = r.id
        JOIN parcel p ON p.uid = rp.parcel_uid AND p.end_lifespan IS NULL
        WHERE r.kind = 'management' AND r.status = 'current' AND r.end_lifespan IS NULL
          AND p.household_code = :h AND r.term_end >= CURRENT_DATE
        ORDER BY r.term_start, rp.parcel_code"""), {"h": household_code}).all()


def end_management_on_termination(uid: int, ended_on: dt.date, evidence: str) -> None:
    """A management right ends with the transfer contract terminated under it (农村土地承包法
    art 42; the market records the termination and its evidence)."""
    db.session.execute(text("""
        UPDATE land_right SET status = 'ended', end_ground = 'transfer_terminated',
               ended_on = :d, end_evidence = :e
        WHERE uid = :u AND end_lifespan IS NULL AND status = 'current'"""),
        {"d": ended_on, "e": evidence, "u": uid})


def expire_management_rights(today: dt.date) -> int:
    """Management rights whose term has run out end by themselves (ground: expiry)."""
    return db.session.execute(text("""
        UPDATE land_right SET status = 'ended', end_ground = 'expiry', ended_on = term_end,
               end_evidence = 'term ended'
        WHERE kind = 'management' AND status = 'current' AND end_lifespan IS NULL
          AND term_end < :d"""), {"d": today}).rowcount


def issuing_party_of(uid: int) -> str | None:
    """The issuing party (FBFBM) of right `uid`'s latest version."""
    return db.session.scalar(text("SELECT fbfbm FROM land_right WHERE uid = :u "
                                  "ORDER BY version DESC LIMIT 1"), {"u": uid})


def current_contracts_of(household_code: str) -> list:
    """A household's current land-contract rights (uid, contract code, term end)."""
    return db.session.execute(text("""
        SELECT r.uid, r.contract_code, r.term_end FROM land_right r
        WHERE r.holder_household_code = :h AND r.kind = 'land_contract' AND r.status = 'current'
          AND r.end_lifespan IS NULL ORDER BY r.uid"""), {"h": household_code}).all()


def current_parcels_of(right: Right) -> list:
    """The current parcels under a right version, with their geometry in the survey CRS (WKB)."""
    return db.session.execute(text("""
        SELECT p.code, p.name, p.scmjm, p.tdyt,
               ST_AsBinary(ST_Transform(p.geom, p.survey_srid)) AS wkb FROM land_right_parcel rp
        JOIN parcel p ON p.uid = rp.parcel_uid AND p.end_lifespan IS NULL
        WHERE rp.right_id = :r ORDER BY p.code"""), {"r": right.id}).all()


def current_management_parcels(on: dt.date) -> list:
    """Parcels under a current management right whose term runs on `on`, with the holder, term
    and GeoJSON (the transfers map)."""
    return db.session.execute(text("""
        SELECT r.uid, r.holder_name, r.term_start, r.term_end, rp.parcel_code,
               ST_AsGeoJSON(p.geom, 7) AS g
        FROM land_right r JOIN land_right_parcel rp ON rp.right_id = r.id
        JOIN parcel p ON p.uid = rp.parcel_uid AND p.end_lifespan IS NULL
        WHERE r.kind = 'management' AND r.status = 'current' AND r.end_lifespan IS NULL
          AND r.term_end >= :d
        ORDER BY r.uid, rp.parcel_code"""), {"d": on}).all()


# ---------------------------------------------------------------------------------------------
# Queries for the JSON API (issue 19)

def search_query(like: str | None, household_code: str | None = None, fbfbm: str | None = None,
                 parcel_uid: int | None = None, kind: str | None = None,
                 status: str | None = None, farmer_household: str | None = None):
    """Current versions of rights, inside a jurisdiction (`like` on the collective code) or,
    for a farmer, of their own household; a select of Right ordered by id."""
    stmt = select(Right).where(Right.end_lifespan.is_(None))
    if household_code:
        stmt = stmt.where(Right.holder_household_code.startswith(household_code))
    if fbfbm:
        stmt = stmt.where(Right.fbfbm.startswith(fbfbm))
    if parcel_uid is not None:
        stmt = stmt.where(Right.id.in_(select(RightParcel.right_id).where(
            RightParcel.parcel_uid == parcel_uid)))
    if kind:
        stmt = stmt.where(Right.kind == kind)
    if status:
        stmt = stmt.where(Right.status == status)
    if farmer_household is not None:
        stmt = stmt.where(Right.holder_household_code == farmer_household)
    elif like:
        stmt = stmt.where(Right.fbfbm.like(like))
    return stmt.order_by(Right.id)




def versions(uid: int) -> list[Right]:
    return list(db.session.scalars(select(Right).where(Right.uid == uid).order_by(Right.version)))


def current_parcels(codes: list[str]) -> list[tuple[Parcel, Decimal | None]]:
    """The current parcels of these codes (for registering a contract through the API); a code
    not in the register is refused with the rule that names it."""
    out = []
    for code in codes:
        p = db.session.scalar(select(Parcel).where(Parcel.code == code,
                                                   Parcel.end_lifespan.is_(None)))
        if p is None:
            raise DomainError(UNKNOWN_PARCEL, code=code)
        out.append((p, None))
    return out
