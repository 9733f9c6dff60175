"""Refusals that are evidence, and closed lists of lawful grounds (membership ends, rights end).

A refused attempt to break a rule of the rights guard is recorded in the audit log before it is
raised (domain.md §9 rule 5: every attempt is recorded), in its own commit so that it stays
even though the operation fails."""
from __future__ import annotations

from app.audit import operations as audit
from app.errors import DomainError, Rule
from app.extensions import db


def refuse(actor, error: DomainError, action: str, obj_type: str, obj_id,
           changes: dict | None = None, reason: str | None = None):
    """Record the refused attempt, commit the record, raise the error."""
    audit.record(actor, action, obj_type, obj_id, {**(changes or {}), "rule": error.code},
                 reason)
    db.session.commit()
    raise error


def lawful_ground(actor, ground: str | None, lawful: tuple[str, ...], forbidden: dict,
                  forbidden_rule: Rule, unknown_rule: Rule, action: str, obj_type: str,
                  obj_id, reason: str | None = None) -> str:
    """The stripped ground when it is on the lawful list; otherwise record and refuse."""
    ground = (ground or "").strip()
    if ground in lawful:
        return ground
    if ground in forbidden:
        refused = DomainError(forbidden_rule, ground=forbidden[ground])
    else:
        refused = DomainError(unknown_rule, ground=ground)
    refuse(actor, refused, action, obj_type, obj_id, {"ground": ground}, reason)
