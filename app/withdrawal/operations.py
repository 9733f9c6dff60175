"""Voluntary, paid withdrawal (自愿有偿退出): a pilot procedure of its own, never part of a
settlement (source document item 14; 农村土地承包法 arts 27, 30; domain.md §9 rule 4).

Started only by the right holder — from the farmer's own account, or in person with a signed
statement that staff upload; never by a hukou officer and never from a settlement case.  For a
household right every adult co-holder agrees in writing; the compensation is agreed and paid
before it takes effect; the holder may revoke it during the cooling-off period; contract land
needs six months' written notice (art 30).  A withdrawal begun soon after the holder's
settlement is checked for voluntariness by a different officer, who records an interview."""
from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text

from app.access import Scope
from app.audit import operations as audit
from app.auth.models import User
from app.dates import add_months
from app.errors import DomainError, Rule
from app.extensions import db
from app.grounds import guard_text, refuse
from app.parcels import operations as parcels
from app.parcels.models import RegistrySetting
from app.people.models import Household, Person
from app.people.operations import same_person
from app.rights import operations as rights
from app.rights.models import Right
from app.rights.operations import ART27_55, refuse_second_homestead

from .models import Withdrawal, WithdrawalConsent

PILOT = _l("Source document item 14 (withdrawal only as a pilot, respecting the farmer's will); "
           "农村土地承包法 (Rural Land Contracting Law) arts 27, 30")

NOT_HOLDER = Rule(
    "withdrawal.not_holder",
    _l("A withdrawal is started only by the right holder — from their own account, or in "
       "person with a signed statement — never by %(who)s."), ART27_55, 403)
FROM_SETTLEMENT = Rule(
    "withdrawal.from_settlement",
    _l("A withdrawal is never started from a settlement case: settling in town and giving up a "
       "right are separate matters."), ART27_55)
NEEDS_STATEMENT = Rule("withdrawal.statement",
                       _l("A withdrawal made in person needs the holder's signed statement."),
                       PILOT)
NEEDS_WITNESS = Rule(
    "withdrawal.witness",
    _l("A withdrawal made in person is witnessed by a second officer (not %(who)s), who signs "
       "in under their own name."), ART27_55)
CONSENT_SELF = Rule(
    "withdrawal.consent_self",
    _l("%(name)s agrees for themselves: from their own account, or in person with their own "
       "signed agreement, kept as a file. Nobody's consent is taken from another's statement."),
    ART27_55, 403)
PILOT_OFF = Rule("withdrawal.pilot_off",
                 _l("County %(county)s is not in the withdrawal pilot."), PILOT, 409)
NOT_CURRENT = Rule("withdrawal.right", _l("Only a current land-contract or homestead right can "
                                          "be withdrawn."), PILOT, 409)
WITHIN = Rule("withdrawal.within",
              _l("Land is transferred only within the same collective (%(fbfbm)s)."),
              _l("农村土地承包法 (Rural Land Contracting Law) art 34"))
NOT_COHOLDER = Rule("withdrawal.consent_person",
                    _l("%(name)s is not an adult co-holder of household %(household)s."), PILOT)
NEEDS_CONSENT = Rule(
    "withdrawal.consent",
    _l("Every adult co-holder must agree in writing; still missing: %(names)s."), PILOT, 409)
NEEDS_CHECK = Rule(
    "withdrawal.voluntariness",
    _l("This withdrawal began %(days)s days after the holder's settlement in town: an officer "
       "other than the one handling it must interview the holder and record that it is "
       "voluntary first."), ART27_55, 409)
CHECKER = Rule("withdrawal.checker",
               _l("The voluntariness check is made by an officer who took no part in this case "
                  "(not %(who)s)."),
               ART27_55, 403)
RECORDER = Rule("withdrawal.recorder",
                _l("Compensation and payment are recorded by a bureau or collective officer."),
                PILOT, 403)
CHECKER_ROLE = Rule("withdrawal.checker_role",
                    _l("The voluntariness check is made by a bureau or collective officer."),
                    ART27_55, 403)
CHECKER_ELSEWHERE = Rule(
    "withdrawal.checker_elsewhere",
    _l("%(who)s checked this withdrawal's voluntariness and takes no other part in it."),
    ART27_55, 403)
NOT_FLAGGED = Rule("withdrawal.not_flagged",
                   _l("This withdrawal needs no voluntariness check."), PILOT, 409)
NO_COMPENSATION = Rule("withdrawal.compensation",
                       _l("The compensation must be agreed and recorded (an amount above zero)."),
                       PILOT, 409)
NOT_PAID = Rule("withdrawal.unpaid",
                _l("The compensation must be paid before the withdrawal takes effect."), PILOT,
                409)
COOLING = Rule("withdrawal.cooling",
               _l("The cooling-off period runs until %(until)s; the holder may still revoke."),
               PILOT, 409)
COOLING_OVER = Rule("withdrawal.cooling_over",
                    _l("The cooling-off period ended on %(until)s."), PILOT, 409)
ART30 = Rule("withdrawal.notice",
             _l("Contract land is handed back after six months' written notice: not before "
                "%(date)s."), _l("农村土地承包法 (Rural Land Contracting Law) art 30"), 409)
ALREADY_OPEN = Rule("withdrawal.open",
                    _l("Withdrawal %(id)s of this right is already under way."), PILOT, 409)
STATE = Rule("withdrawal.state", _l("This withdrawal is %(status)s."), PILOT, 409)


_who = audit.actor_name
STAFF_ROLES = ("bureau_staff", "collective_officer", "admin")


def _user(actor):
    """The account behind an actor (a User, or a username as the tests and jobs pass)."""
    if actor is None or not isinstance(actor, str):
        return actor
    return db.session.scalar(select(User).where(User.username == actor))


def _role(actor):
    return getattr(_user(actor), "role", None)


def _refuse(actor, error: DomainError, w: Withdrawal | None = None, right: Right | None = None,
            **changes):
    """Every refusal of every step is recorded (domain.md §9 rule 5), then raised."""
    if w is not None:
        refuse(actor, error, "withdrawal.refused", "withdrawal", w.id, changes)
    refuse(actor, error, "withdrawal.refused", "land_right", right.uid if right else None,
           changes)


def participants(w: Withdrawal) -> set[str]:
    """Everyone who took part in the case: the voluntariness check is made by none of them."""
    settled = _settlement_officers(w.household_code)
    return {x for x in (w.started_by, w.witnessed_by, w.compensation_by, w.paid_by,
                        *(c.recorded_by for c in w.consents), *settled) if x}


def _settlement_officers(household_code: str) -> list[str]:
    return list(db.session.scalars(text("""
        SELECT DISTINCT mv.moved_by FROM hukou_move mv
        JOIN person mp ON mp.id = mv.person_id JOIN person hp ON hp.id_number = mp.id_number
        JOIN household_member hm ON hm.person_id = hp.id
        JOIN household hh ON hh.id = hm.household_id AND hh.cbfbm = :h
        WHERE mv.application_id IS NOT NULL"""), {"h": household_code}))


def _setting(key: str, default: int) -> int:
    row = db.session.get(RegistrySetting, key)
    return int(row.value) if row else default


def withdrawal_scope(withdrawal_id: int, **_) -> Scope | None:
    """Where a withdrawal belongs, for the access check (its household and village group)."""
    w = db.session.get(Withdrawal, withdrawal_id)
    return None if w is None else Scope([w.household_code[:14]], {w.household_code})


def effective_withdrawal_id(withdrawal_id, right_uid: int, on: dt.date) -> int | None:
    """The id of withdrawal `withdrawal_id` when it withdrew right `right_uid` and took effect by
    `on` (the proof app.rights asks for when a right ends on ground voluntary_withdrawal)."""
    return db.session.scalar(select(Withdrawal.id).where(
        Withdrawal.id == withdrawal_id, Withdrawal.right_uid == right_uid,
        Withdrawal.status == "effective", Withdrawal.effective_on <= on))


def pilot_enabled(county: str) -> bool:
    row = db.session.get(RegistrySetting, f"withdrawal_pilot:{county}")
    return bool(row) and row.value == "on"


def enable_pilot(actor, county: str, on: bool = True) -> None:
    key = f"withdrawal_pilot:{county}"
    row = db.session.get(RegistrySetting, key)
    if row is None:
        row = RegistrySetting(key=key, value="off", note="自愿有偿退出试点")
        db.session.add(row)
    row.value = "on" if on else "off"
    db.session.flush()
    audit.record(actor, "withdrawal.pilot", "county", county, {"on": on})


def adult_coholders(household_code: str, today: dt.date) -> list[Person]:
    hh = db.session.scalar(select(Household).where(Household.cbfbm == household_code))
    out = []
    for m in hh.current_members if hh else []:
        b = m.person.birth_date
        age = today.year - b.year - ((today.month, today.day) < (b.month, b.day))
        if m.is_coholder and age >= 18:
            out.append(m.person)
    return out


def _settlement_before(household_code: str, today: dt.date):
    """The latest settlement in town of a person who was a member of the household when they
    moved (one who has left it since still counts): (date, officer).  The settlement may name
    the person's row of another county (one row per county: docs/scaling.md §3), so the move
    is matched to the place by ID number.  The database flags the same (0018, 0044)."""
    return db.session.execute(text("""
        SELECT mv.moved_on, mv.moved_by FROM hukou_move mv
        JOIN person mp ON mp.id = mv.person_id JOIN person hp ON hp.id_number = mp.id_number
        JOIN household_member hm ON hm.person_id = hp.id
             AND (hm.joined_on IS NULL OR hm.joined_on <= mv.moved_on)
             AND (hm.left_on IS NULL OR hm.left_on >= mv.moved_on)
        JOIN household hh ON hh.id = hm.household_id AND hh.cbfbm = :h
        WHERE mv.application_id IS NOT NULL AND mv.moved_on <= :d
        ORDER BY mv.moved_on DESC LIMIT 1"""), {"h": household_code, "d": today}).first()


def start(actor, right: Right, via: str = "own_account", land_to: str = "collective",
          transferee: str | None = None, statement: bytes | None = None,
          statement_name: str | None = None, today: dt.date | None = None,
          settlement_id: int | None = None, witness=None) -> Withdrawal:
    """Started by the holder: from their own account, or in person with their signed statement
    (the file kept) witnessed by a second officer (`witness`: that officer's account)."""
    today = today or dt.date.today()
    user = _user(actor)
    role = getattr(user, "role", None)
    guard_text(actor, "withdrawal", {"statement_name": statement_name,
                                     "transferee": transferee},
               "withdrawal.refused", "land_right", right.uid)  # never traded for the hukou
    if settlement_id is not None:
        _refuse(actor, DomainError(FROM_SETTLEMENT), right=right, settlement=settlement_id)
    if role == "hukou_officer":
        _refuse(actor, DomainError(NOT_HOLDER, who=_l("a hukou officer")), right=right, via=via)
    witness_name = None
    if via == "own_account":
        if role != "farmer" or user.household_code != right.holder_household_code:
            _refuse(actor, DomainError(NOT_HOLDER, who=_who(actor)), right=right, via=via)
    elif via == "in_person":
        if role not in STAFF_ROLES:
            _refuse(actor, DomainError(NOT_HOLDER, who=_who(actor)), right=right, via=via)
        if not statement:
            _refuse(actor, DomainError(NEEDS_STATEMENT), right=right, via=via)
        witness_user = _user(witness)
        witness_name = getattr(witness_user, "username", None)
        if witness_user is None or witness_user.role not in STAFF_ROLES or \
                not witness_user.active or witness_name == _who(actor):
            _refuse(actor, DomainError(NEEDS_WITNESS, who=_who(actor)), right=right, via=via,
                    witness=witness_name or (witness if isinstance(witness, str) else None))
    else:
        _refuse(actor, DomainError(NOT_HOLDER, who=via), right=right, via=via)
    if right.kind not in ("land_contract", "homestead") or right.status != "current" or \
            right.end_lifespan is not None:
        _refuse(actor, DomainError(NOT_CURRENT), right=right)
    open_one = db.session.scalar(select(Withdrawal.id).where(
        Withdrawal.right_uid == right.uid, Withdrawal.status.in_(("consent", "check", "cooling"))))
    if open_one:
        _refuse(actor, DomainError(ALREADY_OPEN, id=open_one), right=right)
    county = right.fbfbm[:6]
    if not pilot_enabled(county):
        _refuse(actor, DomainError(PILOT_OFF, county=county), right=right)
    if land_to == "within" and not (transferee and transferee[:14] == right.fbfbm and
                                    transferee != right.holder_household_code):
        _refuse(actor, DomainError(WITHIN, fbfbm=right.fbfbm), right=right)
    if land_to == "within" and right.kind == "homestead":

        try:
            refuse_second_homestead(transferee)
        except DomainError as e:
            _refuse(actor, e, right=right)
    w = Withdrawal(right_uid=right.uid, right_kind=right.kind,
                   household_code=right.holder_household_code, county_code=county,
                   started_by=_who(actor), started_via=via, started_on=today,
                   statement_filename=statement_name if statement else None,
                   statement_sha256=hashlib.sha256(statement).hexdigest() if statement else None,
                   statement_file=statement if via == "in_person" else None,
                   witnessed_by=witness_name,
                   land_to=land_to, transferee_household_code=transferee if land_to == "within"
                   else None,
                   notice_given_on=today if right.kind == "land_contract" else None,
                   cooling_until=today + dt.timedelta(days=_setting("withdrawal_cooling_days",
                                                                    30)))
    settled = _settlement_before(right.holder_household_code, today)
    window = _setting("withdrawal_check_window_days", 180)
    if settled and (today - settled.moved_on).days <= window:
        w.flagged = True
        w.flag_reason = f"settled in town on {settled.moved_on} ({(today - settled.moved_on).days}" \
                        f" days before); settlement officer {settled.moved_by}"
    db.session.add(w)
    db.session.flush()
    # The holder signing in agrees for themselves; a statement made in person is no one's
    # consent but its own: every co-holder (the signatory too) consents separately.
    # (the account may name the holder's row of another county: the consent is recorded on
    # their row in the household's county — docs/scaling.md §3)
    signer = user.person_id if via == "own_account" else None
    row = next((p for p in adult_coholders(w.household_code, today)
                if same_person(p.id, signer)), None) if signer else None
    if row is not None:
        db.session.add(WithdrawalConsent(
            withdrawal_id=w.id, person_id=row.id, signed_on=today, via="own_account",
            document_sha256=hashlib.sha256(
                f"own account {_who(actor)} {today}".encode()).hexdigest(),
            recorded_by=_who(actor)))
    db.session.flush()
    _advance(w, today)
    audit.record(actor, "withdrawal.start", "withdrawal", w.id,
                 {"right": right.uid, "via": via, "land_to": land_to, "flagged": w.flagged,
                  "witness": witness_name,
                  "statement_sha256": w.statement_sha256})
    return w


def missing_consents(w: Withdrawal, today: dt.date) -> list[Person]:
    if w.right_kind not in ("land_contract", "homestead"):
        return []
    have = {c.person_id for c in w.consents}
    return [p for p in adult_coholders(w.household_code, today) if p.id not in have]


def _advance(w: Withdrawal, today: dt.date) -> None:
    if w.status not in ("consent", "check", "cooling"):
        return
    db.session.refresh(w)
    if missing_consents(w, today):
        w.status = "consent"
    elif w.flagged and not w.checked_by:
        w.status = "check"
    else:
        w.status = "cooling"
    db.session.flush()


def _open(actor, w: Withdrawal, step: str) -> None:
    if w.status not in ("consent", "check", "cooling"):
        _refuse(actor, DomainError(STATE, status=w.status), w, step=step)


def consent(actor, w: Withdrawal, person: Person, document: bytes | None = None,
            today: dt.date | None = None, document_name: str | None = None) -> WithdrawalConsent:
    """The agreement of an adult co-holder, for themselves: signed in to their own account, or
    in person with their signed agreement (the file kept) recorded by an officer."""
    today = today or dt.date.today()
    _open(actor, w, "consent")
    guard_text(actor, "withdrawal", {"document_name": document_name}, "withdrawal.refused",
               "withdrawal", w.id)  # a co-holder's agreement is never traded for the hukou
    user = _user(actor)
    # the co-holder's row in the household's county, whichever county's row of them was named
    # (one row per county: docs/scaling.md §3)
    row = next((p for p in adult_coholders(w.household_code, today)
                if same_person(p.id, person.id)), None)
    if row is None:
        _refuse(actor, DomainError(NOT_COHOLDER, name=person.name, household=w.household_code),
                w, step="consent", person=person.id)
    person = row
    if getattr(user, "role", None) == "farmer" and same_person(user.person_id, person.id):
        via = "own_account"
    elif getattr(user, "role", None) in STAFF_ROLES and document:
        via = "in_person"
    else:
        _refuse(actor, DomainError(CONSENT_SELF, name=person.name), w, step="consent",
                person=person.id)
    if w.checked_by and w.checked_by == _who(actor):
        _refuse(actor, DomainError(CHECKER_ELSEWHERE, who=w.checked_by), w, step="consent")
    if via == "own_account":
        document = f"own account {_who(actor)} {today}".encode()
    c = WithdrawalConsent(withdrawal_id=w.id, person_id=person.id, signed_on=today,
                          document_sha256=hashlib.sha256(document).hexdigest(),
                          recorded_by=_who(actor), via=via,
                          document=document if via == "in_person" else None,
                          document_filename=document_name if via == "in_person" else None)
    db.session.add(c)
    db.session.flush()
    _advance(w, today)
    audit.record(actor, "withdrawal.consent", "withdrawal", w.id,
                 {"person": person.id, "via": via})
    return c


def check(actor, w: Withdrawal, interview: str, today: dt.date | None = None) -> Withdrawal:
    """The voluntariness check of a flagged withdrawal, with an interview, by an officer who
    took no part in the case (four eyes): not the starter nor the witness, not whoever recorded
    consents, compensation or payment, not the officer who settled the holder in town."""
    _open(actor, w, "check")
    if not w.flagged:
        _refuse(actor, DomainError(NOT_FLAGGED), w, step="check")
    others = participants(w)
    if _who(actor) in others:
        _refuse(actor, DomainError(CHECKER, who=", ".join(sorted(others))), w, step="check")
    if _role(actor) not in STAFF_ROLES:
        _refuse(actor, DomainError(CHECKER_ROLE), w, step="check")
    if not (interview or "").strip():
        _refuse(actor, DomainError(NEEDS_CHECK, days="—"), w, step="check")
    guard_text(actor, "withdrawal", {"interview": interview}, "withdrawal.refused",
               "withdrawal", w.id)
    w.checked_by, w.interview, w.checked_at = _who(actor), interview.strip(), func.now()
    db.session.flush()
    _advance(w, today or dt.date.today())
    audit.record(actor, "withdrawal.check", "withdrawal", w.id, {}, interview)
    return w


def agree_compensation(actor, w: Withdrawal, amount: Decimal,
                       today: dt.date | None = None) -> Withdrawal:
    _open(actor, w, "compensation")
    if _role(actor) not in STAFF_ROLES:
        _refuse(actor, DomainError(RECORDER), w, step="compensation")
    if amount is None or Decimal(amount) <= 0:
        _refuse(actor, DomainError(NO_COMPENSATION), w, step="compensation")
    if w.checked_by and w.checked_by == _who(actor):
        _refuse(actor, DomainError(CHECKER_ELSEWHERE, who=w.checked_by), w, step="compensation")
    w.compensation, w.compensation_agreed_on = Decimal(amount), today or dt.date.today()
    w.compensation_by = _who(actor)
    db.session.flush()
    audit.record(actor, "withdrawal.compensation", "withdrawal", w.id, {"amount": amount})
    return w


def record_payment(actor, w: Withdrawal, reference: str, paid_on: dt.date | None = None) \
        -> Withdrawal:
    _open(actor, w, "payment")
    if _role(actor) not in STAFF_ROLES:
        _refuse(actor, DomainError(RECORDER), w, step="payment")
    if not w.compensation:
        _refuse(actor, DomainError(NO_COMPENSATION), w, step="payment")
    if w.checked_by and w.checked_by == _who(actor):
        _refuse(actor, DomainError(CHECKER_ELSEWHERE, who=w.checked_by), w, step="payment")
    guard_text(actor, "withdrawal", {"reference": reference}, "withdrawal.refused",
               "withdrawal", w.id)
    w.paid_on, w.paid_reference = paid_on or dt.date.today(), reference
    w.paid_by = _who(actor)
    db.session.flush()
    audit.record(actor, "withdrawal.paid", "withdrawal", w.id, {"reference": reference,
                                                               "on": w.paid_on})
    return w


def _is_holder(actor, w: Withdrawal) -> bool:
    user = _user(actor)
    role = getattr(user, "role", None)
    return (role == "farmer" and user.household_code == w.household_code) or \
        role in STAFF_ROLES


def revoke(actor, w: Withdrawal, today: dt.date | None = None) -> Withdrawal:
    """The holder changes their mind: possible until the cooling-off period ends."""
    today = today or dt.date.today()
    _open(actor, w, "revoke")
    if not _is_holder(actor, w):
        _refuse(actor, DomainError(NOT_HOLDER, who=_who(actor)), w, step="revoke")
    if today > w.cooling_until:
        _refuse(actor, DomainError(COOLING_OVER, until=w.cooling_until), w, step="revoke")
    w.status, w.revoked_on, w.revoked_by = "revoked", today, _who(actor)
    db.session.flush()
    audit.record(actor, "withdrawal.revoke", "withdrawal", w.id, {})
    return w


def take_effect(actor, w: Withdrawal, today: dt.date | None = None) -> Withdrawal:
    """Every condition met: the right ends on the ground of a voluntary withdrawal that has
    taken effect, and the land returns to the collective or passes within it."""
    today = today or dt.date.today()
    _open(actor, w, "effect")
    missing = missing_consents(w, today)
    if missing:
        _refuse(actor, DomainError(NEEDS_CONSENT, names="、".join(p.name for p in missing)), w,
                step="effect")
    if w.flagged and not w.checked_by:
        settled = _settlement_before(w.household_code, w.started_on)
        _refuse(actor, DomainError(NEEDS_CHECK, days=(w.started_on - settled.moved_on).days
                                   if settled else "—"), w, step="effect")
    if not w.compensation:
        _refuse(actor, DomainError(NO_COMPENSATION), w, step="effect")
    if not w.paid_on:
        _refuse(actor, DomainError(NOT_PAID), w, step="effect")
    if today < w.cooling_until:
        _refuse(actor, DomainError(COOLING, until=w.cooling_until), w, step="effect")
    if w.right_kind == "land_contract":
        due = add_months(w.notice_given_on, 6)
        if today < due:
            _refuse(actor, DomainError(ART30, date=due), w, step="effect")
    right = db.session.scalar(select(Right).where(Right.uid == w.right_uid,
                                                  Right.end_lifespan.is_(None)))
    if right is None or right.status != "current":
        _refuse(actor, DomainError(NOT_CURRENT), w, step="effect")
    w.status, w.effective_on = "effective", today
    db.session.flush()
    held = [(rp.parcel_uid, rp.parcel_code, rp.contract_area) for rp in right.parcels]
    rights.end_right(actor, right, "voluntary_withdrawal", today,
                     evidence=f"withdrawal {w.id}, compensation {w.compensation} paid "
                              f"{w.paid_on} ({w.paid_reference})",
                     reason="自愿有偿退出", record=w.id)
    new_holder = w.transferee_household_code if w.land_to == "within" else None
    current = {p.uid: p for p in db.session.scalars(select(parcels.Parcel).where(
        parcels.Parcel.uid.in_([u for u, _, _ in held]),
        parcels.Parcel.end_lifespan.is_(None)))}
    for uid, _, _ in held:
        if uid in current:
            parcels.amend(actor, current[uid], f"自愿有偿退出 {w.id}", household_code=new_holder)
    if new_holder:
        moved = [(p, a) for (uid, _, a) in held if (p := db.session.scalar(
            select(parcels.Parcel).where(parcels.Parcel.uid == uid,
                                         parcels.Parcel.end_lifespan.is_(None))))]
        why = f"自愿有偿退出 {w.id}: 集体经济组织内部转让"
        if right.kind == "land_contract":
            rights.add_parcels(actor, new_holder, moved, right.term_end, why)
        else:  # one household, one homestead: checked at the start and again here
            rights.register_homestead(actor, new_holder, moved[0][0], reason=why)
    audit.record(actor, "withdrawal.effective", "withdrawal", w.id,
                 {"right": w.right_uid, "land_to": w.land_to, "to": new_holder})
    return w


def of_household(household_code: str) -> list[Withdrawal]:
    return list(db.session.scalars(select(Withdrawal).where(
        Withdrawal.household_code == household_code).order_by(Withdrawal.id.desc())))


def withdrawals(like: str | None = None, limit: int = 200) -> list[Withdrawal]:
    stmt = select(Withdrawal).order_by(Withdrawal.id.desc())
    if like:
        stmt = stmt.where(Withdrawal.household_code.like(like))
    return list(db.session.scalars(stmt.limit(limit)))
