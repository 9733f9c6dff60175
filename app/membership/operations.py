"""Membership confirmation, share quantification and income distribution: the rules and writes.

The roll (`membership`) is app.collectives'; this module changes it only through
`app.collectives.operations.admit`.  Sources: 农村集体经济组织法 (in force 2025-05-01);
乡村振兴促进法 art 55; 农村集体经济组织财务制度 (财农〔2021〕121号); domain.md §7, §9."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, select

from app.audit import operations as audit
from app.collectives import operations as coll_ops
from app.collectives.models import Collective, Membership
from app.errors import DomainError, Rule
from app.extensions import db
from app.grounds import guard_text, refuse
from app.guardtext import normalise
from app.people.idnumber import mask
from app.people.models import Household, HouseholdMember, Person
from app.people.operations import rows_of
from app.printing import render_document
from app.security import SafeCSVWriter  # formula injection guard
from app.settlement.models import HukouMove

from .models import (
    APPLICATION_BASES,
    SPECIAL_CASES,
    AssemblyAttendance,
    AssemblyResolution,
    BankAccount,
    CharterRule,
    Distribution,
    Holding,
    MemberAssembly,
    MembershipApplication,
    Payout,
    Quantification,
    RollNotice,
    RollObjection,
    mask_account,
)

LAW = _l("农村集体经济组织法 (Rural Collective Economic Organisations Law, 2025)")
LAW_MEMBERS = _l("农村集体经济组织法 (2025) arts 11–18 (membership criteria and confirmation)")
LAW_ASSEMBLY = _l("农村集体经济组织法 (2025) art 26 (members' assembly: membership decisions by "
                  "two thirds of all members unless the charter says more)")
ART55 = _l("乡村振兴促进法 (Rural Revitalisation Promotion Law) art 55; 农村集体经济组织法 art 17")
FINANCE = _l("农村集体经济组织财务制度 (财农〔2021〕121号): distribution to members per share")
STATIC = _l("中共中央 国务院《关于稳步推进农村集体产权制度改革的意见》(2016): static management "
            "(生不增、死不减) unless the charter sets periodic adjustment")

BASIS = Rule("membership.application.basis",
             _l("'%(basis)s' is not a basis of application (birth, marriage in, adoption, policy "
                "resettlement, return, other)."), LAW_MEMBERS)
SPECIAL = Rule("membership.application.special",
               _l("'%(flag)s' is not a known special case."), LAW_MEMBERS)
ALREADY = Rule("membership.application.member",
               _l("%(name)s is already an active member of %(collective)s."), LAW_MEMBERS, 409)
PENDING = Rule("membership.application.pending",
               _l("%(name)s already has an application before the assembly."), LAW_MEMBERS, 409)
NOT_PENDING = Rule("membership.application.not_pending",
                   _l("This application is not before the assembly (status: %(status)s)."),
                   LAW_MEMBERS, 409)
THRESHOLD = Rule(
    "membership.assembly.threshold",
    _l("%(counted)s votes of %(total)s members is below the charter's threshold of "
       "%(num)s/%(den)s of all members (%(needed)s needed): the assembly has not decided."),
    LAW_ASSEMBLY)
VOTES = Rule("membership.assembly.votes",
             _l("%(votes)s votes counted but %(present)s members attended."), LAW_ASSEMBLY)
NOT_MEMBER = Rule("membership.assembly.not_member",
                  _l("Only members of the collective on the meeting date may attend and vote."),
                  LAW_ASSEMBLY)
OTHER_COLLECTIVE = Rule("membership.assembly.collective",
                        _l("The application is to another collective."), LAW_ASSEMBLY)
DECISION = Rule("membership.assembly.decision",
                _l("A resolution admits or rejects ('admit' / 'reject')."), LAW_ASSEMBLY)
NOTICE_OPEN = Rule("membership.notice.running",
                   _l("The public notice runs until %(end)s; the roll is filed after it."),
                   LAW_MEMBERS, 409)
NOTICE_CLOSED = Rule("membership.notice.closed",
                     _l("Objections are lodged while the notice runs (%(start)s – %(end)s)."),
                     LAW_MEMBERS, 409)
OBJECTIONS_OPEN = Rule("membership.roll.objections_open",
                       _l("%(n)s objection(s) not yet resolved: each is heard and resolved with "
                          "reasons before the roll is filed."), LAW_MEMBERS, 409)
RESOLUTION = Rule("membership.objection.resolution",
                  _l("An objection is upheld or dismissed, with reasons."), LAW_MEMBERS)
RESOLVED = Rule("membership.objection.resolved",
                _l("This objection was already resolved."), LAW_MEMBERS, 409)
NOT_YET = Rule("membership.assembly.not_yet",
               _l("The assembly meets on %(date)s: its votes are recorded on or after that day."),
               LAW_ASSEMBLY, 409)
OBJECTION_APP = Rule("membership.objection.application",
                     _l("An objection names an applicant this notice proposes for the roll."),
                     LAW_MEMBERS)
FUTURE = Rule("membership.date.future",
              _l("%(what)s cannot be dated after today (%(today)s)."), LAW_MEMBERS)
FILED = Rule("membership.roll.filed", _l("This roll is already filed."), LAW_MEMBERS, 409)
NO_DECISIONS = Rule("membership.notice.nothing",
                    _l("The assembly decided nothing to post."), LAW_MEMBERS)
STATIC_MGMT = Rule(
    "membership.shares.static",
    _l("The charter keeps shares static (生不增、死不减): the shares quantified on %(on)s stay; "
       "new members do not add shares and a death does not remove them (they pass within the "
       "household)."), STATIC, 409)
TOO_EARLY = Rule("membership.shares.interval",
                 _l("The charter adjusts shares every %(years)s years; the last adjustment was "
                    "on %(on)s."), STATIC, 409)
POPULATION = Rule(
    "membership.shares.population",
    _l("Every member holds a population share (人口股): a charter of labour-age shares alone would "
       "leave children, students and others without any share of the collective's income."),
    ART55)
NO_MEMBERS = Rule("membership.shares.no_members",
                  _l("The collective has no members on the roll to quantify shares for."), LAW)
INHERIT = Rule("membership.shares.inheritance",
               _l("Shares pass on death to an heir within the same household only."), STATIC)
INHERIT_DEATH = Rule(
    "membership.shares.inheritance",
    _l("Shares pass on only after the holder's death is recorded on the roll: a living member "
       "— settled in town, away or not — keeps their shares."), ART55)
AMOUNT = Rule("distribution.amount",
              _l("The amount must be a whole number of fen above zero (got %(amount)s)."), FINANCE)
NO_SHARES = Rule("distribution.no_shares",
                 _l("The collective has no quantified shares to distribute on."), FINANCE)
RULE_ART55 = Rule(
    "distribution.rule.art55",
    _l("A distribution pays every share alike. %(what)s would exclude or reduce members: hukou "
       "place, residence or settling in town is never a ground to exclude or reduce a member's "
       "income distribution; members who settled in town, study, serve, work away or are in "
       "prison are paid like everyone else. Refused and recorded."), ART55)
PAID = Rule("distribution.paid", _l("This distribution is already paid."), FINANCE, 409)
VALUE = Rule("membership.shares.value",
             _l("The asset value must be a whole number of fen, zero or more."), LAW)
BANK = Rule("membership.bank.account",
            _l("A bank account number is 8 to 34 digits."), FINANCE)

BASIS_LABELS = {
    "birth": _l("birth"), "marriage": _l("marriage in"), "adoption": _l("adoption"),
    "resettlement": _l("policy resettlement"), "return": _l("return"), "other": _l("other"),
}
SPECIAL_LABELS = {
    "married_out_no_other": _l("married out without another membership (keeps membership)"),
    "student": _l("student"), "soldier": _l("serving soldier"), "prisoner": _l("in prison"),
    "contract_civil_servant": _l("contract civil servant (keeps membership)"),
    "settled_in_town": _l("settled in town (keeps membership: 乡村振兴促进法 art 55)"),
}
CRITERIA_LABELS = {
    "hukou": _l("hukou in the collective"),
    "rights_duties": _l("a stable relationship of rights and duties with the collective"),
    "livelihood": _l("relies on collective land for basic livelihood"),
}
# Bases the law normally confirms: shown as guidance, the assembly still decides.
NORMALLY_CONFIRMED = ("birth", "marriage", "adoption", "resettlement")
# The roll's own bases (app.collectives JOIN_BASES) for each basis of application.
ROLL_BASIS = {"birth": "birth", "marriage": "marriage", "adoption": "adoption",
              "resettlement": "resettlement", "return": "assembly_decision",
              "other": "assembly_decision"}
# Rule keys a distribution understands; any other key would make some shares count less.
RULE_KEYS = ("per",)
_RESIDENCE_KEYS = ("hukou", "resid", "settl", "town", "city", "urban", "live", "domicil",
                   "户", "居", "城", "落")


def today() -> dt.date:
    """The app clock in China: a test or demo sets `APP_CLOCK` (a callable returning an aware
    datetime); nothing here ever sleeps."""
    from zoneinfo import ZoneInfo

    from flask import current_app, has_app_context

    fn = current_app.config.get("APP_CLOCK") if has_app_context() else None
    china = ZoneInfo("Asia/Shanghai")
    return (fn() if fn else dt.datetime.now(china)).astimezone(china).date()


# ------------------------------------------------------------------------------ charter
def charter_rule(collective: Collective) -> CharterRule:
    """The collective's charter settings, defaults when none were recorded."""
    r = db.session.get(CharterRule, collective.id)
    if r is None:
        r = CharterRule(collective_id=collective.id, vote_num=2, vote_den=3,
                        population_centi=100, labour_centi_per_year=0, labour_age_from=16,
                        labour_age_to=60, collective_share_bp=0, management="static",
                        adjust_every_years=None, notice_days=7, updated_by="system")
    return r


def set_charter_rule(actor, collective: Collective, reason: str | None = None,
                     **settings) -> CharterRule:
    r = db.session.get(CharterRule, collective.id)
    pop = settings.get("population_centi", r.population_centi if r is not None else 100)
    if not isinstance(pop, int) or isinstance(pop, bool) or pop <= 0:
        raise DomainError(POPULATION)
    before = {}
    if r is None:
        r = charter_rule(collective)
        db.session.add(r)
    else:
        before = {k: getattr(r, k) for k in settings}
    for k, v in settings.items():
        if not hasattr(CharterRule, k) or k in ("collective_id", "updated_by", "updated_at"):
            raise KeyError(k)
        setattr(r, k, v)
    r.updated_by = audit.actor_name(actor)
    db.session.flush()
    audit.record(actor, "membership.charter.set", "collective", collective.fbfbm,
                 audit.diff(before, settings) if before else settings, reason)
    return r


def members_on(collective: Collective, on: dt.date) -> list[Membership]:
    return list(db.session.scalars(select(Membership).where(
        Membership.collective_id == collective.id, Membership.began_on <= on,
        (Membership.ended_on.is_(None)) | (Membership.ended_on > on)).order_by(Membership.id)))


def settled_in_town(person_id: int) -> bool:

    # the settlement may name the person's row of another county (docs/scaling.md §3)
    return db.session.scalar(select(func.count()).select_from(HukouMove).where(
        HukouMove.person_id.in_(rows_of([person_id]) or [0]))) > 0


# ------------------------------------------------------------------------------ applications
def current_household(person_id: int, collective_id: int | None = None) -> Household | None:
    # a current place under any county's row of the person (docs/scaling.md §3)
    q = select(Household).join(HouseholdMember, HouseholdMember.household_id == Household.id) \
        .where(HouseholdMember.person_id.in_(rows_of([person_id]) or [0]),
               HouseholdMember.left_on.is_(None))
    if collective_id is not None:
        q = q.where(Household.collective_id == collective_id)
    return db.session.scalars(q.order_by(Household.id)).first()


def households_of(person_ids: list[int], collective_id: int) -> dict[int, int]:
    """Each person's current household, one of this collective's first (one query)."""
    rows = db.session.execute(select(HouseholdMember.person_id, Household.id,
                                     Household.collective_id).join(
        Household, Household.id == HouseholdMember.household_id).where(
        HouseholdMember.left_on.is_(None))).all() if len(person_ids) > 500 else \
        db.session.execute(select(HouseholdMember.person_id, Household.id,
                                  Household.collective_id).join(
            Household, Household.id == HouseholdMember.household_id).where(
            HouseholdMember.left_on.is_(None),
            HouseholdMember.person_id.in_(person_ids))).all()
    wanted, out = set(person_ids), {}
    for pid, hid, _cid in sorted(rows, key=lambda r: (r[2] != collective_id, r[1])):
        if pid in wanted and pid not in out:
            out[pid] = hid
    return out


def evaluate(person: Person, collective: Collective, facts: dict | None = None) -> dict:
    """The law's three criteria for this applicant, each with what it was read from.  The
    result is shown to the assembly; it decides nothing."""
    facts = facts or {}
    hukou = bool(person.hukou_division_code and
                 person.hukou_division_code.startswith(collective.village_code))
    hh = current_household(person.id, collective.id)
    rights = hh is not None or bool(facts.get("rights_duties"))
    livelihood = facts.get("livelihood")
    return {
        "hukou": {"met": hukou, "from": "person.hukou_division_code",
                  "value": person.hukou_division_code},
        "rights_duties": {"met": rights,
                          "from": "household" if hh is not None else "declared",
                          "value": hh.cbfbm if hh is not None else None},
        "livelihood": {"met": None if livelihood is None else bool(livelihood),
                       "from": "declared", "value": livelihood},
    }


def apply(actor, collective: Collective, person: Person, basis: str, facts: dict | None = None,
          special: list[str] | tuple[str, ...] = (), statement: str | None = None,
          reason: str | None = None) -> MembershipApplication:
    """An application for membership.  The criteria are evaluated and the special cases flagged
    for the assembly; nothing is decided here — the members' assembly decides."""
    if basis not in APPLICATION_BASES:
        raise DomainError(BASIS, basis=basis)
    special = list(dict.fromkeys(special or ()))
    for f in special:
        if f not in SPECIAL_CASES:
            raise DomainError(SPECIAL, flag=f)
    guard_text(actor, "membership", {"statement": statement, "reason": reason},
               "membership.application.refused", "person", person.id)
    coll_ops.check_reaches_person(actor, person)
    if coll_ops.active_membership(person.id, collective.id):
        raise DomainError(ALREADY, name=person.name, collective=collective.name)
    if db.session.scalar(select(MembershipApplication.id).where(
            MembershipApplication.person_id.in_(rows_of([person.id])),
            MembershipApplication.collective_id == collective.id,
            MembershipApplication.status.in_(("pending", "admitted")))):
        raise DomainError(PENDING, name=person.name)
    if settled_in_town(person.id) and "settled_in_town" not in special:
        special.append("settled_in_town")  # read from the hukou history, never a ground
    criteria = evaluate(person, collective, facts)
    criteria["normally_confirmed"] = basis in NORMALLY_CONFIRMED
    a = MembershipApplication(collective_id=collective.id, person_id=person.id, basis=basis,
                    criteria=criteria, flags=special, statement=statement, status="pending",
                    submitted_by=audit.actor_name(actor))
    db.session.add(a)
    db.session.flush()
    audit.record(actor, "membership.application", "membership_application", a.id,
                 {"person_id": person.id, "collective": collective.fbfbm, "basis": basis,
                  "flags": special, "criteria": {k: v["met"] for k, v in criteria.items()
                                                 if isinstance(v, dict)}}, reason)
    return a


INITIAL_REASON = Rule(
    "membership.initial_roll.reason",
    _l("Proposing the initial roll names why (the assembly's or villagers' decision it "
       "records): the roll is the officer's proposal until the round confirms it."), LAW_MEMBERS)
INITIAL_EXISTS = Rule(
    "membership.initial_roll.exists",
    _l("%(collective)s already has a membership roll: the initial roll is proposed once; later "
       "members join by application and the members' assembly."), LAW_MEMBERS, 409)


def propose_initial_roll(actor, collective: Collective, began_on: dt.date,
                         reason: str | None = None) -> list[Membership]:
    """The initial roll of a first confirmation, proposed by the officer from the current
    members of the collective's registered households (as a delivery's CBF_JTCY registers
    them): each joins as an original member (JOIN_BASES 'original', 农村集体经济组织法 arts
    11–12), unconfirmed.  The members' assembly then votes on the round's applications, the
    roll is posted and, when filed, these memberships are dated as confirmed (file_roll)."""
    if not (reason or "").strip():
        raise DomainError(INITIAL_REASON)
    if db.session.scalar(select(func.count()).select_from(Membership).where(
            Membership.collective_id == collective.id)):
        raise DomainError(INITIAL_EXISTS, collective=collective.name)
    people = list(db.session.scalars(
        select(Person).join(HouseholdMember, HouseholdMember.person_id == Person.id)
        .join(Household, Household.id == HouseholdMember.household_id)
        .where(Household.collective_id == collective.id, HouseholdMember.left_on.is_(None))
        .distinct().order_by(Person.id)))
    out = [coll_ops.admit(actor, p, collective, "original", began_on, reason=reason)
           for p in people]
    audit.record(actor, "membership.initial_roll.propose", "collective", collective.fbfbm,
                 {"began_on": began_on, "members": len(out),
                  "households": db.session.scalar(select(func.count()).select_from(Household)
                                                  .where(Household.collective_id
                                                         == collective.id))}, reason)
    return out


def applications(collective: Collective) -> list[MembershipApplication]:
    return list(db.session.scalars(select(MembershipApplication).where(
        MembershipApplication.collective_id == collective.id).order_by(MembershipApplication.id)))


# ------------------------------------------------------------------------------ assembly
def open_assembly(actor, collective: Collective, meeting_date: dt.date,
                  attendees: list[int], reason: str | None = None) -> MemberAssembly:
    """The members' assembly: its date, the voting roll (every member on the day: the
    threshold counts ALL members, not those present) and attendance."""
    rule = charter_rule(collective)
    voters = {m.person_id for m in members_on(collective, meeting_date)}
    if not voters:
        raise DomainError(NO_MEMBERS)
    attendees = list(dict.fromkeys(attendees))
    if any(p not in voters for p in attendees):
        raise DomainError(NOT_MEMBER)
    a = MemberAssembly(collective_id=collective.id, meeting_date=meeting_date,
                 members_total=len(voters), vote_num=rule.vote_num, vote_den=rule.vote_den,
                 created_by=audit.actor_name(actor))
    db.session.add(a)
    db.session.flush()
    if attendees:
        db.session.execute(insert(AssemblyAttendance), [{"assembly_id": a.id, "person_id": p}
                                                for p in attendees])
    audit.record(actor, "membership.assembly.open", "member_assembly", a.id,
                 {"collective": collective.fbfbm, "meeting_date": meeting_date,
                  "members_total": a.members_total, "attended": len(attendees),
                  "threshold": f"{a.vote_num}/{a.vote_den}"}, reason)
    return a


def attended(assembly: MemberAssembly) -> int:
    return db.session.scalar(select(func.count()).select_from(AssemblyAttendance).where(
        AssemblyAttendance.assembly_id == assembly.id))


def resolve(actor, assembly: MemberAssembly, application: MembershipApplication, yes: int, no: int,
            abstain: int, decision: str, reason: str | None = None) -> AssemblyResolution:
    """Record the assembly's votes on one applicant.  A decision (admit or reject) carried by
    fewer than the charter's share of ALL members is refused and recorded: the assembly has
    then not decided, and the application stays before it."""
    if decision not in ("admit", "reject"):
        raise DomainError(DECISION)
    if application.collective_id != assembly.collective_id:
        raise DomainError(OTHER_COLLECTIVE)
    if application.status not in ("pending", "objection_upheld"):  # upheld: back to the vote
        raise DomainError(NOT_PENDING, status=application.status)
    if today() < assembly.meeting_date:
        raise DomainError(NOT_YET, date=assembly.meeting_date)
    yes, no, abstain = int(yes), int(no), int(abstain)
    present = attended(assembly)
    if min(yes, no, abstain) < 0 or yes + no + abstain > present:
        raise DomainError(VOTES, votes=yes + no + abstain, present=present)
    counted = yes if decision == "admit" else no
    if counted * assembly.vote_den < assembly.vote_num * assembly.members_total:
        refuse(actor, DomainError(THRESHOLD, counted=counted, total=assembly.members_total,
                                  num=assembly.vote_num, den=assembly.vote_den,
                                  needed=assembly.needed),
               "membership.assembly.refused", "membership_application", application.id,
               {"assembly": assembly.id, "yes": yes, "no": no, "abstain": abstain,
                "decision": decision}, reason)
    r = AssemblyResolution(assembly_id=assembly.id, application_id=application.id, yes=yes, no=no,
                   abstain=abstain, decision=decision, recorded_by=audit.actor_name(actor))
    db.session.add(r)
    application.status = "admitted" if decision == "admit" else "rejected"
    db.session.flush()
    audit.record(actor, "membership.assembly.resolution", "membership_application",
                 application.id, {"assembly": assembly.id, "yes": yes, "no": no,
                                  "abstain": abstain, "decision": decision}, reason)
    return r


def resolutions(assembly: MemberAssembly) -> list[AssemblyResolution]:
    return list(db.session.scalars(select(AssemblyResolution).where(
        AssemblyResolution.assembly_id == assembly.id).order_by(AssemblyResolution.id)))


# ------------------------------------------------------------------------------ notice, filing
def post_notice(actor, assembly: MemberAssembly, posted_on: dt.date | None = None,
                days: int | None = None, reason: str | None = None) -> RollNotice:
    """The proposed roll (members plus those the assembly admitted) posted publicly (公示) for
    the charter's notice days (default 7)."""
    if not resolutions(assembly):
        raise DomainError(NO_DECISIONS)
    posted_on = posted_on or today()
    days = max(days or charter_rule(assembly.collective).notice_days, 7)
    n = RollNotice(collective_id=assembly.collective_id, assembly_id=assembly.id,
                   posted_on=posted_on, ends_on=posted_on + dt.timedelta(days=days),
                   status="posted")
    db.session.add(n)
    db.session.flush()
    audit.record(actor, "membership.notice.post", "roll_notice", n.id,
                 {"assembly": assembly.id, "from": posted_on, "to": n.ends_on}, reason)
    return n


def proposed(notice: RollNotice) -> list[MembershipApplication]:
    """The applications the notice proposes to add to the roll."""
    return list(db.session.scalars(select(MembershipApplication).join(
        AssemblyResolution, AssemblyResolution.application_id == MembershipApplication.id).where(
        AssemblyResolution.assembly_id == notice.assembly_id, AssemblyResolution.decision == "admit",
        MembershipApplication.status.in_(("admitted", "filed"))).order_by(MembershipApplication.id)))


def lodge_objection(actor, notice: RollNotice, objector: str, text: str,
                    application: MembershipApplication | None = None, lodged_on: dt.date | None = None,
                    reason: str | None = None) -> RollObjection:
    lodged_on = lodged_on or today()
    if lodged_on > today():
        raise DomainError(FUTURE, what=str(_l("An objection")), today=today())
    if application is not None and application.id not in {a.id for a in proposed(notice)}:
        raise DomainError(OBJECTION_APP)
    if notice.status != "posted" or not (notice.posted_on <= lodged_on <= notice.ends_on):
        raise DomainError(NOTICE_CLOSED, start=notice.posted_on, end=notice.ends_on)
    guard_text(actor, "membership", {"text": text}, "membership.objection.refused",
               "roll_notice", notice.id)
    o = RollObjection(notice_id=notice.id, application_id=getattr(application, "id", None),
                  objector=(objector or "").strip()[:50], text=text, lodged_on=lodged_on)
    db.session.add(o)
    db.session.flush()
    audit.record(actor, "membership.objection.lodge", "roll_objection", o.id,
                 {"notice": notice.id, "application": o.application_id}, reason)
    return o


def resolve_objection(actor, objection: RollObjection, resolution: str, reasons: str,
                      on: dt.date | None = None) -> RollObjection:
    """Heard and resolved with reasons.  An objection upheld against an applicant takes them off
    the proposed roll and back to the assembly."""
    if resolution not in ("upheld", "dismissed") or not (reasons or "").strip():
        raise DomainError(RESOLUTION)
    if objection.resolution is not None:
        raise DomainError(RESOLVED)
    guard_text(actor, "membership", {"reasons": reasons}, "membership.objection.refused",
               "roll_objection", objection.id)
    objection.resolution, objection.reasons = resolution, reasons.strip()
    objection.resolved_by, objection.resolved_on = audit.actor_name(actor), on or today()
    if resolution == "upheld" and objection.application is not None \
            and objection.application.status == "admitted":
        objection.application.status = "objection_upheld"
    db.session.flush()
    audit.record(actor, "membership.objection.resolve", "roll_objection", objection.id,
                 {"resolution": resolution, "application": objection.application_id},
                 reasons)
    return objection


def objections(notice: RollNotice) -> list[RollObjection]:
    return list(db.session.scalars(select(RollObjection).where(
        RollObjection.notice_id == notice.id).order_by(RollObjection.id)))


def file_roll(actor, notice: RollNotice, filed_on: dt.date | None = None,
              reason: str | None = None) -> RollNotice:
    """After the notice ran and every objection was resolved: those the assembly admitted (and
    no upheld objection removed) join the roll through app.collectives, and the final roll is
    filed with the township as a PDF."""
    filed_on = filed_on or today()
    if filed_on > today():
        raise DomainError(FUTURE, what=str(_l("The filing")), today=today())
    if notice.status == "filed":
        raise DomainError(FILED)
    if filed_on < notice.ends_on:
        raise DomainError(NOTICE_OPEN, end=notice.ends_on)
    open_ = [o for o in objections(notice) if o.resolution is None]
    if open_:
        raise DomainError(OBJECTIONS_OPEN, n=len(open_))
    collective = notice.collective
    for a in proposed(notice):
        if a.status != "admitted":
            continue
        coll_ops.admit(actor, a.person, collective, ROLL_BASIS[a.basis], notice.assembly.meeting_date,
                       confirmed_on=filed_on, reason=f"成员大会决议（{notice.assembly.meeting_date}）")
        a.status = "filed"
    coll_ops.confirm_unconfirmed(actor, collective, filed_on,
                                 reason=f"成员名册公示期满备案（{notice.ends_on}）")
    rows = roll_rows(collective)
    pdf = render_roll_pdf(collective, notice, rows, filed_on)
    notice.status, notice.filed_on, notice.filed_by = "filed", filed_on, audit.actor_name(actor)
    notice.roll_size, notice.pdf = len(rows), pdf
    notice.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    db.session.flush()
    audit.record(actor, "membership.roll.file", "roll_notice", notice.id,
                 {"collective": collective.fbfbm, "filed_on": filed_on, "roll_size": len(rows),
                  "sha256": notice.pdf_sha256}, reason)
    return notice


def roll_rows(collective: Collective) -> list[dict]:

    out = []
    for m in coll_ops.roll(collective):
        out.append({"person_id": m.person_id, "name": m.person.name,
                    "id_masked": mask(m.person.id_number),
                    "basis": str(coll_ops.BASIS_LABELS.get(m.basis, m.basis)),
                    "began_on": m.began_on, "settled": settled_in_town(m.person_id)})
    return out


def render_roll_pdf(collective, notice, rows, filed_on) -> bytes:

    return render_document("membership/roll_print.html",
                           {"collective": collective, "notice": notice, "rows": rows,
                            "filed_on": filed_on,
                            "objections": objections(notice), "resolutions":
                            resolutions(notice.assembly)}, "zh")


def filed_rolls(like: str | None = None) -> list[RollNotice]:
    q = select(RollNotice).join(Collective).where(RollNotice.status == "filed")
    if like:
        q = q.where(Collective.fbfbm.like(like))
    return list(db.session.scalars(q.order_by(RollNotice.filed_on.desc(), RollNotice.id)))


# ------------------------------------------------------------------------------ shares
def _years_between(a: dt.date, b: dt.date) -> int:
    if b <= a:
        return 0
    return b.year - a.year - ((b.month, b.day) < (a.month, a.day))


def _add_years(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def labour_years(birth_date: dt.date, began_on: dt.date, base: dt.date,
                 rule: CharterRule) -> int:
    """Whole years of labour age (charter: from/to) spent as a member up to `base`."""
    start = max(_add_years(birth_date, rule.labour_age_from), began_on)
    end = min(_add_years(birth_date, rule.labour_age_to), base)
    return _years_between(start, end)


def latest_quantification(collective: Collective) -> Quantification | None:
    return db.session.scalars(select(Quantification).where(
        Quantification.collective_id == collective.id).order_by(
        Quantification.base_date.desc(), Quantification.id.desc())).first()


def quantify(actor, collective: Collective, base_date: dt.date, asset_value_fen: int,
             reason: str | None = None) -> Quantification:
    """股份量化: the operating assets' value and the shares per charter — a population share for
    every member on the roll (settled in town or not), labour-age shares for each whole year of
    labour age as a member, and the collective share as a percentage of all shares.  Under
    static management (the default) the first quantification stands (生不增、死不减)."""
    if not isinstance(asset_value_fen, int) or isinstance(asset_value_fen, bool) \
            or asset_value_fen < 0:
        raise DomainError(VALUE)
    rule = charter_rule(collective)
    last = latest_quantification(collective)
    if last is not None:
        if rule.management == "static":
            raise DomainError(STATIC_MGMT, on=last.base_date)
        if base_date < _add_years(last.base_date, rule.adjust_every_years):
            raise DomainError(TOO_EARLY, years=rule.adjust_every_years, on=last.base_date)
    members = db.session.execute(select(Membership.person_id, Membership.began_on,
                                        Person.birth_date).join(Person).where(
        Membership.collective_id == collective.id, Membership.began_on <= base_date,
        (Membership.ended_on.is_(None)) | (Membership.ended_on > base_date)).order_by(
        Membership.person_id)).all()
    if not members:
        raise DomainError(NO_MEMBERS)
    homes = households_of([m.person_id for m in members], collective.id)
    holdings = []
    for person_id, began_on, birth_date in members:
        pop = rule.population_centi
        lab = rule.labour_centi_per_year * labour_years(birth_date, began_on, base_date, rule)
        holdings.append({"person_id": person_id, "household_id": homes.get(person_id),
                         "population_centi": pop, "labour_centi": lab,
                         "shares_centi": pop + lab, "source": "quantified"})
    member_centi = sum(h["shares_centi"] for h in holdings)
    bp = rule.collective_share_bp
    collective_centi = member_centi * bp // (10000 - bp)
    q = Quantification(collective_id=collective.id, base_date=base_date,
                       asset_value_fen=asset_value_fen, collective_share_bp=bp,
                       member_centi=member_centi, collective_centi=collective_centi,
                       management=rule.management, created_by=audit.actor_name(actor))
    db.session.add(q)
    db.session.flush()
    if last is not None:  # periodic adjustment: the earlier holdings end
        for h in db.session.scalars(select(Holding).where(
                Holding.quantification_id == last.id, Holding.ended_on.is_(None))):
            h.ended_on, h.end_ground = base_date, "adjusted"
    db.session.execute(insert(Holding), [{**h, "quantification_id": q.id} for h in holdings])
    audit.record(actor, "membership.shares.quantify", "share_quantification", q.id,
                 {"collective": collective.fbfbm, "base_date": base_date,
                  "asset_value_fen": asset_value_fen, "members": len(holdings),
                  "member_centi": member_centi, "collective_centi": collective_centi,
                  "management": rule.management}, reason)
    return q


def holdings(q: Quantification, current: bool = True) -> list[Holding]:
    s = select(Holding).where(Holding.quantification_id == q.id)
    if current:
        s = s.where(Holding.ended_on.is_(None))
    return list(db.session.scalars(s.order_by(Holding.id)))


def inherit(actor, holding: Holding, heir: Person, on: dt.date,
            reason: str | None = None) -> Holding:
    """On a member's death their shares pass to an heir in the same household (死不减)."""
    hh_ids = {m.household_id for m in db.session.scalars(select(HouseholdMember).where(
        HouseholdMember.person_id == heir.id))}
    if holding.ended_on is not None or holding.household_id is None \
            or holding.household_id not in hh_ids or heir.id == holding.person_id:
        raise DomainError(INHERIT)
    q = holding.quantification
    died = db.session.scalar(select(Membership.id).where(
        Membership.person_id == holding.person_id, Membership.collective_id == q.collective_id,
        Membership.end_ground == "death", Membership.ended_on <= on))
    if died is None:  # a living member's shares never pass (乡村振兴促进法 art 55)
        raise DomainError(INHERIT_DEATH)
    holding.ended_on, holding.end_ground = on, "inherited"
    new = Holding(quantification_id=holding.quantification_id, person_id=heir.id,
                  household_id=holding.household_id, population_centi=holding.population_centi,
                  labour_centi=holding.labour_centi, shares_centi=holding.shares_centi,
                  source="inherited", inherited_from_id=holding.id)
    db.session.add(new)
    db.session.flush()
    audit.record(actor, "membership.shares.inherit", "share_holding", new.id,
                 {"from_holding": holding.id, "from_person": holding.person_id,
                  "heir": heir.id, "shares_centi": holding.shares_centi, "on": on}, reason)
    return new


def household_certificate(q: Quantification, household: Household) -> dict:
    """The content of a household's share certificate (股权证)."""
    rows = [h for h in holdings(q) if h.household_id == household.id]
    total = sum(h.shares_centi for h in rows)
    value = q.asset_value_fen * total // q.total_centi if q.total_centi else 0
    return {"collective": q.collective, "household": household, "quantification": q,
            "rows": rows, "total_centi": total, "value_fen": value,
            "number": f"{q.collective.fbfbm}-{q.id:04d}-{household.cbfbm[-4:]}"}


def render_certificate_pdf(q: Quantification, household: Household, locale: str = "zh") -> bytes:

    return render_document("membership/share_certificate.html",
                           {"c": household_certificate(q, household)}, locale)


# ------------------------------------------------------------------------------ distribution
def allocate(amount: int, weights: list[tuple[object, int]]) -> dict:
    """Largest-remainder (Hamilton) rounding, exact to the fen.

    `weights` are (key, shares) with integer shares > 0 and keys that order totally.  Each key
    gets floor(amount * shares / total); the fen left over (fewer than the number of keys) go
    one each to the largest remainders, ties broken by the key ascending.  So the payouts sum
    to `amount` exactly and each differs from its exact share by less than one fen."""
    total = sum(w for _, w in weights)
    if total <= 0:
        raise ValueError("no shares")
    out, rem = {}, []
    for key, w in weights:
        q, r = divmod(amount * w, total)
        out[key] = q
        rem.append((-r, key))
    left = amount - sum(out.values())
    rem.sort()
    for _, key in rem[:left]:
        out[key] += 1
    return out


def _refuse_rule(actor, collective, what, rule, note, reason):
    refuse(actor, DomainError(RULE_ART55, what=what), "distribution.refused", "collective",
           collective.fbfbm, {"rule": rule, "note": note}, reason)


def check_rule(actor, collective: Collective, rule: dict | None, note: str | None,
               reason: str | None = None) -> dict:
    """A distribution pays per share; a rule that excludes or reduces anyone — above all by
    hukou place, residence or settlement, in a field or in free text — is refused and recorded."""
    rule = dict(rule or {})
    for key, value in rule.items():
        if key == "per" and value == "share":
            continue
        if value in (None, "", [], {}, False):
            continue
        _refuse_rule(actor, collective, f"'{key}'", rule, note, reason)
    guard_text(actor, "membership", {"note": note, "reason": reason}, "distribution.refused",
               "collective", collective.fbfbm, rule=RULE_ART55_TEXT)
    if coll_ops.ties_to_residence(note) or excludes_anyone(note):
        _refuse_rule(actor, collective, str(_l("The note")), rule, note, reason)
    rule.setdefault("per", "share")
    return {k: v for k, v in rule.items() if k == "per"}


# A run pays every share alike, so a note that speaks of leaving anyone out or paying anyone
# less — whoever they are — contradicts it; and the groups the law protects are named by many
# paraphrases (students, soldiers, prisoners, married-out women, migrant workers, "locals only").
# The same words are in the database's distribution_excludes_text() (migration 0027).
_EXCLUDE_WORDS = (
    "不分", "不参与", "不参加", "不享受", "不享有", "不予", "不算", "不计", "不发", "不给",
    "减半", "减少", "减发", "少分", "少发", "扣除", "扣减", "扣发", "取消", "除外", "排除",
    "剔除", "停发", "暂停", "只分", "只给", "只发", "只限", "仅限", "仅分", "仅给", "仅发",
    "才分", "才能分", "才给", "才享", "限于", "打折", "折半", "一半", "半额",
    "学生", "读书", "上学", "在校", "服刑", "监狱", "坐牢", "劳改", "参军", "服役", "当兵",
    "军人", "现役", "外嫁", "出嫁", "嫁出", "外出", "打工", "务工", "在外", "外地", "本地",
    "在村", "非本村", "商品粮", "买房", "购房", "县城", "留守",
    "exclud", "except", "only", "half", "reduc", "withh", "deduct", "local", "student",
    "prison", "soldier", "militar", "migrant", "away", "married", "abroad")
_CJK_DIGITS = re.compile(r"(?<=[\u3400-\u9fff])[0-9]+(?=[\u3400-\u9fff])")


def excludes_anyone(text: str | None) -> str | None:
    """The word in `text` (normalised: full-width, traditional, spaces and digits between
    characters folded away) that would leave someone out of a per-share run, if any."""

    compact = _CJK_DIGITS.sub("", normalise(text or ""))
    return next((w for w in _EXCLUDE_WORDS if w in compact), None)


RULE_ART55_TEXT = Rule(
    "distribution.rule.art55",
    _l("%(field)s says \"%(word)s\": hukou place, residence or settling in town is never a ground "
       "to exclude or reduce a member's income distribution. Refused and recorded."), ART55)


def distribution_roll(q: Quantification) -> list[tuple[int, int | None, int]]:
    """(person_id, household_id, shares_centi) of every current holder, summed per person."""
    rows = db.session.execute(select(Holding.person_id, func.min(Holding.household_id),
                                     func.sum(Holding.shares_centi)).where(
        Holding.quantification_id == q.id, Holding.ended_on.is_(None)).group_by(
        Holding.person_id).order_by(Holding.person_id)).all()
    return [(p, h, int(s)) for p, h, s in rows]


def distribute(actor, collective: Collective, amount_fen: int, paid_on: dt.date,
               rule: dict | None = None, note: str | None = None, pay: bool = True,
               reason: str | None = None) -> Distribution:
    """A distribution run: `amount_fen` paid per share over the collective's current shares
    (the collective share's part stays with the collective), exact to the fen."""
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0 \
            or amount_fen >= 2 ** 53:
        raise DomainError(AMOUNT, amount=amount_fen)
    rule = check_rule(actor, collective, rule, note, reason)
    q = latest_quantification(collective)
    if q is None:
        raise DomainError(NO_SHARES)
    roll = distribution_roll(q)
    weights = [((0, p), s) for p, _, s in roll]
    if q.collective_centi:
        weights.append(((1, 0), q.collective_centi))  # the collective share sorts last on ties
    total = sum(w for _, w in weights)
    amounts = allocate(amount_fen, weights)
    d = Distribution(collective_id=collective.id, quantification_id=q.id, amount_fen=amount_fen,
                     paid_on=paid_on, rule=rule, rule_note=note, total_centi=total,
                     status="computed", created_by=audit.actor_name(actor))
    db.session.add(d)
    db.session.flush()
    rows = [{"distribution_id": d.id, "person_id": p, "household_id": h, "shares_centi": s,
             "amount_fen": amounts[(0, p)]} for p, h, s in roll]
    if q.collective_centi:
        rows.append({"distribution_id": d.id, "person_id": None, "household_id": None,
                     "shares_centi": q.collective_centi, "amount_fen": amounts[(1, 0)]})
    db.session.execute(insert(Payout), rows)
    audit.record(actor, "distribution.run", "distribution", d.id,
                 {"collective": collective.fbfbm, "amount_fen": amount_fen, "paid_on": paid_on,
                  "quantification": q.id, "payouts": len(rows), "total_centi": total,
                  "rule": rule}, reason)
    if pay:
        mark_paid(actor, d, reason)
    return d


def mark_paid(actor, d: Distribution, reason: str | None = None) -> Distribution:
    """Paid: the database checks once more that every holder has their full payout, the sum is
    exact and nobody is a fen off (distribution_check_complete)."""
    if d.status == "paid":
        raise DomainError(PAID)
    d.status = "paid"
    db.session.flush()
    audit.record(actor, "distribution.paid", "distribution", d.id,
                 {"amount_fen": d.amount_fen}, reason)
    return d


def payouts(d: Distribution) -> list[Payout]:
    return list(db.session.scalars(select(Payout).where(Payout.distribution_id == d.id)
                                   .order_by(Payout.person_id.is_(None), Payout.person_id)))


def distributions(collective: Collective | None = None, like: str | None = None) \
        -> list[Distribution]:
    q = select(Distribution).join(Collective)
    if collective is not None:
        q = q.where(Distribution.collective_id == collective.id)
    if like:
        q = q.where(Collective.fbfbm.like(like))
    return list(db.session.scalars(q.order_by(Distribution.paid_on.desc(), Distribution.id)))


def fen(amount: int) -> str:
    sign = "-" if amount < 0 else ""
    a = abs(int(amount))
    return f"{sign}{a // 100}.{a % 100:02d}"


def shares(centi: int) -> str:
    return f"{centi // 100}.{centi % 100:02d}"


@dataclass
class PayoutLine:
    name: str
    id_masked: str
    household: str
    shares: str
    amount: str
    account_masked: str
    settled: bool


def payout_lines(d: Distribution) -> list[PayoutLine]:

    accounts = {b.person_id: b for b in db.session.scalars(select(BankAccount))}
    out = []
    for p in payouts(d):
        if p.person_id is None:
            out.append(PayoutLine(str(_l("collective share (集体股)")), "", "",
                                  shares(p.shares_centi), fen(p.amount_fen), "", False))
            continue
        hh = db.session.get(Household, p.household_id) if p.household_id else None
        acc = accounts.get(p.person_id)
        out.append(PayoutLine(p.person.name, mask(p.person.id_number),
                              hh.cbfbm if hh else "", shares(p.shares_centi), fen(p.amount_fen),
                              acc.account_masked if acc else "", settled_in_town(p.person_id)))
    return out


def _csv(rows: list[list]) -> bytes:

    buf = io.StringIO()
    w = SafeCSVWriter(buf)
    for r in rows:
        w.writerow([str(x) for x in r])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def payout_csv(d: Distribution) -> bytes:
    """The payout list, personal information masked."""
    rows = [["姓名 name", "身份证号 ID (masked)", "承包方编码 household", "股份 shares",
             "金额（元） amount (yuan)", "账号 account (masked)"]]
    rows += [[x.name, x.id_masked, x.household, x.shares, x.amount, x.account_masked]
             for x in payout_lines(d)]
    return _csv(rows)


def bank_batch_csv(actor, d: Distribution, reason: str | None = None) -> bytes:
    """The bank batch file (account, name, amount in yuan): unmasked, so every download is
    recorded.  Members without an account on file are listed with an empty account."""
    accounts = {b.person_id: b for b in db.session.scalars(select(BankAccount))}
    rows = [["account", "name", "amount"]]
    missing = 0
    for p in payouts(d):
        if p.person_id is None or p.amount_fen == 0:
            continue
        acc = accounts.get(p.person_id)
        missing += acc is None
        rows.append([acc.account_no if acc else "", p.person.name, fen(p.amount_fen)])
    audit.record(actor, "distribution.bank_file.download", "distribution", d.id,
                 {"rows": len(rows) - 1, "without_account": missing}, reason)
    return _csv(rows)


def render_payouts_pdf(d: Distribution, locale: str = "zh") -> bytes:

    return render_document("membership/payouts_print.html",
                           {"d": d, "lines": payout_lines(d), "fen": fen}, locale)


def set_bank_account(actor, person: Person, bank_name: str, account_no: str,
                     reason: str | None = None) -> BankAccount:
    account_no = "".join((account_no or "").split())
    if not account_no.isdigit() or not 8 <= len(account_no) <= 34:
        raise DomainError(BANK)
    b = db.session.get(BankAccount, person.id)
    if b is None:
        b = BankAccount(person_id=person.id, bank_name=bank_name, account_no=account_no,
                        recorded_by=audit.actor_name(actor))
        db.session.add(b)
    else:
        b.bank_name, b.account_no, b.recorded_by = bank_name, account_no, audit.actor_name(actor)
    db.session.flush()

    audit.record(actor, "membership.bank_account.set", "person", person.id,
                 {"bank": bank_name, "account": mask_account(account_no)}, reason)
    return b


# ------------------------------------------------------------------------------ the farmer
def my_membership(person_id: int) -> dict:
    """我的成员身份 / 我的股份 / 我的分红 for a farmer's own page: of every county's row of
    them (the account names one; docs/scaling.md §3)."""
    rows = rows_of([person_id]) or [0]
    ms = list(db.session.scalars(select(Membership).where(Membership.person_id.in_(rows))
                                 .order_by(Membership.id)))
    hs = list(db.session.scalars(select(Holding).where(Holding.person_id.in_(rows),
                                                       Holding.ended_on.is_(None))))
    ps = list(db.session.execute(select(Payout, Distribution).join(
        Distribution, Distribution.id == Payout.distribution_id).where(
        Payout.person_id.in_(rows)).order_by(Distribution.paid_on.desc())).all())
    return {"memberships": ms, "holdings": hs,
            "payouts": [{"distribution": d, "amount": fen(p.amount_fen),
                         "shares": shares(p.shares_centi)} for p, d in ps],
            "applications": list(db.session.scalars(select(MembershipApplication).where(
                MembershipApplication.person_id.in_(rows))))}


def parse_yuan(text: str) -> int:
    """'1234.56' yuan -> 123456 fen, exactly (no floats); anything else is refused."""
    import re

    s = (text or "").strip().replace(",", "")
    m = re.fullmatch(r"(\d{1,13})(?:\.(\d{1,2}))?", s)
    if not m:
        raise DomainError(AMOUNT, amount=text)
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))
