"""Accounts: creation, passwords (scrypt via Werkzeug), API tokens, sign-in."""
from __future__ import annotations

import hashlib
import secrets

from flask_babel import lazy_gettext as _l
from limits.storage import MemoryStorage
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from app import extensions
from app.access import ROLES
from app.audit import operations as audit
from app.collectives.models import Collective
from app.divisions.models import Division
from app.errors import DomainError, Rule
from app.extensions import db
from app.people.idnumber import mask
from app.people.models import Household, HouseholdMember, Person
from app.people.operations import parse_id

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
    """(person id, household code) for a farmer account, from the person's ID number: their
    first registered row, and a current household place in any county (one person row per
    county, docs/scaling.md §3)."""
    number = parse_id(id_number).number
    person = db.session.scalar(select(Person).where(Person.id_number == number)
                               .order_by(Person.id).limit(1))
    if person is None:
        raise DomainError(NO_SUCH_PERSON, number=mask(number))
    household = db.session.scalar(
        select(Household.cbfbm).join(HouseholdMember, HouseholdMember.household_id == Household.id)
        .join(Person, Person.id == HouseholdMember.person_id)
        .where(Person.id_number == number, HouseholdMember.left_on.is_(None))
        .order_by(HouseholdMember.id).limit(1))
    return person.id, household


def authenticate(username: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(func.lower(User.username) == (username or "").lower()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")  # same time whether or not it exists
        audit.record(None, "auth.login.failed", "user", None, {"username": username[:50]})
        return None
    # The hash is checked for a deactivated account too: answering it faster would tell a
    # guesser which names were real accounts.
    good = check_password_hash(user.password_hash, password or "")
    if not user.active or not good:
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


# ---------------------------------------------------------------------------------------------
# Sign-in lockout: per account and per address, with backoff, in the limiter's storage (Redis
# when REDIS_URL is set, so every worker sees the same counters).  A lock always ends: after it,
# the right password is accepted again (and clears the account's count).

LOCKED = Rule("auth.locked", _l("Too many failed sign-ins: try again in %(seconds)s seconds."),
              POLICY, 429)
IP_LOCK_FACTOR = 4  # an office shares one address: its threshold is four accounts' worth


def clock() -> float:
    """The app's clock for locks (tests move it forward instead of sleeping)."""
    import time

    return time.time()


# The lockout's own memory when rate limiting is switched off (the lockout stays on).
_LOCAL_LOCKS = MemoryStorage()


def _storage():
    """The limiter's storage; when it is Redis and Redis is gone, the limiter's in-memory
    fallback (per process, until Redis answers again) — a sign-in never fails on it."""
    limiter = extensions.limiter  # looked up on each call (a test or app may replace it)
    if not getattr(limiter, "_storage", None):  # RATELIMIT_ENABLED=False: no storage is made
        return _LOCAL_LOCKS
    store = limiter.storage
    fallback = getattr(limiter, "_fallback_storage", None)
    if fallback is None or store is fallback:
        return store
    try:
        ok = store.check()
    except Exception:
        ok = False
    return store if ok else fallback


def _keys(username: str, ip: str) -> dict[str, str]:
    return {"account": f"sq-login:account:{(username or '').strip().lower()[:50]}",
            "ip": f"sq-login:ip:{ip}"}


def lock_remaining(username: str, ip: str) -> int:
    """Seconds until the sign-in may be tried again (0: not locked)."""
    store, now = _storage(), clock()
    left = 0
    for key in _keys(username, ip).values():
        until = store.get(key + ":until") or 0
        left = max(left, int(until - now + 0.999) if until > now else 0)
    return left


def note_failure(username: str, ip: str, lock_after: int, first: int, cap: int,
                 user_id: int | None = None) -> int:
    """Count a failed sign-in; lock the account (or the address) once past the threshold, for
    `first` seconds doubled at each further failure, at most `cap`.  Returns the lock (0)."""
    store, now = _storage(), clock()
    locked = 0
    for kind, key in _keys(username, ip).items():
        threshold = lock_after * (IP_LOCK_FACTOR if kind == "ip" else 1)
        n = store.incr(key, cap * 4 + 3600)
        if n >= threshold:
            seconds = min(cap, first * 2 ** (n - threshold))
            until = int(now + seconds)
            store.clear(key + ":until")
            store.incr(key + ":until", seconds + 3600, amount=until)
            locked = max(locked, seconds)
            audit.record(None, "auth.lockout", "user", user_id,
                         {"scope": kind, "username": (username or "")[:50], "ip": ip,
                          "failures": n, "seconds": seconds})
    return locked


def clear_failures(username: str) -> None:
    store = _storage()
    key = _keys(username, "")["account"]
    store.clear(key)
    store.clear(key + ":until")


def sign_in(username: str, password: str, ip: str, lock_after: int = 5, first: int = 30,
            cap: int = 900) -> User | None:
    """`authenticate` behind the lockout: a locked account or address is refused (429, logged)
    without looking at the password; a failure counts; a success clears the account's count."""
    left = lock_remaining(username, ip)
    if left:
        audit.record(None, "auth.login.locked", "user", None,
                     {"username": (username or "")[:50], "ip": ip, "seconds": left})
        raise DomainError(LOCKED, seconds=left)
    user = authenticate(username, password)
    if user is None:
        uid = db.session.scalar(select(User.id).where(
            func.lower(User.username) == (username or "").lower()))
        note_failure(username, ip, lock_after, first, cap, uid)
        return None
    clear_failures(username)
    return user


# ---------------------------------------------------------------------------------------------
# Account management

NOT_SELF = Rule("user.self", _l("You cannot deactivate your own account."), POLICY)
WRONG_PASSWORD = Rule("user.old_password", _l("The current password is wrong."), POLICY)
SAME_AS_DEMO = Rule("user.demo_password",
                    _l("The demo password may not be used outside demo mode."), POLICY)
DEMO_PASSWORD = "sanquan-demo"


def _check_new_password(password: str) -> None:
    if len(password or "") < 10:
        raise DomainError(WEAK_PASSWORD)
    if password == DEMO_PASSWORD:
        raise DomainError(SAME_AS_DEMO)


def set_active(actor, user: User, active: bool, reason: str) -> User:
    """Deactivate (or reactivate) an account; a deactivated account's token stops working too."""
    if not active and actor is not None and actor.id == user.id:
        raise DomainError(NOT_SELF)
    user.active = active
    if not active:
        user.api_token_hash = None
    db.session.flush()
    audit.record(actor, "user.activate" if active else "user.deactivate", "user", user.id,
                 {"username": user.username}, reason)
    return user


def change_password(user: User, old: str, new: str) -> User:
    """The holder sets a new password.  Like an administrator's reset, it ends everything the
    old password let in: other sessions (their stamp no longer matches) and the API token (a
    password is changed because it may be known to someone else; so may the token)."""
    if not check_password_hash(user.password_hash, old or ""):
        audit.record(user, "user.password.change.refused", "user", user.id)
        raise DomainError(WRONG_PASSWORD)
    _check_new_password(new)
    user.password_hash = generate_password_hash(new)
    had_token = user.api_token_hash is not None
    user.api_token_hash = None
    db.session.flush()
    audit.record(user, "user.password.change", "user", user.id,
                 {"token_revoked": True} if had_token else None)
    return user


def reset_password(actor, user: User, new: str, reason: str) -> User:
    """An administrator sets a new password (to be handed over in person); the account's
    sign-in lock and its API token are cleared."""
    _check_new_password(new)
    user.password_hash = generate_password_hash(new)
    user.api_token_hash = None
    db.session.flush()
    clear_failures(user.username)
    audit.record(actor, "user.password.reset", "user", user.id, {"username": user.username},
                 reason)
    return user


def revoke_api_token(actor, user: User, reason: str | None = None) -> User:
    user.api_token_hash = None
    db.session.flush()
    audit.record(actor, "user.token.revoke", "user", user.id, None, reason)
    return user


def accounts() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.role, User.username)))
