"""Collective economic organisations and their membership roll: the rules and every write."""
from __future__ import annotations

import datetime as dt
import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import Integer, func, select, text

from app import guardtext, signals
from app.access import user_can
from app.audit import operations as audit
from app.divisions.models import Division
from app.errors import DomainError, Rule
from app.extensions import db
from app.grounds import guard_text, lawful_ground, refuse
from app.guardtext import normalise

from .models import JOIN_BASES, LAWFUL_END_GROUNDS, CharterClause, Collective, Membership

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
    _l("Ending membership on a ground set by law or the charter must cite an article of a named "
       "law (%(laws)s) or a membership-ending clause of this collective's charter register in "
       "force on the day; a note is not a ground."),
    ART17,
)
CHARTER_UNLAWFUL = Rule(
    "charter.clause.unlawful",
    _l("A charter clause may not end membership for moving the hukou, settling in town or "
       "living elsewhere; hukou place, residence or settling in town is never a ground."),
    ART17_55,
)
NOTE_DISGUISE = Rule(
    "membership.end.disguised_ground",
    _l("The reason given ties the end of membership to the hukou, settling in town or living "
       "elsewhere: a lawful ground may not be used to disguise one the law forbids."),
    ART17_55,
)
CLAUSE_NO = Rule("charter.clause.number",
                 _l("Clause %(no)s is already in the charter register of %(collective)s."),
                 ART17, 409)

# Laws that may set a further ground (art 17 "other grounds set by law"): cite one of these by
# name and article.  Kept closed so that a "law" cannot be invented in a text field.
NAMED_LAWS = ("农村集体经济组织法", "民法典", "国籍法", "公务员法", "农村土地承包法")

# Words that tie membership to the hukou, settling in town or residence: a charter clause that
# ends membership, or a note on ending it on law_or_charter, that contains one is refused.  The
# text is normalised as the guard's detector reads it (entities, NFKC, traditional, spacing).
_RESIDENCE = re.compile(
    "户口|户籍|落户|进城|城镇|迁出|迁走|迁往|迁离|外迁|农转非|非农|居住|常住|外出|离村|离开本村|"
    "不在本村|定居|城里|城市|市民|hukou|settl|resid|town|city")


def ties_to_residence(text: str | None) -> bool:
    """The residence words above, or anything the guard's detector reads as moving the hukou,
    living elsewhere or settling in town (its lexicon: 搬到县里, 在外地生活 …)."""
    return bool(_RESIDENCE.search(normalise(text or ""))) or \
        bool(guardtext.check("membership", text or ""))


# An article as laws number them: 第十七条, 17条, 第十七条第二款第三项 — nothing else.
_NUM = "[0-9一二三四五六七八九十百零〇两]+"
ARTICLE = re.compile(f"第?{_NUM}条(?:第?{_NUM}款)?(?:第?{_NUM}项)?|{_NUM}")

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


def _rows_of(person_id: int):
    """Every person row of this row's ID number (one row per county, docs/scaling.md §3): a
    subquery of ids (app.people's `rows_of`, which this lower layer cannot import)."""
    return text("SELECT q.id FROM person p JOIN person q ON q.id_number = p.id_number "
                "WHERE p.id = :rows_of_p").bindparams(rows_of_p=person_id) \
        .columns(id=Integer).subquery()


def active_membership(person_id: int, collective_id: int) -> Membership | None:
    """The active membership of this person (any county's row of them) in the collective."""
    return db.session.scalar(select(Membership).where(
        Membership.person_id.in_(select(_rows_of(person_id).c.id)),
        Membership.collective_id == collective_id, Membership.status == "active"))


OUT_OF_SCOPE = Rule(
    "membership.out_of_scope",
    _l("%(name)s belongs to %(where)s, outside your jurisdiction: admission there is decided by "
       "that collective (members' assembly) or the land bureau that covers it, not by admitting "
       "the person here."),
    _l("农村集体经济组织法 arts 11–13 (membership confirmed by the organisation itself); Sanquan "
       "access policy: a jurisdiction is never widened by one's own action"), 403)


def check_reaches_person(actor, person, rule: Rule = None) -> None:
    """Refuse when a staff account acts on a person who currently belongs (membership, household
    place or hukou) only outside its jurisdiction: doing so would widen its own scope."""
    if actor is None or isinstance(actor, str) or actor.role == "admin":
        return
    scope = next((s for s in signals.send(signals.person_scope, person.id) if s is not None),
                 None)  # app.people answers
    if scope is None or not scope.division_codes:
        return  # a person with no current place yet: nothing to widen into
    if not user_can(actor, (actor.role,), scope):
        refuse(actor, DomainError(rule or OUT_OF_SCOPE, name=person.name,
                                  where=", ".join(scope.division_codes)),
               "scope.widening.refused", "person", person.id, {"where": scope.division_codes})


def admit(actor, person, collective: Collective, basis: str, began_on: dt.date,
          confirmed_on: dt.date | None = None, reason: str | None = None) -> Membership:
    if basis not in JOIN_BASES:
        raise DomainError(JOIN_BASIS, basis=basis)
    check_reaches_person(actor, person)
    # the person's row in the collective's county, made if this is their first roll there (one
    # person row per county, docs/scaling.md §3; migration 0045)
    pid = db.session.scalar(text("SELECT person_row_in(:p, :c)"),
                            {"p": person.id, "c": collective.fbfbm[:6]})
    if active_membership(pid, collective.id):
        raise DomainError(ALREADY_MEMBER, name=person.name, collective=collective.name)
    m = Membership(person_id=pid, collective_id=collective.id, basis=basis,
                   began_on=began_on, confirmed_on=confirmed_on)
    db.session.add(m)
    db.session.flush()
    audit.record(actor, "membership.admit", "membership", m.id,
                 {"person_id": person.id, "collective": collective.fbfbm, "basis": basis,
                  "began_on": began_on}, reason)
    return m


def confirm_unconfirmed(actor, collective: Collective, confirmed_on: dt.date,
                        reason: str | None = None) -> int:
    """Date the confirmation of the active memberships that were proposed but not yet
    confirmed (an initial roll the members' assembly has now confirmed and posted); a
    confirmation already dated is never rewritten."""
    ms = list(db.session.scalars(select(Membership).where(
        Membership.collective_id == collective.id, Membership.status == "active",
        Membership.confirmed_on.is_(None), Membership.began_on <= confirmed_on)))
    for m in ms:
        m.confirmed_on = confirmed_on
    db.session.flush()
    if ms:
        audit.record(actor, "membership.confirm", "collective", collective.fbfbm,
                     {"confirmed_on": confirmed_on, "memberships": [m.id for m in ms]}, reason)
    return len(ms)


def add_charter_clause(actor, collective: Collective, clause_no: str, text: str,
                       adopted_on: dt.date, ends_membership: bool = False,
                       reason: str | None = None) -> CharterClause:
    """A clause of the collective's charter, into its register.  A clause that ends membership
    for moving the hukou, settling in town or living elsewhere is refused and recorded."""
    clause_no, text = (clause_no or "").strip(), (text or "").strip()
    if ends_membership and ties_to_residence(text):
        refuse(actor, DomainError(CHARTER_UNLAWFUL), "charter.clause.refused", "collective",
               collective.fbfbm, {"clause_no": clause_no, "text": text}, reason)
    if db.session.scalar(select(CharterClause.id).where(
            CharterClause.collective_id == collective.id, CharterClause.clause_no == clause_no)):
        raise DomainError(CLAUSE_NO, no=clause_no, collective=collective.name)
    c = CharterClause(collective_id=collective.id, clause_no=clause_no, text=text,
                      ends_membership=ends_membership, adopted_on=adopted_on,
                      recorded_by=audit.actor_name(actor))
    db.session.add(c)
    db.session.flush()
    audit.record(actor, "charter.clause.add", "collective", collective.fbfbm,
                 {"clause": c.id, "clause_no": clause_no, "ends_membership": ends_membership,
                  "adopted_on": adopted_on}, reason)
    return c


def charter(collective: Collective) -> list[CharterClause]:
    return list(db.session.scalars(select(CharterClause).where(
        CharterClause.collective_id == collective.id).order_by(CharterClause.id)))


def end_membership(actor, membership: Membership, ground: str, ended_on: dt.date,
                   note: str | None = None, rights_kept_until: dt.date | None = None,
                   reason: str | None = None, law: str | None = None,
                   article: str | None = None, charter_clause=None) -> Membership:
    """End a membership on a ground of art 17; every other ground is refused and recorded.
    `law_or_charter` cites `law` (one of NAMED_LAWS) and `article`, or a `charter_clause` of
    this collective that ends membership; a note alone is no ground, and a note or reason tying
    the end to the hukou or residence is refused as a disguise."""
    ground = lawful_ground(actor, ground, LAWFUL_END_GROUNDS, FORBIDDEN_GROUNDS, GROUND_FORBIDDEN,
                           GROUND_UNKNOWN, "membership.end.refused", "membership", membership.id,
                           reason)
    guard_text(actor, "membership_other" if ground == "other_membership" else "membership",
               {"note": note, "reason": reason}, "membership.end.refused", "membership",
               membership.id)  # a lawful ground used as a disguise (art 17)
    clause_id = getattr(charter_clause, "id", charter_clause)
    law, article = (law or "").strip() or None, (article or "").strip() or None
    if ground == "law_or_charter":
        said = {"note": note, "law": law, "article": article, "clause": clause_id}
        if ties_to_residence(note) or ties_to_residence(reason):
            refuse(actor, DomainError(NOTE_DISGUISE), "membership.end.refused", "membership",
                   membership.id, {"ground": ground, **said}, reason)
        clause = db.session.get(CharterClause, clause_id) if clause_id else None
        cited_clause = clause is not None and clause.collective_id == membership.collective_id \
            and clause.ends_membership and clause.adopted_on <= ended_on
        cited_law = law in NAMED_LAWS and bool(article) and \
            bool(ARTICLE.fullmatch(re.sub(r"\s+", "", article)))
        if not (cited_clause or cited_law):
            refuse(actor, DomainError(CHARTER_BASIS, laws="、".join(NAMED_LAWS)),
                   "membership.end.refused", "membership", membership.id,
                   {"ground": ground, **said}, reason)
        if cited_clause:
            law, article = None, None
        else:
            clause_id = None
    else:
        law, article, clause_id = None, None, None
    if membership.status != "active":
        raise DomainError(NOT_ACTIVE)
    if ended_on < membership.began_on:
        raise DomainError(END_BEFORE_BEGIN)
    if ground == "other_membership":
        # the other membership is often in another county (marrying into another county's
        # village), under the person's row there: every row of the ID number is read
        other = db.session.scalar(select(Membership.id).where(
            Membership.person_id.in_(select(_rows_of(membership.person_id).c.id)),
            Membership.collective_id != membership.collective_id,
            Membership.status == "active"))
        if other is None:
            raise DomainError(NO_OTHER_MEMBERSHIP, name=membership.person.name)
    if rights_kept_until is not None and ground not in ("other_membership", "civil_servant"):
        rights_kept_until = None  # only those two cases may keep rights for a period (art 17)
    membership.status = "ended"
    membership.ended_on = ended_on
    membership.end_ground = ground
    membership.end_note = note
    membership.rights_kept_until = rights_kept_until
    membership.end_law, membership.end_article = law, article
    membership.end_charter_clause_id = clause_id
    db.session.flush()
    audit.record(actor, "membership.end", "membership", membership.id,
                 {"ground": ground, "ended_on": ended_on, "note": note,
                  "rights_kept_until": rights_kept_until, "law": law, "article": article,
                  "charter_clause": clause_id}, reason)
    return membership


def roll(collective: Collective, include_ended: bool = False) -> list[Membership]:
    q = select(Membership).where(Membership.collective_id == collective.id)
    if not include_ended:
        q = q.where(Membership.status == "active")
    return list(db.session.scalars(q.order_by(Membership.id)))


def memberships_of(person_id: int) -> list:
    """A person's memberships, with their collective's name and code (current first), in every
    county: every row of their ID number (one person row per county, docs/scaling.md §3)."""
    return db.session.execute(text("""
        SELECT c.name, c.fbfbm, ms.status, ms.basis, ms.began_on, ms.ended_on, ms.end_ground,
               ms.end_note, ms.rights_kept_until FROM person p
        JOIN person q ON q.id_number = p.id_number
        JOIN membership ms ON ms.person_id = q.id
        JOIN collective c ON c.id = ms.collective_id
        WHERE p.id = :p ORDER BY ms.status, ms.began_on"""), {"p": person_id}).all()


def register_from_delivery(actor, fbfbm: str, name: str, village_code: str,
                           leader_name: str | None, address: str | None) -> int:
    """An issuing party (FBF) of a validated delivery: added when missing (1), else left (0)."""
    return db.session.execute(text(
        """INSERT INTO collective (fbfbm, name, village_code, leader_name, address)
           VALUES (:f, :n, :v, :l, :addr) ON CONFLICT (fbfbm, county_code) DO NOTHING"""),
        {"f": fbfbm, "n": name, "v": village_code, "l": leader_name, "addr": address}).rowcount


def insert_homestead_collectives_from_staging(batch_id: int) -> int:
    """The village collective (village code + '00') of a delivery's homesteads that name no
    issuing party, set-wise from the batch's valid ZJD features."""
    return db.session.execute(text("""INSERT INTO collective (fbfbm, name, village_code)
             SELECT DISTINCT substr(f.code, 1, 12) || '00', d.name || '集体经济组织', d.code
             FROM import_feature f JOIN division d ON d.code = substr(f.code, 1, 12)
             WHERE f.batch_id = :b AND f.layer = 'ZJD' AND f.status = 'valid'
               AND coalesce(f.attrs->>'FBFBM', '') = ''
             ON CONFLICT (fbfbm, county_code) DO NOTHING"""), {"b": batch_id}).rowcount


def collectives(like: str | None = None) -> list[Collective]:
    stmt = select(Collective).order_by(Collective.fbfbm)
    if like:
        stmt = stmt.where(Collective.fbfbm.like(like))
    return list(db.session.scalars(stmt))


def active_member_counts() -> dict[int, int]:
    """{collective id: number of active memberships}."""
    return dict(db.session.execute(
        select(Membership.collective_id, func.count()).where(Membership.status == "active")
        .group_by(Membership.collective_id)).all())


def by_code(fbfbm: str) -> Collective | None:
    return db.session.scalar(select(Collective).where(Collective.fbfbm == fbfbm))


def count_active_members(like: str | None = None) -> int:
    ids = select(Collective.id)
    if like:
        ids = ids.where(Collective.fbfbm.like(like))
    return db.session.scalar(select(func.count(Membership.id)).where(
        Membership.collective_id.in_(ids.scalar_subquery()), Membership.status == "active"))
