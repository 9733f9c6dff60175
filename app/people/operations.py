"""Persons, households (承包方) and their members: the rules and every write."""
from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, text, update

from app.audit import operations as audit
from app.codes import CBFBM_SEQUENCE
from app.collectives.models import Collective, Membership
from app.divisions.models import Division
from app.errors import DomainError, Rule
from app.extensions import db, limiter
from app.grounds import lawful_ground, refuse

from . import idnumber
from .models import CBFLX, YHZGX, Household, HouseholdMember, Person

GB11643 = _l("GB 11643-1999 citizen identification number")
NYT2539 = _l("NY/T 2539-2016 rural land contract data standard")

ID_SHAPE = Rule("person.id_number.shape",
                _l("ID number %(number)s must be 17 digits followed by a digit or X."), GB11643)
ID_BIRTH = Rule("person.id_number.birth_date",
                _l("ID number %(number)s carries an impossible birth date (characters 7–14)."),
                GB11643)
ID_CHECK = Rule("person.id_number.check_digit",
                _l("ID number %(number)s has a wrong check digit: by ISO 7064 MOD 11-2 "
                   "it should end in %(expected)s."), GB11643)
ID_TAKEN = Rule("person.id_number.duplicate",
                _l("A person with ID number %(number)s is already registered."), GB11643, 409)
UNKNOWN_DIVISION = Rule("person.hukou.division",
                        _l("Hukou place %(code)s is not a known administrative division."),
                        _l("GB/T 2260 administrative division codes"))
CBFBM_FORMAT = Rule("household.cbfbm",
                    _l("Contracting-party code %(code)s must be the 14-digit issuing-party code "
                       "followed by a 4-digit sequence in the range of its type (households "
                       "0001–8000, individuals 8001–9000, organisations 9001–9999)."), NYT2539)
CBFBM_FULL = Rule("household.cbfbm.exhausted",
                  _l("No free contracting-party sequence is left for type %(type)s in %(fbfbm)s."),
                  NYT2539)
RELATION = Rule("household.member.relation",
                _l("Relation code %(code)s is not in the relation-to-head code list."), NYT2539)
ALREADY_MEMBER = Rule("household.member.duplicate",
                      _l("%(name)s is already a member of this household."), NYT2539, 409)

_RANGES = CBFBM_SEQUENCE  # NY/T 2539 sequence ranges by CBFLX: one definition, in app.codes
REVEAL_ROLES = ("bureau_staff", "hukou_officer", "collective_officer", "admin")


def parse_id(number: str) -> idnumber.IdInfo:
    try:
        return idnumber.parse(number)
    except idnumber.IdNumberError as e:
        rule = {"shape": ID_SHAPE, "birth_date": ID_BIRTH, "check_digit": ID_CHECK}[e.reason]
        raise DomainError(rule, number=e.number, expected=e.expected or "") from None


def person_by_id_number(number: str) -> Person | None:
    """The registered person with this ID number (checked and normalised first), or None.  A
    person placed in two counties has a row in each (docs/scaling.md §3): this is the first
    registered (lowest id); a rule about the human reads every row (`rows_of`)."""
    info = parse_id(number)
    return db.session.scalar(select(Person).where(Person.id_number == info.number)
                             .order_by(Person.id).limit(1))


def person_with_id_number(number: str | None) -> Person | None:
    """The registered person whose ID number is `number` (spaces trimmed, x upper-cased), without
    checking the number itself; None when there is none (the first registered row, as above)."""
    return db.session.scalar(select(Person).where(Person.id_number == (number or "").strip()
                                                  .upper()).order_by(Person.id).limit(1))


def rows_of(person_ids) -> list[int]:
    """Every person row of the humans these rows are: one row per county that put the person on
    a roll, one human per ID number (docs/scaling.md §3).  A rule about "this person" — what
    settling in town must leave untouched, a withdrawal's co-holders and settlements, a
    person's memberships and places — reads all of them, never the one row it was handed."""
    ids = [int(i) for i in person_ids if i is not None]
    if not ids:
        return []
    return list(db.session.scalars(text(
        "SELECT q.id FROM person p JOIN person q ON q.id_number = p.id_number "
        "WHERE p.id = ANY(:p) ORDER BY q.id"), {"p": ids}))


def move_hukou(person: Person, division_code: str, address: str | None) -> list[int]:
    """The hukou is the human's, one place: every county's row of them moves with it — and only
    the hukou: a row's county is the roll's, never the hukou's, and settling in town changes
    nothing else (docs/scaling.md §3; domain.md §9 rule 1, 农村土地承包法 art 27).
    Returns the rows moved.  The caller records the move (settlement's HukouMove)."""
    ids = rows_of([person.id])
    db.session.execute(update(Person).where(Person.id.in_(ids)).values(
        hukou_division_code=division_code, hukou_address=address),
        execution_options={"synchronize_session": "fetch"})
    return ids


def same_person(a: int | None, b: int | None) -> bool:
    """Rows `a` and `b` are the same human (the same ID number), whatever their counties."""
    if a is None or b is None:
        return False
    return a == b or bool(db.session.scalar(text(
        "SELECT 1 FROM person p JOIN person q ON q.id_number = p.id_number "
        "WHERE p.id = :a AND q.id = :b"), {"a": a, "b": b}))


def households_of_collective(collective_id: int) -> list[Household]:
    return list(db.session.scalars(select(Household).where(
        Household.collective_id == collective_id).order_by(Household.cbfbm)))


def household_by_code(cbfbm: str | None) -> Household | None:
    return db.session.scalar(select(Household).where(Household.cbfbm == cbfbm)) if cbfbm else None


def register_person(actor, id_number: str, name: str, hukou_division_code: str | None = None,
                    hukou_address: str | None = None, phone: str | None = None,
                    reason: str | None = None) -> Person:
    info = parse_id(id_number)
    if db.session.scalar(select(Person.id).where(Person.id_number == info.number)):
        raise DomainError(ID_TAKEN, number=idnumber.mask(info.number))
    if hukou_division_code and db.session.get(Division, hukou_division_code) is None:
        raise DomainError(UNKNOWN_DIVISION, code=hukou_division_code)
    person = Person(id_number=info.number, name=name.strip(), sex=info.sex,
                    birth_date=info.birth_date, hukou_division_code=hukou_division_code,
                    hukou_address=hukou_address, phone=phone)
    db.session.add(person)
    db.session.flush()
    audit.record(actor, "person.register", "person", person.id,
                 {"name": person.name, "id_number": person.id_masked,
                  "hukou_division_code": hukou_division_code}, reason)
    return person


def reveal(actor, person: Person, field: str, purpose: str | None = None) -> str:
    """The unmasked ID number or phone.  Every call is written to the audit log."""
    value = {"id_number": person.id_number, "phone": person.phone}[field]
    audit.record(actor, "person.reveal", "person", person.id, {"field": field},
                 purpose or "viewed unmasked")
    return value or ""


def next_cbfbm(fbfbm: str, cbflx: str = "1") -> str:
    lo, hi = _RANGES[cbflx]
    used = db.session.scalar(
        select(func.max(func.substr(Household.cbfbm, 15, 4))).where(
            Household.cbfbm.like(fbfbm + "%"),
            func.substr(Household.cbfbm, 15, 4).between(f"{lo:04d}", f"{hi:04d}"))
    )
    seq = int(used) + 1 if used else lo
    if seq > hi:
        raise DomainError(CBFBM_FULL, type=CBFLX[cbflx], fbfbm=fbfbm)
    return f"{fbfbm}{seq:04d}"


def check_cbfbm(code: str, fbfbm: str, cbflx: str) -> None:
    lo, hi = _RANGES.get(cbflx, (1, 0))
    if not (len(code) == 18 and code.isdigit() and code.startswith(fbfbm)
            and lo <= int(code[14:]) <= hi):
        raise DomainError(CBFBM_FORMAT, code=code)


def register_household(actor, collective, name: str, head: Person | None = None,
                       cbflx: str = "1", cbfbm: str | None = None, address: str | None = None,
                       phone: str | None = None, reason: str | None = None) -> Household:
    code = cbfbm or next_cbfbm(collective.fbfbm, cbflx)
    check_cbfbm(code, collective.fbfbm, cbflx)
    # the head's row in the household's county (made if need be: docs/scaling.md §3)
    head_id = db.session.scalar(text("SELECT person_row_in(:p, :c)"),
                                {"p": head.id, "c": code[:6]}) if head else None
    hh = Household(cbfbm=code, collective_id=collective.id, cbflx=cbflx, name=name,
                   head_person_id=head_id, address=address, phone=phone)
    db.session.add(hh)
    db.session.flush()
    audit.record(actor, "household.register", "household", code,
                 {"name": name, "collective": collective.fbfbm, "cbflx": cbflx}, reason)
    if head is not None:
        add_member(actor, hh, head, "02", reason=reason)
    return hh


def add_member(actor, household: Household, person: Person, relation: str,
               is_coholder: bool = True, remark: str | None = None,
               joined_on: dt.date | None = None, reason: str | None = None) -> HouseholdMember:
    if relation not in YHZGX:
        raise DomainError(RELATION, code=relation)
    # the person's row in the household's county, made if this is their first place there (one
    # person row per county, docs/scaling.md §3; migration 0045)
    pid = db.session.scalar(text("SELECT person_row_in(:p, :c)"),
                            {"p": person.id, "c": household.cbfbm[:6]})
    if any(m.person_id == pid for m in household.current_members):
        raise DomainError(ALREADY_MEMBER, name=person.name)
    m = HouseholdMember(household_id=household.id, person_id=pid, relation=relation,
                        is_coholder=is_coholder, remark=remark, joined_on=joined_on)
    db.session.add(m)
    db.session.flush()
    db.session.refresh(household)
    audit.record(actor, "household.member.add", "household", household.cbfbm,
                 {"person_id": pid, "relation": relation, "is_coholder": is_coholder},
                 reason)
    return m


# A household place (CBF_JTCY row) never changes in place and is never deleted: it ends on its
# ground and, when something about it changes, a new row begins (issue 11).  Moving a hukou or
# settling in town is never a ground; the database refuses the rest (migration 0012) and any of
# it in a transaction that moves a hukou (0009).
PLACE_END_GROUNDS = ("death", "joined_other_household", "household_division", "nationality_lost")
PLACE_FORBIDDEN = {
    "settled_in_town": _l("settling in town (进城落户)"),
    "hukou_moved": _l("a move of the hukou"),
    "migrant_work": _l("migrant work"),
    "married_out": _l("marrying out without joining another household"),
}
HOUSEHOLD_END_GROUNDS = ("all_members_deceased", "all_members_left")
ART27_55 = _l("农村土地承包法 (Rural Land Contracting Law) art 27; 乡村振兴促进法 (Rural "
              "Revitalisation Promotion Law) art 55")
PLACE_GROUND_FORBIDDEN = Rule(
    "household.member.forbidden_ground",
    _l("A household place does not end because of %(ground)s: it ends on death, joining another "
       "household, the household's division or loss of nationality."), ART27_55)
PLACE_GROUND_UNKNOWN = Rule(
    "household.member.unknown_ground",
    _l("'%(ground)s' is not a ground on which a household place ends (death, joining another "
       "household, the household's division, loss of nationality)."), NYT2539)
PLACE_ENDED = Rule("household.member.ended",
                   _l("This household place has already ended; history is never rewritten."),
                   NYT2539, 409)
HOUSEHOLD_MEMBERS = Rule(
    "household.end.members",
    _l("Household %(code)s still has members (%(names)s): it ends only once every place has "
       "ended on its own ground."), ART27_55, 409)
HOUSEHOLD_GROUND = Rule(
    "household.end.ground",
    _l("'%(ground)s' is not a ground on which a household ends (all members deceased, all "
       "members left for other households)."), ART27_55)


def end_place(actor, member: HouseholdMember, ground: str, left_on: dt.date,
              reason: str | None = None) -> HouseholdMember:
    """End a household place on its ground; a forbidden or unknown ground is refused and
    recorded.  Joining another household: add the new place first (`move_member`)."""
    ground = lawful_ground(actor, ground, PLACE_END_GROUNDS, PLACE_FORBIDDEN,
                           PLACE_GROUND_FORBIDDEN, PLACE_GROUND_UNKNOWN,
                           "household.member.refused", "household",
                           member.household.cbfbm, reason)
    return _end_place(actor, member, ground, left_on, reason)


def _end_place(actor, member, ground, left_on, reason):
    if member.left_on is not None:
        raise DomainError(PLACE_ENDED)
    member.left_on, member.end_ground = left_on, ground
    db.session.flush()
    db.session.refresh(member.household)
    audit.record(actor, "household.member.end", "household", member.household.cbfbm,
                 {"person_id": member.person_id, "ground": ground, "left_on": left_on}, reason)
    return member


def change_member(actor, member: HouseholdMember, on: dt.date, reason: str,
                  relation: str | None = None, is_coholder: bool | None = None,
                  remark: str | None = None) -> HouseholdMember:
    """A change of relation, co-holder flag or remark: the place's row ends as 'superseded' and
    a new row begins."""
    if member.left_on is not None:
        raise DomainError(PLACE_ENDED)
    relation = relation or member.relation
    if relation not in YHZGX:
        raise DomainError(RELATION, code=relation)
    hh = member.household
    _end_place(actor, member, "superseded", on, reason)
    new = HouseholdMember(household_id=hh.id, person_id=member.person_id, relation=relation,
                          is_coholder=member.is_coholder if is_coholder is None else is_coholder,
                          remark=member.remark if remark is None else remark, joined_on=on)
    db.session.add(new)
    db.session.flush()
    db.session.refresh(hh)
    audit.record(actor, "household.member.change", "household", hh.cbfbm,
                 {"person_id": member.person_id, "relation": relation,
                  "is_coholder": new.is_coholder}, reason)
    return new


def move_member(actor, member: HouseholdMember, to: Household, relation: str, on: dt.date,
                reason: str, division: bool = False) -> HouseholdMember:
    """A person joins another household (marriage, adoption) or a divided one: the new place
    begins and the old one ends on that ground."""
    new = add_member(actor, to, member.person, relation, joined_on=on, reason=reason)
    _end_place(actor, member, "household_division" if division else "joined_other_household",
               on, reason)
    return new


def end_household(actor, household: Household, ground: str, ended_on: dt.date,
                  reason: str | None = None) -> Household:
    """A household ends only when every place has ended on its ground (then, and only then, its
    rights may end as "holder extinct")."""
    if ground not in HOUSEHOLD_END_GROUNDS:
        refuse(actor, DomainError(HOUSEHOLD_GROUND, ground=ground), "household.end.refused",
               "household", household.cbfbm, {"ground": ground}, reason)
    current = household.current_members
    if current:
        refuse(actor, DomainError(HOUSEHOLD_MEMBERS, code=household.cbfbm,
                                  names="、".join(m.person.name for m in current)),
               "household.end.refused", "household", household.cbfbm, {"ground": ground},
               reason)
    household.ended_on, household.end_ground = ended_on, ground
    db.session.flush()
    audit.record(actor, "household.end", "household", household.cbfbm,
                 {"ground": ground, "ended_on": ended_on}, reason)
    return household


# ---------------------------------------------------------------------------------------------
# Looking a person up by their full ID number.  A hit confirms a guess: with the mask and the
# birth year shown on the list, about 3,300 guesses rebuild a number, so the lookup is an
# unmasked view like `reveal` — only for roles that may reveal, logged, and counted.

LOOKUP_ROLES = ("farmer", "collective_officer", "bureau_staff", "hukou_officer", "admin")
LOOKUP_NOT_ALLOWED = Rule(
    "person.lookup.role",
    _l("Your role sees ID numbers masked only; search by name instead of by ID number."),
    GB11643, 403)
LOOKUP_TOO_MANY = Rule(
    "person.lookup.limit",
    _l("Too many searches by ID number (%(n)s in an hour); try again later or search by name."),
    GB11643, 429)


def looks_like_id_number(q: str) -> bool:
    q = (q or "").strip().upper()
    return len(q) == 18 and q[:17].isdigit() and (q[17].isdigit() or q[17] == "X")


def lookup_by_id_number(actor, number: str, per_hour: int = 60) -> str:
    """Allow (and record) one search by a full ID number; returns the normalised number."""
    import time

    number = number.strip().upper()
    if actor.role not in LOOKUP_ROLES:
        audit.record(actor, "person.lookup.refused", "person", None,
                     {"query": idnumber.mask(number), "rule": LOOKUP_NOT_ALLOWED.code})
        raise DomainError(LOOKUP_NOT_ALLOWED)
    key = f"sq-idlookup:{actor.id}:{int(time.time() // 3600)}"
    n = limiter.storage.incr(key, 7200)
    if n > per_hour:
        audit.record(actor, "person.lookup.refused", "person", None,
                     {"query": idnumber.mask(number), "rule": LOOKUP_TOO_MANY.code})
        raise DomainError(LOOKUP_TOO_MANY, n=per_hour)
    found = db.session.scalar(select(Person.id).where(Person.id_number == number)
                              .order_by(Person.id).limit(1))  # the first registered row
    audit.record(actor, "person.lookup", "person", found,
                 {"query": idnumber.mask(number), "found": found is not None})
    return number


# --- set-wise registration of a validated delivery (called by app.imports.registration) ---------
# Each reads the batch's valid staging rows (all, or only `record_ids`) and adds what is missing.

def _only(record_ids):
    return ("AND r.id = ANY(:ids)" if record_ids else ""), (record_ids or [])


def insert_households_from_staging(batch_id: int, record_ids: list[int] | None = None) -> int:
    only, ids = _only(record_ids)
    return db.session.execute(text(f"""
        INSERT INTO household (cbfbm, collective_id, cbflx, name, address, phone)
        SELECT r.attrs->>'CBFBM', c.id, r.attrs->>'CBFLX', r.attrs->>'CBFMC', r.attrs->>'CBFDZ',
               r.attrs->>'LXDH'
        FROM import_record r JOIN collective c ON c.fbfbm = substr(r.attrs->>'CBFBM', 1, 14)
        WHERE r.batch_id = :b AND r.tbl = 'CBF' AND r.status = 'valid' {only}
        ON CONFLICT (cbfbm, county_code) DO NOTHING"""), {"b": batch_id, "ids": ids}).rowcount


def insert_persons_from_staging(batch_id: int, record_ids: list[int] | None = None) -> int:
    """Every member with a valid resident ID (household heads are members too), in their
    household's county: a person already registered in another county gets a row in this one
    (one person row per county, docs/scaling.md §3)."""
    only, ids = _only(record_ids)
    return db.session.execute(text(f"""
        INSERT INTO person (id_number, name, sex, birth_date, hukou_division_code, hukou_address,
                            county_code)
        SELECT DISTINCT ON (upper(r.attrs->>'CYZJHM'), left(r.attrs->>'CBFBM', 6))
               upper(r.attrs->>'CYZJHM'), r.attrs->>'CYXM',
               CASE WHEN substr(r.attrs->>'CYZJHM', 17, 1)::int % 2 = 1 THEN '1' ELSE '2' END,
               to_date(substr(r.attrs->>'CYZJHM', 7, 8), 'YYYYMMDD'),
               (SELECT code FROM division WHERE code = substr(r.attrs->>'CBFBM', 1, 12)),
               h.attrs->>'CBFDZ', left(r.attrs->>'CBFBM', 6)
        FROM import_record r LEFT JOIN import_record h ON h.batch_id = r.batch_id
          AND h.tbl = 'CBF' AND h.status <> 'superseded' AND h.attrs->>'CBFBM' = r.attrs->>'CBFBM'
        WHERE r.batch_id = :b AND r.tbl = 'CBF_JTCY' AND r.status = 'valid' {only}
          AND coalesce(r.attrs->>'CYZJLX', '1') = '1'
        ON CONFLICT (id_number, county_code) DO NOTHING"""), {"b": batch_id, "ids": ids}).rowcount


def insert_members_from_staging(batch_id: int, record_ids: list[int] | None = None) -> int:
    only, ids = _only(record_ids)
    return db.session.execute(text(f"""
        INSERT INTO household_member (household_id, person_id, relation, is_coholder, remark)
        SELECT h.id, p.id, r.attrs->>'YHZGX', coalesce(r.attrs->>'SFGYR', '1') = '1',
               nullif(r.attrs->>'CYBZ', '')
        FROM import_record r JOIN household h ON h.cbfbm = r.attrs->>'CBFBM'
        JOIN person p ON p.id_number = upper(r.attrs->>'CYZJHM') AND p.county_code = h.county_code
        WHERE r.batch_id = :b AND r.tbl = 'CBF_JTCY' AND r.status = 'valid' {only}
          AND NOT EXISTS (SELECT 1 FROM household_member m WHERE m.household_id = h.id
                          AND m.person_id = p.id AND m.left_on IS NULL)"""),
        {"b": batch_id, "ids": ids}).rowcount


def set_missing_heads() -> None:
    """A household without a head takes its member with relation 02 (head of household)."""
    db.session.execute(text("""UPDATE household h SET head_person_id = m.person_id
             FROM household_member m
             WHERE m.household_id = h.id AND m.relation = '02' AND h.head_person_id IS NULL"""))


def count_households(like: str | None = None) -> int:
    """Households of collectives whose code is LIKE `like` (all without)."""
    ids = select(Collective.id)
    if like:
        ids = ids.where(Collective.fbfbm.like(like))
    return db.session.scalar(select(func.count(Household.id)).where(
        Household.collective_id.in_(ids.scalar_subquery())))


def persons_page(like: str | None = None, id_number: str | None = None,
                 name_part: str | None = None, page: int = 1,
                 per_page: int = 50) -> tuple[int, list[Person]]:
    """(total, one page of persons by id) within `like` — current records only: an active
    membership, a current household place or the hukou there (an ended one gives no access) —
    with this exact ID number, or a name containing `name_part`."""
    stmt = select(Person)
    if like:
        in_coll = select(Membership.person_id).join(Collective).where(
            Collective.fbfbm.like(like), Membership.status == "active")
        in_hh = select(HouseholdMember.person_id).join(Household).where(
            Household.cbfbm.like(like), HouseholdMember.left_on.is_(None))
        stmt = stmt.where(or_(Person.id.in_(in_coll), Person.id.in_(in_hh),
                              Person.hukou_division_code.like(like)))
    if id_number:
        stmt = stmt.where(Person.id_number == id_number)
    elif name_part:
        stmt = stmt.where(Person.name.contains(name_part))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    items = list(db.session.scalars(stmt.order_by(Person.id).limit(per_page)
                                    .offset((page - 1) * per_page)))
    return total, items


def places_of(person_id: int) -> tuple[list[Membership], list[HouseholdMember]]:
    """A person's memberships (by start) and household places, in every county (every row of
    the ID number)."""
    ids = rows_of([person_id])
    memberships = list(db.session.scalars(select(Membership).where(
        Membership.person_id.in_(ids)).order_by(Membership.began_on)))
    households = list(db.session.scalars(select(HouseholdMember).where(
        HouseholdMember.person_id.in_(ids))))
    return memberships, households


# ---------------------------------------------------------------------------------------------
# Queries for the JSON API (issue 19)

def households_query(like: str | None, q: str = "", include_ended: bool = False):
    """Households inside a jurisdiction (`like` on the household code), by code prefix or
    name; a select of Household ordered by code."""
    from sqlalchemy import or_, select

    stmt = select(Household)
    if not include_ended:
        stmt = stmt.where(Household.ended_on.is_(None))
    if q:
        stmt = stmt.where(or_(Household.cbfbm.startswith(q), Household.name.contains(q)))
    if like:
        stmt = stmt.where(Household.cbfbm.like(like))
    return stmt.order_by(Household.cbfbm)


def members_of(household: Household) -> list[HouseholdMember]:
    from sqlalchemy import select

    return list(db.session.scalars(select(HouseholdMember).where(
        HouseholdMember.household_id == household.id).order_by(HouseholdMember.id)))
