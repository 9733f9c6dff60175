"""Accounts: creation, passwords (scrypt via Werkzeug), API tokens, sign-in."""
from __future__ import annotations

import hashlib
import secrets

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from app.access import ROLES
from app.audit import operations as audit
from app.divisions.models import Division
from app.errors import DomainError, Rule
from app.extensions import db

from .models import User

POLICY = _l("Sanquan account policy")
BAD_ROLE = Rule("user.role", _l("Unknown role %(role)s."), POLICY)
NEEDS_JURISDICTION = Rule(
    "user.jurisdiction",
    _l("A staff account needs a jurisdiction: a known division code or issuing-party code."),
    POLICY)
FARMER_PERSON = Rule("user.farmer_person", _l("A farmer account must be linked to a person."),
                     POLICY)
WEAK_PASSWORD = Rule("user.password", _l("A password needs at least 10 characters."), POLICY)
USERNAME_TAKEN = Rule("user.username", _l("User name %(name)s is taken."), POLICY, 409)

_DUMMY_HASH = generate_password_hash("timing-equaliser")


def _known_jurisdiction(code: str | None) -> bool:
    if not code:
        return False
    if len(code) == 14:
        from app.collectives.models import Collective

        return db.session.scalar(select(Collective.id).where(Collective.fbfbm == code)) is not None
    return db.session.get(Division, code) is not None


def create_user(actor, username: str, password: str, role: str, display_name: str | None = None,
                jurisdiction_code: str | None = None, person_id: int | None = None,
                household_code: str | None = None, reason: str | None = None) -> User:
    if role not in ROLES:
        raise DomainError(BAD_ROLE, role=role)
    if role not in ("farmer", "admin") and not _known_jurisdiction(jurisdiction_code):
        raise DomainError(NEEDS_JURISDICTION)
    if role == "farmer" and person_id is None:
        raise DomainError(FARMER_PERSON)
    if len(password or "") < 10:
        raise DomainError(WEAK_PASSWORD)
    if db.session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        raise DomainError(USERNAME_TAKEN, name=username)
    user = User(username=username, display_name=display_name or username,
                password_hash=generate_password_hash(password), role=role,
                jurisdiction_code=jurisdiction_code, person_id=person_id,
                household_code=household_code)
    db.session.add(user)
    db.session.flush()
    audit.record(actor, "user.create", "user", user.id,
                 {"username": username, "role": role, "jurisdiction": jurisdiction_code}, reason)
    return user


NO_SUCH_PERSON = Rule("user.person", _l("No registered person has ID number %(number)s."), POLICY)


def farmer_link(id_number: str) -> tuple[int, str | None]:
    """(person id, household code) for a farmer account, from the person's ID number."""
    from app.people.idnumber import mask
    from app.people.models import Household, HouseholdMember, Person
    from app.people.operations import parse_id

    number = parse_id(id_number).number
    person = db.session.scalar(select(Person).where(Person.id_number == number))
    if person is None:
        raise DomainError(NO_SUCH_PERSON, number=mask(number))
    household = db.session.scalar(
        select(Household.cbfbm).join(HouseholdMember, HouseholdMember.household_id == Household.id)
        .where(HouseholdMember.person_id == person.id, HouseholdMember.left_on.is_(None)))
    return person.id, household


def authenticate(username: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(func.lower(User.username) == (username or "").lower()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")  # same time whether or not it exists
        audit.record(None, "auth.login.failed", "user", None, {"username": username[:50]})
        return None
    if not user.active or not check_password_hash(user.password_hash, password or ""):
        audit.record(None, "auth.login.failed", "user", user.id, {"username": user.username})
        return None
    user.last_login_at = func.now()
    audit.record(user, "auth.login", "user", user.id)
    return user


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_api_token(actor, user: User) -> str:
    """A new bearer token for `user`; only its digest is stored."""
    token = "sq_" + secrets.token_urlsafe(32)
    user.api_token_hash = _token_digest(token)
    db.session.flush()
    audit.record(actor, "user.token.issue", "user", user.id)
    return token


def user_by_token(token: str) -> User | None:
    if not token:
        return None
    return db.session.scalar(select(User).where(User.api_token_hash == _token_digest(token),
                                                User.active.is_(True)))
