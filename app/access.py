"""One mechanism for every route: a role list and, where the object belongs somewhere, a scope.

A staff account's jurisdiction is an administrative division code; it reaches every division
under it (province 14 ⊃ city 1404 ⊃ county 140404 ⊃ township 140404101 ⊃ village 140404101201
⊃ villagers' group 14040410120101).  A farmer reaches only their own household and person.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import wraps

from flask import abort, g
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.extensions import login_manager

ROLES = (
    "farmer",
    "collective_officer",
    "bureau_staff",
    "exchange_operator",
    "hukou_officer",
    "auditor",
    "compliance_supervisor",
    "admin",
)
ROLE_LABELS = {
    "farmer": _l("farmer"),
    "collective_officer": _l("collective officer"),
    "bureau_staff": _l("land bureau staff"),
    "exchange_operator": _l("exchange operator"),
    "hukou_officer": _l("hukou officer"),
    "auditor": _l("auditor"),
    "compliance_supervisor": _l("compliance supervisor"),
    "admin": _l("administrator"),
}
STAFF_ROLES = tuple(r for r in ROLES if r != "farmer")


def division_prefix(code: str | None) -> str:
    """The prefix that every division under `code` starts with."""
    if not code:
        return ""
    code = code.strip()
    if len(code) == 6:
        while code.endswith("00") and len(code) > 2:
            code = code[:-2]
    return code


def reaches(jurisdiction: str | None, code: str | None) -> bool:
    """True when a jurisdiction covers the division (or group) `code`."""
    if code is None:
        return False
    return division_prefix(code).startswith(division_prefix(jurisdiction))


@dataclass
class Scope:
    """Where an object belongs: the division or group codes it sits in and, for farmers,
    whose it is.  A user reaches the object when their jurisdiction covers any of the codes."""

    division_codes: list[str] = field(default_factory=list)
    household_codes: set[str] = field(default_factory=set)
    person_ids: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class AccessSpec:
    roles: tuple[str, ...]
    scoped: bool
    public: bool = False
    conceal: bool = False  # out of reach answers 404, like a missing object


def user_can(user, roles: tuple[str, ...], scope: Scope | None = None) -> bool:
    if not user.is_authenticated or not user.active:
        return False
    if user.role == "admin":
        return True
    if user.role not in roles:
        return False
    if scope is None:
        return True
    if user.role == "farmer":
        return bool(
            (user.household_code and user.household_code in scope.household_codes)
            or (user.person_id and user.person_id in scope.person_ids)
        )
    return any(reaches(user.jurisdiction_code, c) for c in scope.division_codes)


def require_scope(scope: Scope, roles: tuple[str, ...] | None = None) -> None:
    """Check a scope inside a view (for objects found after parsing), 403 otherwise."""
    spec_roles = roles or getattr(g, "access_roles", ROLES)
    if not user_can(current_user, spec_roles, scope):
        abort(403)


def access(*roles: str, scope=None, public: bool = False, conceal: bool = False):
    """Declare who may call a view.

    `scope(**view_kwargs) -> Scope` locates the object the route is about; the route is then
    open only to users whose jurisdiction (or, for farmers, household) reaches it.
    `public=True` marks a page anyone may see (login, certificate verification).
    `conceal=True`: an object out of the user's reach answers 404 like one that does not
    exist, so ids of private objects (another user's export job) cannot be enumerated.
    """
    for r in roles:
        if r not in ROLES:
            raise ValueError(f"unknown role {r}")

    def decorate(view):
        spec = AccessSpec(tuple(roles), scope is not None, public, conceal)

        @wraps(view)
        def wrapper(*args, **kwargs):
            if not public:
                if not current_user.is_authenticated:
                    return login_manager.unauthorized()
                g.access_roles = spec.roles
                if not user_can(current_user, spec.roles):
                    abort(403)  # the role alone decides, before anything is looked up
                sc = scope(**kwargs) if scope is not None else None
                if scope is not None and sc is None:
                    abort(404)
                if not user_can(current_user, spec.roles, sc):
                    abort(404 if conceal else 403)
            return view(*args, **kwargs)

        wrapper.access_spec = spec
        return wrapper

    return decorate


def jurisdiction_like(user) -> str | None:
    """A LIKE pattern for codes inside the user's jurisdiction; None means everywhere."""
    if user.role == "admin" or not user.jurisdiction_code:
        return None
    return division_prefix(user.jurisdiction_code) + "%"
