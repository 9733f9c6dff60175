"""Closed lists of lawful grounds (membership ends, rights end): one check for all of them.

A ground outside the list is refused with the rule that names the law, and the refusal itself is
recorded in the audit log before it is raised (domain.md §9 rule 5: every attempt is recorded)."""
from __future__ import annotations

from app.audit import operations as audit
from app.errors import DomainError, Rule
from app.extensions import db


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
    audit.record(actor, action, obj_type, obj_id, {"ground": ground, "rule": refused.code},
                 reason)
    db.session.commit()  # the refusal is evidence: it stays even though the operation fails
    raise refused
