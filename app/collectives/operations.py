"""Collective economic organisations and their membership roll: the rules and every write."""
from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.audit import operations as audit
from app.divisions.models import Division
from app.errors import DomainError, Rule
from app.extensions import db
from app.grounds import guard_text, lawful_ground

from .models import JOIN_BASES, LAWFUL_END_GROUNDS, Collective, Membership

ART17 = _l("农村集体经济组织法 (Rural Collective Economic Organisations Law, 2025) art 17")
ART17_55 = _l("农村集体经济组织法 art 17; 乡村振兴促进法 (Rural Revitalisation Promotion Law) "
              "art 55; 农村土地承包法 art 27")
NYT2539 = _l("NY/T 2539-2016 rural land contract data standard")

FBFBM_FORMAT = Rule("collective.fbfbm",
                    _l("Issuing-party code %(code)s must be 14 digits: a known 12-digit village "
                       "code and a 2-digit group number."), NYT2539)
FBFBM_TAKEN = Rule("collective.fbfbm.duplicate",
                   _l("Issuing-party code %(code)s is already registered."), NYT2539, 409)
JOIN_BASIS = Rule("membership.basis",
                  _l("%(basis)s is not a recognised basis for joining (original, birth, "
                     "marriage, adoption, policy resettlement, members' assembly decision)."),
                  ART17)
ALREADY_MEMBER = Rule("membership.duplicate",
                      _l("%(name)s is already an active member of %(collective)s."), ART17, 409)
NOT_ACTIVE = Rule("membership.not_active",
                  _l("This membership has already ended; an ended membership is history and "
                     "is never rewritten."), ART17, 409)
GROUND_FORBIDDEN = Rule(
    "membership.end.forbidden_ground",
    _l("Membership may not be ended because of %(ground)s: membership ends only on death, loss "
       "of PRC nationality, membership of another collective, becoming a civil servant, or "
       "another ground set by law or the charter. Studying, military service, migrant work, "
       "business, divorce, widowhood, imprisonment, marrying out without another membership and "
       "settling in town never end it."),
    ART17_55,
)
GROUND_UNKNOWN = Rule(
    "membership.end.unknown_ground",
    _l("'%(ground)s' is not a ground on which membership ends. Lawful grounds: death, loss of "
       "PRC nationality, membership of another collective, becoming a civil servant, another "
       "ground set by law or the charter."),
    ART17,
)
NO_OTHER_MEMBERSHIP = Rule(
    "membership.end.no_other_membership",
    _l("%(name)s holds no membership of another collective, so this ground does not apply: "
       "someone who marries out and gains no other membership keeps theirs."),
    ART17,
)
CHARTER_BASIS = Rule(
    "membership.end.charter_basis",
    _l("Ending membership on a ground set by law or the charter must cite that law or charter "
       "article."),
    ART17,
)
END_BEFORE_BEGIN = Rule("membership.end.date",
                        _l("The end date cannot be before the membership began."), ART17)

# Grounds people try that the law refuses, with how the UI names them.
FORBIDDEN_GROUNDS = {
    "settled_in_town": _l("settling in town (进城落户)"),
    "study": _l("studying away"),
    "military_service": _l("military service"),
    "migrant_work": _l("migrant work"),
    "business": _l("running a business"),
    "divorce": _l("divorce"),
    "widowhood": _l("widowhood"),
    "imprisonment": _l("imprisonment"),
    "married_out": _l("marrying out without another membership"),
}
GROUND_LABELS = {
    "death": _l("death"),
    "nationality_lost": _l("loss of PRC nationality"),
    "other_membership": _l("membership of another collective"),
    "civil_servant": _l("became a civil servant (contract civil servants excepted)"),
    "law_or_charter": _l("another ground set by law or the charter"),
}
BASIS_LABELS = {
    "original": _l("original member"), "birth": _l("birth"), "marriage": _l("marriage"),
    "adoption": _l("adoption"), "resettlement": _l("policy resettlement"),
    "assembly_decision": _l("members' assembly decision"),
}


def create_collective(actor, fbfbm: str, name: str, leader_name: str | None = None,
                      address: str | None = None, reason: str | None = None) -> Collective:
    fbfbm = (fbfbm or "").strip()
    if not (len(fbfbm) == 14 and fbfbm.isdigit()) or db.session.get(Division, fbfbm[:12]) is None:
        raise DomainError(FBFBM_FORMAT, code=fbfbm)
    if db.session.scalar(select(Collective.id).where(Collective.fbfbm == fbfbm)):
        raise DomainError(FBFBM_TAKEN, code=fbfbm)
    c = Collective(fbfbm=fbfbm, name=name, village_code=fbfbm[:12], leader_name=leader_name,
                   address=address)
    db.session.add(c)
    db.session.flush()
    audit.record(actor, "collective.create", "collective", fbfbm, {"name": name}, reason)
    return c


def active_membership(person_id: int, collective_id: int) -> Membership | None:
    return db.session.scalar(select(Membership).where(
        Membership.person_id == person_id, Membership.collective_id == collective_id,
        Membership.status == "active"))


def admit(actor, person, collective: Collective, basis: str, began_on: dt.date,
          confirmed_on: dt.date | None = None, reason: str | None = None) -> Membership:
    if basis not in JOIN_BASES:
        raise DomainError(JOIN_BASIS, basis=basis)
    if active_membership(person.id, collective.id):
        raise DomainError(ALREADY_MEMBER, name=person.name, collective=collective.name)
    m = Membership(person_id=person.id, collective_id=collective.id, basis=basis,
                   began_on=began_on, confirmed_on=confirmed_on)
    db.session.add(m)
    db.session.flush()
    audit.record(actor, "membership.admit", "membership", m.id,
                 {"person_id": person.id, "collective": collective.fbfbm, "basis": basis,
                  "began_on": began_on}, reason)
    return m


def end_membership(actor, membership: Membership, ground: str, ended_on: dt.date,
                   note: str | None = None, rights_kept_until: dt.date | None = None,
                   reason: str | None = None) -> Membership:
    """End a membership on a ground of art 17; every other ground is refused and recorded."""
    ground = lawful_ground(actor, ground, LAWFUL_END_GROUNDS, FORBIDDEN_GROUNDS, GROUND_FORBIDDEN,
                           GROUND_UNKNOWN, "membership.end.refused", "membership", membership.id,
                           reason)
    guard_text(actor, "membership_other" if ground == "other_membership" else "membership",
               {"note": note, "reason": reason}, "membership.end.refused", "membership",
               membership.id)  # a lawful ground used as a disguise (art 17)
    if membership.status != "active":
        raise DomainError(NOT_ACTIVE)
    if ended_on < membership.began_on:
        raise DomainError(END_BEFORE_BEGIN)
    if ground == "other_membership":
        other = db.session.scalar(select(Membership.id).where(
            Membership.person_id == membership.person_id,
            Membership.collective_id != membership.collective_id,
            Membership.status == "active"))
        if other is None:
            raise DomainError(NO_OTHER_MEMBERSHIP, name=membership.person.name)
    if ground == "law_or_charter" and not (note or "").strip():
        raise DomainError(CHARTER_BASIS)
    if rights_kept_until is not None and ground not in ("other_membership", "civil_servant"):
        rights_kept_until = None  # only those two cases may keep rights for a period (art 17)
    membership.status = "ended"
    membership.ended_on = ended_on
    membership.end_ground = ground
    membership.end_note = note
    membership.rights_kept_until = rights_kept_until
    db.session.flush()
    audit.record(actor, "membership.end", "membership", membership.id,
                 {"ground": ground, "ended_on": ended_on, "note": note,
                  "rights_kept_until": rights_kept_until}, reason)
    return membership


def roll(collective: Collective, include_ended: bool = False) -> list[Membership]:
    q = select(Membership).where(Membership.collective_id == collective.id)
    if not include_ended:
        q = q.where(Membership.status == "active")
    return list(db.session.scalars(q.order_by(Membership.id)))
