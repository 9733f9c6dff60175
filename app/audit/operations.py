"""Writing and checking the audit log."""
from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass

from sqlalchemy import select, text

from app.extensions import db

from .models import AuditLog

SYSTEM = "system"


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def actor_name(actor) -> str:
    """The name that stands for an actor in records: a User's username, or the given name."""
    return getattr(actor, "username", actor or SYSTEM)


def record(actor, action: str, obj_type: str, obj_id, changes: dict | None = None,
           reason: str | None = None) -> AuditLog:
    """Append one entry.  `actor` is a User, or None / a string for the system."""
    if actor is None or isinstance(actor, str):
        actor_id, actor_name = None, actor or SYSTEM
    else:
        actor_id, actor_name = actor.id, actor.username
    entry = AuditLog(
        actor_id=actor_id,
        actor_name=actor_name,
        action=action,
        object_type=obj_type,
        object_id=None if obj_id is None else str(obj_id),
        changes=_jsonable(changes or {}),
        reason=reason,
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def diff(before: dict, after: dict) -> dict:
    """{field: [old, new]} for the fields that changed."""
    return {k: [before.get(k), after.get(k)] for k in after if before.get(k) != after.get(k)}


@dataclass
class Breach:
    seq: int
    id: int
    problem: str


# The same expression the trigger uses (migration 0001); keep the two in step.
VERIFY_SQL = text(
    """
    SELECT id, seq, hash, prev_hash,
           lag(hash) OVER (ORDER BY seq) AS expected_prev,
           encode(sha256(convert_to(
               coalesce(prev_hash, '') || '|' || seq || '|' ||
               ((extract(epoch FROM at) * 1000000)::bigint)::text || '|' ||
               coalesce(actor_id::text, '') || '|' || actor_name || '|' || action || '|' ||
               object_type || '|' || coalesce(object_id, '') || '|' || changes::text || '|' ||
               coalesce(reason, ''), 'UTF8')), 'hex') AS expected_hash
    FROM audit_log ORDER BY seq
    """
)


def verify() -> tuple[int, list[Breach]]:
    """Recompute the chain; return (rows checked, breaches)."""
    breaches: list[Breach] = []
    n = 0
    expected_seq = None
    for row in db.session.execute(VERIFY_SQL):
        n += 1
        if expected_seq is not None and row.seq != expected_seq:
            breaches.append(Breach(row.seq, row.id, f"gap in sequence: expected {expected_seq}"))
        expected_seq = row.seq + 1
        if row.prev_hash != row.expected_prev:
            breaches.append(Breach(row.seq, row.id, "previous-hash link broken"))
        if row.hash != row.expected_hash:
            breaches.append(Breach(row.seq, row.id, "content does not match its hash"))
    return n, breaches


def search(action: str = "", obj: str = "", before: int = 0, limit: int = 100) -> list[AuditLog]:
    """Entries newest first: action starting with `action`, object `type[:id]`, before seq."""
    stmt = select(AuditLog)
    if action:
        stmt = stmt.where(AuditLog.action.startswith(action))
    if obj:
        t, _, i = obj.partition(":")
        stmt = stmt.where(AuditLog.object_type == t)
        if i:
            stmt = stmt.where(AuditLog.object_id == i)
    if before:
        stmt = stmt.where(AuditLog.seq < before)
    return list(db.session.scalars(stmt.order_by(AuditLog.seq.desc()).limit(limit)))
