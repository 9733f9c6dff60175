"""Settlement in town (进城落户) and the rights guard.

Approving a settlement changes the hukou place of the persons in it and nothing else: every
land-contract right, homestead right, membership and entitlement stays exactly as it was
(农村土地承包法 art 27; 乡村振兴促进法 art 55; source document items 1, 4, 6, 14).  No field,
document type, condition or decision step of a settlement may be about giving up a right; an
attempt to attach one is refused with the law and recorded (domain.md §9)."""
from __future__ import annotations

import datetime as dt
import hashlib
import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text

from app import guardtext
from app.access import reaches
from app.audit import operations as audit
from app.collectives.operations import GROUND_LABELS as MEMBERSHIP_GROUNDS
from app.dates import add_months
from app.divisions.models import Division
from app.errors import DomainError, Rule
from app.extensions import db
from app.grounds import guard_text, refuse
from app.people.models import Person
from app.people.operations import move_hukou, rows_of, same_person
from app.rights.operations import ART27_55
from app.rights.operations import GROUND_LABELS as RIGHT_GROUNDS

from .models import (
    BASES,
    CONDITIONS,
    DOCUMENT_TYPES,
    REFUSAL_REASONS,
    HukouMove,
    ResidencePermit,
    SettlementApplication,
    SettlementDocument,
    SettlementMember,
    SettlementTown,
)

ITEM1 = _l("长治市户籍制度改革实施细则 (Changzhi hukou reform rules) item 1: lawful stable "
           "residence; spouse, unmarried children and parents living with the applicant")
ITEM6 = _l("长治市户籍制度改革实施细则 item 6: a residence permit after six months' residence")

RIGHTS_CONDITION = Rule(
    "settlement.rights_condition",
    _l("Settling in town may not be made conditional on giving up the land-contract right, the "
       "homestead right or the collective income-distribution right, nor refer to it: %(what)s "
       "is refused and recorded."), ART27_55)
UNKNOWN_FIELD = Rule("settlement.field",
                     _l("'%(field)s' is not part of a settlement application."), ITEM1)
BAD_RELATION = Rule(
    "settlement.relation",
    _l("%(name)s cannot move with this application (%(why)s): only the spouse, unmarried "
       "children and parents who live with the applicant may."), ITEM1)
NOT_A_TOWN = Rule("settlement.town",
                  _l("%(town)s is not a town open to settlement in the city's list."), ITEM1)
BASIS_INCOMPLETE = Rule("settlement.basis",
                        _l("The residence basis '%(basis)s' needs %(what)s."), ITEM1)
BAD_DESTINATION = Rule(
    "settlement.destination",
    _l("The hukou goes to %(expected)s for this basis: an owned house to its own address; a "
       "rental or dormitory to the employer's collective household or the community collective "
       "household of the local police station."), ITEM1)
PERMIT = Rule("settlement.permit",
              _l("Residence permit %(number)s %(why)s."), ITEM6)
UNKNOWN_DOCUMENT = Rule("settlement.document_type",
                        _l("'%(doc_type)s' is not a document of a settlement case (identity and "
                           "residence evidence only)."), ITEM1)
UNKNOWN_CONDITION = Rule("settlement.condition",
                         _l("'%(condition)s' is not a condition a settlement decision may "
                            "carry."), ITEM1)
NOT_OPEN = Rule("settlement.decided", _l("This application has been decided (%(status)s)."),
                ITEM1, 409)
NEEDS_REASON = Rule("settlement.reason",
                    _l("A refusal needs its reasons from the list of lawful reasons (the "
                       "residence, the permit, the persons moving, the documents); a note can "
                       "only add to them."), ITEM1)
UNKNOWN_REASON = Rule("settlement.refusal_reason",
                      _l("'%(reason)s' is not a lawful reason to refuse a settlement."), ITEM1)

# Names (of fields, document types, conditions) that are about a right at all: a settlement case
# has none.  Free text (notes, reasons, file names, addresses) goes through the rights guard's
# normalising detector instead (app/guardtext.py), which also reads disguised wordings.
_RIGHTS_WORDS = re.compile(
    r"give[ _-]?up|surrender|relinquish|waive|waiver|withdraw|hand[ _-]?back|return[ _-]?"
    r"(the[ _-]?)?land|退出|放弃|交回|退回|退还|收回|自愿有偿|承包地|承包经营权|宅基地|"
    r"收益分配|分配权|成员资格|contract[ _-]?right|land[ _-]?contract|homestead|membership|"
    r"distribution|income[ _-]?right", re.IGNORECASE)


def rights_related(value) -> bool:
    """A name about a right, or a text the detector refuses for a settlement."""
    if not value:
        return False
    return bool(_RIGHTS_WORDS.search(str(value))) or bool(guardtext.check("settlement", value))


def guard_settlement_text(actor, fields: dict, action: str, obj_id=None) -> None:
    """Every free-text field of a settlement record through the detector (settlement policy:
    no surrender, no condition), refused with art 27 / art 55 and recorded."""
    guard_text(actor, "settlement", fields, action, "settlement_application", obj_id,
               rule=RIGHTS_CONDITION)


_who = audit.actor_name


def guard_fields(actor, given: dict, known, obj_id=None, known_pattern=None) -> None:
    """The extra-field guard, for the HTML form and the JSON API alike: every key of `given`
    that is not in `known` (nor matches `known_pattern`) goes to guard_extra."""
    extra = {k: v for k, v in given.items()
             if k not in known and not (known_pattern and known_pattern.match(k))}
    if extra:
        guard_extra(actor, extra, obj_id)


def applications(like: str | None = None, limit: int = 1000) -> list[SettlementApplication]:
    """Applications, newest first; with `like`, those with a member from a division LIKE it."""
    stmt = select(SettlementApplication).order_by(SettlementApplication.id.desc())
    if like:
        stmt = stmt.where(SettlementApplication.id.in_(
            select(SettlementMember.application_id).where(
                SettlementMember.from_division_code.like(like))))
    return list(db.session.scalars(stmt.limit(limit)))


def applications_of_person(person_id: int | None) -> list[SettlementApplication]:
    """The applications naming this person, from any county's row of them (docs/scaling.md §3)."""
    return list(db.session.scalars(select(SettlementApplication).join(SettlementMember).where(
        SettlementMember.person_id.in_(rows_of([person_id]) or [0]))
        .distinct().order_by(SettlementApplication.id.desc())))


def permit_by_number(number: str | None) -> ResidencePermit | None:
    return db.session.scalar(select(ResidencePermit).where(ResidencePermit.number == number)) \
        if number else None


def guard_extra(actor, extra: dict | None, obj_id=None) -> None:
    """Fields a settlement application does not have: a rights-related one is refused with
    art 27 / art 55 and recorded; any other is refused as unknown."""
    for key, value in (extra or {}).items():
        if rights_related(key) or rights_related(value):
            refuse(actor, DomainError(RIGHTS_CONDITION, what=f"'{key}'"),
                   "settlement.refused.rights_field", "settlement_application", obj_id,
                   {"field": key, "value": str(value)[:200]})
        raise DomainError(UNKNOWN_FIELD, field=key)


DEFAULT_TOWNS = [  # source document item 1: the city's districts, the zone, county seats
    *[(c, "urban_district", "") for c in ("140403", "140404", "140405", "140406")],
    ("140471", "high_tech_zone", ""),
    *[(c, "county_seat", "县城") for c in ("140423", "140425", "140426", "140427", "140428",
                                           "140429", "140430", "140431")],
]


def ensure_towns() -> int:
    """The default list of towns open to settlement (idempotent; staff add designated towns)."""
    made = 0
    for code, kind, suffix in DEFAULT_TOWNS:
        d = db.session.get(Division, code)
        if d is None:
            continue
        name = d.name + suffix
        if db.session.scalar(select(SettlementTown.id).where(SettlementTown.name == name)) is None:
            db.session.add(SettlementTown(division_code=code, name=name, kind=kind))
            made += 1
    db.session.flush()
    return made


def towns() -> list[SettlementTown]:
    return list(db.session.scalars(select(SettlementTown).where(SettlementTown.active)
                                   .order_by(SettlementTown.kind, SettlementTown.name)))


def record_permit(actor, person: Person, number: str, town: SettlementTown, address: str,
                  resident_since: dt.date, issued_on: dt.date,
                  valid_until: dt.date | None = None) -> ResidencePermit:
    """Record a residence permit (居住证); it is issued after six months' residence."""
    guard_settlement_text(actor, {"number": number, "address": address},
                          "settlement.refused.rights_field")
    if issued_on < add_months(resident_since, 6):
        raise DomainError(PERMIT, number=number, why=_l("was issued before six months' "
                                                       "residence"))
    p = ResidencePermit(person_id=person.id, number=number, town_id=town.id, address=address,
                        resident_since=resident_since, issued_on=issued_on,
                        valid_until=valid_until, recorded_by=_who(actor))
    db.session.add(p)
    db.session.flush()
    audit.record(actor, "settlement.permit", "person", person.id,
                 {"permit": number, "town": town.name, "since": resident_since,
                  "issued": issued_on})
    return p


def _check_members(applicant: Person, members: list[dict]) -> None:
    # one human, one place on the application: a person has a row per county of their rolls
    # (docs/scaling.md §3), so rows are told apart by ID number, never by row
    seen = {applicant.id_number}
    for m in members:
        person = db.session.get(Person, m["person_id"])
        rel = m.get("relation")
        why = None
        if person.id_number in seen:
            why = _l("the applicant or someone already moving with them (the same ID number)")
        elif rel not in ("spouse", "child", "parent"):
            why = _l("relation '%(r)s' is not spouse, unmarried child or parent", r=rel)
        elif rel == "child" and not m.get("unmarried"):
            why = _l("a married child settles on their own application")
        elif not m.get("lives_with_applicant", True):
            why = _l("does not live with the applicant")
        elif rel == "child" and person.birth_date <= applicant.birth_date:
            why = _l("a child younger than the applicant is expected")
        elif rel == "parent" and person.birth_date >= applicant.birth_date:
            why = _l("a parent older than the applicant is expected")
        if why is not None:
            raise DomainError(BAD_RELATION, name=person.name, why=why)
        seen.add(person.id_number)


MEMBER_OUT_OF_SCOPE = Rule(
    "settlement.member_out_of_scope",
    _l("%(name)s has hukou in %(where)s, outside your jurisdiction: that hukou office records "
       "their own application (or the move is coordinated between the two offices)."),
    _l("国务院关于进一步推进户籍制度改革的意见 (国发〔2014〕25号); Sanquan access policy: a "
       "jurisdiction is never widened by one's own action"), 403)


def _check_in_jurisdiction(actor, person_ids: list[int]) -> None:
    """Every co-mover's hukou must be within the officer's jurisdiction, like the applicant's:
    adding someone to a case would otherwise open their records to the officer."""
    if actor is None or isinstance(actor, str) or actor.role == "admin":
        return
    for pid in person_ids:
        p = db.session.get(Person, pid)
        if not reaches(actor.jurisdiction_code, p.hukou_division_code):
            refuse(actor, DomainError(MEMBER_OUT_OF_SCOPE, name=p.name,
                                      where=p.hukou_division_code or "—"),
                   "scope.widening.refused", "person", p.id, {"where": p.hukou_division_code})


def _check_basis(f: dict, applicant: Person, town: SettlementTown, today: dt.date) \
        -> ResidencePermit | None:
    basis = f["basis"]
    if basis not in BASES:
        raise DomainError(BASIS_INCOMPLETE, basis=basis, what=_l("to be one of the three "
                                                                  "lawful bases"))
    permit = None
    if basis == "owned_house":
        if not (f.get("property_certificate_no") or f.get("purchase_contract_no")):
            raise DomainError(BASIS_INCOMPLETE, basis=basis, what=_l(
                "a property certificate, or a purchase contract filed with the housing "
                "authority"))
        if not f.get("living_there"):
            raise DomainError(BASIS_INCOMPLETE, basis=basis,
                              what=_l("the applicant actually living there"))
        if f.get("destination") != "house_address" or \
                f.get("destination_address") != f.get("residence_address"):
            raise DomainError(BAD_DESTINATION, expected=_l("the house's own address"))
    else:
        if basis == "rental" and not f.get("rental_registration_no"):
            raise DomainError(BASIS_INCOMPLETE, basis=basis, what=_l(
                "the rental's registration with the housing authority"))
        if basis == "dormitory" and not f.get("employer_name"):
            raise DomainError(BASIS_INCOMPLETE, basis=basis, what=_l("the employer"))
        permit = db.session.get(ResidencePermit, f.get("residence_permit_id") or 0)
        if permit is None:
            raise DomainError(BASIS_INCOMPLETE, basis=basis, what=_l("a residence permit"))
        # the permit may name the applicant's row of another county (docs/scaling.md §3)
        if not same_person(permit.person_id, applicant.id):
            raise DomainError(PERMIT, number=permit.number, why=_l("is not the applicant's"))
        if permit.town_id != town.id:
            raise DomainError(PERMIT, number=permit.number, why=_l("is for another town"))
        if permit.valid_until and permit.valid_until < today:
            raise DomainError(PERMIT, number=permit.number, why=_l("has expired"))
        dest = f.get("destination")
        if dest == "employer_collective" and not f.get("employer_name"):
            raise DomainError(BAD_DESTINATION, expected=_l("a named employer's collective "
                                                           "household"))
        if dest == "community_collective" and not f.get("police_station"):
            raise DomainError(BAD_DESTINATION, expected=_l(
                "the community collective household of a named police station"))
        if dest not in ("employer_collective", "community_collective"):
            raise DomainError(BAD_DESTINATION, expected=_l("a collective household"))
    return permit


APPLICATION_FIELDS = ("basis", "residence_address", "destination", "destination_address",
                      "police_station", "property_certificate_no", "purchase_contract_no",
                      "living_there", "rental_registration_no", "employer_name",
                      "residence_permit_id")


def apply(actor, applicant: Person, town: SettlementTown | None, members: list[dict],
          today: dt.date | None = None, extra: dict | None = None, **fields) \
        -> SettlementApplication:
    """A settlement application: the applicant, those moving with them, the town and the lawful
    stable residence.  `extra` holds whatever else a form or API call sent: refused."""
    today = today or dt.date.today()
    guard_extra(actor, extra)
    unknown = set(fields) - set(APPLICATION_FIELDS)
    if unknown:
        guard_extra(actor, {k: fields[k] for k in unknown})
    guard_settlement_text(actor, {k: v for k, v in fields.items()
                                  if isinstance(v, str) and k in APPLICATION_FIELDS},
                          "settlement.refused.rights_field")
    if town is None or not town.active:
        raise DomainError(NOT_A_TOWN, town=getattr(town, "name", "—"))
    _check_members(applicant, members)
    _check_in_jurisdiction(actor, [m["person_id"] for m in members])
    _check_basis(fields, applicant, town, today)
    a = SettlementApplication(
        applicant_id=applicant.id, town_id=town.id, created_by=_who(actor),
        **{k: (v if v != "" else None) for k, v in fields.items()})
    a.living_there = bool(fields.get("living_there"))
    db.session.add(a)
    db.session.flush()
    for m in [{"person_id": applicant.id, "relation": "self"}, *members]:
        p = db.session.get(Person, m["person_id"])
        db.session.add(SettlementMember(
            application_id=a.id, person_id=p.id, relation=m["relation"],
            unmarried=m.get("unmarried"), lives_with_applicant=m.get("lives_with_applicant",
                                                                     True),
            from_division_code=p.hukou_division_code, from_address=p.hukou_address))
    db.session.flush()
    audit.record(actor, "settlement.apply", "settlement_application", a.id,
                 {"applicant": applicant.id, "town": town.name, "basis": a.basis,
                  "members": [m["person_id"] for m in members]})
    return a


def add_document(actor, a: SettlementApplication, doc_type: str, filename: str,
                 data: bytes) -> SettlementDocument:
    """File identity or residence evidence.  A document typed as (or named as) a withdrawal
    or surrender of a right is refused with the law and recorded."""
    if rights_related(doc_type):
        refuse(actor, DomainError(RIGHTS_CONDITION, what=f"'{doc_type}'"),
               "settlement.refused.rights_document", "settlement_application", a.id,
               {"doc_type": doc_type, "filename": filename})
    guard_settlement_text(actor, {"filename": filename}, "settlement.refused.rights_document",
                          a.id)
    if doc_type not in DOCUMENT_TYPES:
        raise DomainError(UNKNOWN_DOCUMENT, doc_type=doc_type)
    if a.status != "submitted":
        raise DomainError(NOT_OPEN, status=a.status)
    d = SettlementDocument(application_id=a.id, doc_type=doc_type, filename=filename[:200],
                           sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                           uploaded_by=_who(actor))
    db.session.add(d)
    db.session.flush()
    audit.record(actor, "settlement.document", "settlement_application", a.id,
                 {"doc_type": doc_type, "sha256": d.sha256})
    return d


def _guard_decision(actor, a, conditions, note) -> list[str]:
    conditions = [c.strip() for c in (conditions or []) if c and c.strip()]
    for c in conditions:
        if rights_related(c):
            refuse(actor, DomainError(RIGHTS_CONDITION, what=f"'{c}'"),
                   "settlement.refused.rights_condition", "settlement_application", a.id,
                   {"condition": c})
        if c not in CONDITIONS:
            raise DomainError(UNKNOWN_CONDITION, condition=c)
    guard_settlement_text(actor, {"note": note}, "settlement.refused.rights_condition", a.id)
    return conditions


def approve(actor, a: SettlementApplication, conditions: list[str] | None = None,
            note: str | None = None, today: dt.date | None = None) -> SettlementApplication:
    """Approve: each person's hukou moves to the destination — and nothing else changes."""
    if a.status != "submitted":
        raise DomainError(NOT_OPEN, status=a.status)
    conditions = _guard_decision(actor, a, conditions, note)
    today = today or dt.date.today()
    for m in a.members:
        p = m.person
        db.session.add(HukouMove(person_id=p.id, application_id=a.id,
                                 from_division_code=p.hukou_division_code,
                                 from_address=p.hukou_address,
                                 to_division_code=a.town.division_code,
                                 to_address=a.destination_address, moved_on=today,
                                 moved_by=_who(actor)))
        move_hukou(p, a.town.division_code, a.destination_address)
    a.status, a.decided_by, a.decision_note = "approved", _who(actor), note
    a.conditions, a.decided_at = conditions or None, func.now()
    db.session.flush()
    audit.record(actor, "settlement.approve", "settlement_application", a.id,
                 {"persons": [m.person_id for m in a.members], "to": a.destination_address,
                  "conditions": conditions}, note)
    return a


def reject(actor, a: SettlementApplication, reasons: list[str] | tuple[str, ...],
           note: str | None = None) -> SettlementApplication:
    """Refuse a settlement for reasons of the closed list (REFUSAL_REASONS: the residence, the
    permit, the persons moving, the documents); the note only adds to them.  A reason or note
    about giving up a right is refused with the law and recorded."""
    if a.status != "submitted":
        raise DomainError(NOT_OPEN, status=a.status)
    if isinstance(reasons, str):  # free text alone is not a reason
        note, reasons = (note or reasons), []
    reasons = [r.strip() for r in (reasons or []) if r and r.strip()]
    for r in reasons:
        if rights_related(r):
            refuse(actor, DomainError(RIGHTS_CONDITION, what=f"'{r}'"),
                   "settlement.refused.rights_condition", "settlement_application", a.id,
                   {"reason": r})
    note = (note or "").strip() or None
    _guard_decision(actor, a, [], note)
    for r in reasons:
        if r not in REFUSAL_REASONS:
            raise DomainError(UNKNOWN_REASON, reason=r)
    if not reasons:
        raise DomainError(NEEDS_REASON)
    a.status, a.decided_by, a.decision_note = "rejected", _who(actor), note
    a.refusal_reasons = reasons
    a.decided_at = func.now()
    db.session.flush()
    audit.record(actor, "settlement.reject", "settlement_application", a.id,
                 {"reasons": reasons}, note)
    return a


def snapshot(person_ids: list[int]) -> dict:
    """Everything the rights guard protects for these persons, row by row: their memberships,
    their places in contracting households, those households' rights (with parcels) and
    certificates.  Settling must leave it identical — in every county: a person placed in two
    counties has a row in each (docs/scaling.md §3), and all of them are read."""
    ids = rows_of(person_ids)
    q = {
        "membership": "SELECT to_jsonb(m) FROM membership m WHERE m.person_id = ANY(:p) "
                      "ORDER BY m.id",
        "household_member": "SELECT to_jsonb(h) FROM household_member h "
                            "WHERE h.person_id = ANY(:p) ORDER BY h.id",
        "land_right": """SELECT to_jsonb(r) FROM land_right r WHERE r.holder_household_code IN (
                           SELECT hh.cbfbm FROM household hh JOIN household_member hm
                           ON hm.household_id = hh.id WHERE hm.person_id = ANY(:p))
                           OR r.holder_person_id = ANY(:p) ORDER BY r.id""",
        "land_right_parcel": """SELECT to_jsonb(rp) FROM land_right_parcel rp
                           JOIN land_right r ON r.id = rp.right_id
                           WHERE r.holder_household_code IN (
                           SELECT hh.cbfbm FROM household hh JOIN household_member hm
                           ON hm.household_id = hh.id WHERE hm.person_id = ANY(:p))
                           ORDER BY rp.id""",
        "certificate": """SELECT to_jsonb(c) - 'content' FROM certificate c
                           WHERE c.household_code IN (
                           SELECT hh.cbfbm FROM household hh JOIN household_member hm
                           ON hm.household_id = hh.id WHERE hm.person_id = ANY(:p))
                           ORDER BY c.id""",
    }
    return {k: db.session.execute(text(sql), {"p": ids}).scalars().all() for k, sql in q.items()}


PLACE_GROUNDS = {"death": _l("death"), "joined_other_household": _l("joined another household"),
                 "household_division": _l("household division"),
                 "nationality_lost": _l("nationality lost")}


def rights_kept(a: SettlementApplication) -> dict:
    """For the notice handed over with the settlement (权益保留告知书): per person, exactly what
    they hold today — active memberships, places in contracting households, those households'
    current rights — and what has ended, with its ground and date, so that the notice never
    claims more than is held ("全部保留" only when nothing has ended)."""
    out = []
    for m in a.members:
        p = m.person
        rows = rows_of([p.id])  # every county's row of this person (docs/scaling.md §3)
        memberships = db.session.execute(text("""
            SELECT c.name, c.fbfbm, ms.began_on FROM membership ms
            JOIN collective c ON c.id = ms.collective_id
            WHERE ms.person_id = ANY(:p) AND ms.status = 'active' ORDER BY c.fbfbm"""),
            {"p": rows}).all()
        ended = db.session.execute(text("""
            SELECT c.name, c.fbfbm, ms.ended_on, ms.end_ground, ms.end_note,
                   ms.rights_kept_until FROM membership ms
            JOIN collective c ON c.id = ms.collective_id
            WHERE ms.person_id = ANY(:p) AND ms.status = 'ended' ORDER BY ms.ended_on, c.fbfbm"""),
            {"p": rows}).all()
        households = db.session.execute(text("""
            SELECT hh.cbfbm, hh.name FROM household hh JOIN household_member hm
            ON hm.household_id = hh.id WHERE hm.person_id = ANY(:p) AND hm.left_on IS NULL"""),
            {"p": rows}).all()
        # a place that ended (not one replaced by its next version) and was not taken up again
        # in the same household: the notice names it, it never vanishes
        households_ended = db.session.execute(text("""
            SELECT DISTINCT ON (hh.id) hh.cbfbm, hh.name, hm.left_on, hm.end_ground
            FROM household hh JOIN household_member hm ON hm.household_id = hh.id
            WHERE hm.person_id = ANY(:p) AND hm.left_on IS NOT NULL
              AND hm.end_ground <> 'superseded'
              AND NOT EXISTS (SELECT 1 FROM household_member c WHERE c.household_id = hh.id
                              AND c.person_id = ANY(:p) AND c.left_on IS NULL)
            ORDER BY hh.id, hm.left_on DESC"""), {"p": rows}).all()
        out.append({"person": p, "relation": m.relation, "memberships": memberships,
                    "households": households,
                    "households_ended": [{"cbfbm": h.cbfbm, "name": h.name,
                                          "left_on": h.left_on,
                                          "ground": PLACE_GROUNDS.get(h.end_ground,
                                                                      h.end_ground)}
                                         for h in households_ended],
                    "memberships_ended": [{"name": e.name, "fbfbm": e.fbfbm,
                                           "ended_on": e.ended_on, "note": e.end_note,
                                           "ground": MEMBERSHIP_GROUNDS.get(e.end_ground,
                                                                            e.end_ground),
                                           "rights_kept_until": e.rights_kept_until}
                                          for e in ended]})
    codes = sorted({h.cbfbm for x in out for h in x["households"]})
    rights = db.session.execute(text("""
        SELECT r.kind, r.holder_household_code, r.holder_name, r.contract_code, r.term_start,
               r.term_end, count(rp.id) AS parcels, coalesce(sum(p.scmjm), 0) AS mu,
               string_agg(rp.parcel_code, ', ' ORDER BY rp.parcel_code) AS codes
        FROM land_right r JOIN land_right_parcel rp ON rp.right_id = r.id
        LEFT JOIN parcel p ON p.uid = rp.parcel_uid AND p.end_lifespan IS NULL
        WHERE r.holder_household_code = ANY(:h) AND r.status = 'current'
          AND r.end_lifespan IS NULL
        GROUP BY r.id, r.county_code ORDER BY r.holder_household_code, r.kind"""), {"h": codes}).all()
    rights_ended = db.session.execute(text("""
        SELECT r.kind, r.holder_household_code, r.holder_name, r.contract_code, r.ended_on,
               r.end_ground FROM land_right r
        WHERE r.holder_household_code = ANY(:h) AND r.status = 'ended'
          AND NOT EXISTS (SELECT 1 FROM land_right c WHERE c.uid = r.uid AND c.id <> r.id
                          AND c.status = 'current' AND c.end_lifespan IS NULL)
        ORDER BY r.ended_on, r.kind"""), {"h": codes}).all()
    rights_ended = [{"kind": r.kind, "holder_name": r.holder_name,
                     "contract_code": r.contract_code, "ended_on": r.ended_on,
                     "ground": RIGHT_GROUNDS.get(r.end_ground, r.end_ground)}
                    for r in rights_ended]
    nothing_ended = not rights_ended and not any(x["memberships_ended"] or x["households_ended"]
                                                 for x in out)
    return {"people": out, "rights": rights, "rights_ended": rights_ended,
            "all_kept": nothing_ended}
