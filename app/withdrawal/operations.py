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

from app.audit import operations as audit
from app.errors import DomainError, Rule
from app.extensions import db
from app.grounds import guard_text, refuse
from app.parcels.models import RegistrySetting
from app.people.models import Household, Person
from app.rights.models import Right
from app.rights.operations import ART27_55

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
               _l("The voluntariness check is made by a different officer than %(who)s."),
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


def _setting(key: str, default: int) -> int:
    row = db.session.get(RegistrySetting, key)
    return int(row.value) if row else default


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
    """The latest settlement in town of a member of the household: (date, officer)."""
    return db.session.execute(text("""
        SELECT mv.moved_on, mv.moved_by FROM hukou_move mv
        JOIN household_member hm ON hm.person_id = mv.person_id AND hm.left_on IS NULL
        JOIN household hh ON hh.id = hm.household_id AND hh.cbfbm = :h
        WHERE mv.application_id IS NOT NULL AND mv.moved_on <= :d
        ORDER BY mv.moved_on DESC LIMIT 1"""), {"h": household_code, "d": today}).first()


def start(actor, right: Right, via: str = "own_account", land_to: str = "collective",
          transferee: str | None = None, statement: bytes | None = None,
          statement_name: str | None = None, today: dt.date | None = None,
          settlement_id: int | None = None) -> Withdrawal:
    today = today or dt.date.today()
    role = getattr(actor, "role", None)
    guard_text(actor, "withdrawal", {"statement_name": statement_name,
                                     "transferee": transferee},
               "withdrawal.refused", "land_right", right.uid)  # never traded for the hukou
    if settlement_id is not None:
        refuse(actor, DomainError(FROM_SETTLEMENT), "withdrawal.refused", "land_right",
               right.uid, {"settlement": settlement_id})
    if role == "hukou_officer":
        refuse(actor, DomainError(NOT_HOLDER, who=_l("a hukou officer")), "withdrawal.refused",
               "land_right", right.uid, {"via": via})
    if via == "own_account":
        if role != "farmer" or actor.household_code != right.holder_household_code:
            refuse(actor, DomainError(NOT_HOLDER, who=_who(actor)), "withdrawal.refused",
                   "land_right", right.uid, {"via": via})
    elif via == "in_person":
        if role not in ("bureau_staff", "collective_officer", "admin"):
            refuse(actor, DomainError(NOT_HOLDER, who=_who(actor)), "withdrawal.refused",
                   "land_right", right.uid, {"via": via})
        if not statement:
            raise DomainError(NEEDS_STATEMENT)
    else:
        raise DomainError(NOT_HOLDER, who=via)
    if right.kind not in ("land_contract", "homestead") or right.status != "current" or \
            right.end_lifespan is not None:
        raise DomainError(NOT_CURRENT)
    open_one = db.session.scalar(select(Withdrawal.id).where(
        Withdrawal.right_uid == right.uid, Withdrawal.status.in_(("consent", "check", "cooling"))))
    if open_one:
        raise DomainError(ALREADY_OPEN, id=open_one)
    county = right.fbfbm[:6]
    if not pilot_enabled(county):
        raise DomainError(PILOT_OFF, county=county)
    if land_to == "within" and not (transferee and transferee[:14] == right.fbfbm and
                                    transferee != right.holder_household_code):
        raise DomainError(WITHIN, fbfbm=right.fbfbm)
    if land_to == "within" and right.kind == "homestead":
        from app.rights.operations import refuse_second_homestead

        refuse_second_homestead(transferee)
    w = Withdrawal(right_uid=right.uid, right_kind=right.kind,
                   household_code=right.holder_household_code, county_code=county,
                   started_by=_who(actor), started_via=via, started_on=today,
                   statement_filename=statement_name if statement else None,
                   statement_sha256=hashlib.sha256(statement).hexdigest() if statement else None,
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
    # The holder's own agreement: the farmer signing in, or the signed statement's signatory.
    signer = actor.person_id if via == "own_account" else db.session.scalar(
        select(Household.head_person_id).where(Household.cbfbm == right.holder_household_code))
    if signer and any(p.id == signer for p in adult_coholders(w.household_code, today)):
        db.session.add(WithdrawalConsent(
            withdrawal_id=w.id, person_id=signer, signed_on=today,
            document_sha256=w.statement_sha256 or hashlib.sha256(
                f"own account {_who(actor)} {today}".encode()).hexdigest(),
            recorded_by=_who(actor)))
    db.session.flush()
    _advance(w, today)
    audit.record(actor, "withdrawal.start", "withdrawal", w.id,
                 {"right": right.uid, "via": via, "land_to": land_to, "flagged": w.flagged})
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


def _open(w: Withdrawal) -> None:
    if w.status not in ("consent", "check", "cooling"):
        raise DomainError(STATE, status=w.status)


def consent(actor, w: Withdrawal, person: Person, document: bytes,
            today: dt.date | None = None) -> WithdrawalConsent:
    """The written agreement of an adult co-holder."""
    today = today or dt.date.today()
    _open(w)
    if person.id not in {p.id for p in adult_coholders(w.household_code, today)}:
        raise DomainError(NOT_COHOLDER, name=person.name, household=w.household_code)
    c = WithdrawalConsent(withdrawal_id=w.id, person_id=person.id, signed_on=today,
                          document_sha256=hashlib.sha256(document).hexdigest(),
                          recorded_by=_who(actor))
    db.session.add(c)
    db.session.flush()
    _advance(w, today)
    audit.record(actor, "withdrawal.consent", "withdrawal", w.id, {"person": person.id})
    return c


def check(actor, w: Withdrawal, interview: str, today: dt.date | None = None) -> Withdrawal:
    """The voluntariness check of a flagged withdrawal, by another officer, with an interview."""
    _open(w)
    if not w.flagged:
        raise DomainError(NOT_FLAGGED)
    settled = _settlement_before(w.household_code, w.started_on)
    others = {w.started_by, settled.moved_by if settled else None}
    if _who(actor) in others or getattr(actor, "role", None) == "hukou_officer":
        raise DomainError(CHECKER, who=", ".join(sorted(x for x in others if x)))
    if not (interview or "").strip():
        raise DomainError(NEEDS_CHECK, days="—")
    guard_text(actor, "withdrawal", {"interview": interview}, "withdrawal.refused",
               "withdrawal", w.id)
    w.checked_by, w.interview, w.checked_at = _who(actor), interview.strip(), func.now()
    db.session.flush()
    _advance(w, today or dt.date.today())
    audit.record(actor, "withdrawal.check", "withdrawal", w.id, {}, interview)
    return w


def agree_compensation(actor, w: Withdrawal, amount: Decimal,
                       today: dt.date | None = None) -> Withdrawal:
    _open(w)
    if amount is None or Decimal(amount) <= 0:
        raise DomainError(NO_COMPENSATION)
    w.compensation, w.compensation_agreed_on = Decimal(amount), today or dt.date.today()
    db.session.flush()
    audit.record(actor, "withdrawal.compensation", "withdrawal", w.id, {"amount": amount})
    return w


def record_payment(actor, w: Withdrawal, reference: str, paid_on: dt.date | None = None) \
        -> Withdrawal:
    _open(w)
    if not w.compensation:
        raise DomainError(NO_COMPENSATION)
    guard_text(actor, "withdrawal", {"reference": reference}, "withdrawal.refused",
               "withdrawal", w.id)
    w.paid_on, w.paid_reference = paid_on or dt.date.today(), reference
    db.session.flush()
    audit.record(actor, "withdrawal.paid", "withdrawal", w.id, {"reference": reference,
                                                               "on": w.paid_on})
    return w


def _is_holder(actor, w: Withdrawal) -> bool:
    role = getattr(actor, "role", None)
    return (role == "farmer" and actor.household_code == w.household_code) or \
        role in ("bureau_staff", "collective_officer", "admin")


def revoke(actor, w: Withdrawal, today: dt.date | None = None) -> Withdrawal:
    """The holder changes their mind: possible until the cooling-off period ends."""
    today = today or dt.date.today()
    _open(w)
    if not _is_holder(actor, w):
        refuse(actor, DomainError(NOT_HOLDER, who=_who(actor)), "withdrawal.refused",
               "withdrawal", w.id, {"action": "revoke"})
    if today > w.cooling_until:
        raise DomainError(COOLING_OVER, until=w.cooling_until)
    w.status, w.revoked_on, w.revoked_by = "revoked", today, _who(actor)
    db.session.flush()
    audit.record(actor, "withdrawal.revoke", "withdrawal", w.id, {})
    return w


def take_effect(actor, w: Withdrawal, today: dt.date | None = None) -> Withdrawal:
    """Every condition met: the right ends on the ground of a voluntary withdrawal that has
    taken effect, and the land returns to the collective or passes within it."""
    from app.parcels import operations as parcels
    from app.rights import operations as rights

    today = today or dt.date.today()
    _open(w)
    missing = missing_consents(w, today)
    if missing:
        raise DomainError(NEEDS_CONSENT, names="、".join(p.name for p in missing))
    if w.flagged and not w.checked_by:
        settled = _settlement_before(w.household_code, w.started_on)
        raise DomainError(NEEDS_CHECK, days=(w.started_on - settled.moved_on).days
                          if settled else "—")
    if not w.compensation:
        raise DomainError(NO_COMPENSATION)
    if not w.paid_on:
        raise DomainError(NOT_PAID)
    if today < w.cooling_until:
        raise DomainError(COOLING, until=w.cooling_until)
    if w.right_kind == "land_contract":
        from app.settlement.operations import _add_months

        due = _add_months(w.notice_given_on, 6)
        if today < due:
            raise DomainError(ART30, date=due)
    right = db.session.scalar(select(Right).where(Right.uid == w.right_uid,
                                                  Right.end_lifespan.is_(None)))
    if right is None or right.status != "current":
        raise DomainError(NOT_CURRENT)
    w.status, w.effective_on = "effective", today
    db.session.flush()
    held = [(rp.parcel_uid, rp.parcel_code, rp.contract_area) for rp in right.parcels]
    rights.end_right(actor, right, "voluntary_withdrawal", today,
                     evidence=f"withdrawal {w.id}, compensation {w.compensation} paid "
                              f"{w.paid_on} ({w.paid_reference})",
                     reason="自愿有偿退出")
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
