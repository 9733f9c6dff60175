from flask import Blueprint, render_template, request
from sqlalchemy import select

from app.access import access
from app.extensions import db

from . import operations as ops
from .models import AuditLog

bp = Blueprint("audit", __name__)
PAGE = 100


@bp.get("/audit")
@access("auditor")
def audit_list():
    action = (request.args.get("action") or "").strip()
    obj = (request.args.get("object") or "").strip()
    stmt = select(AuditLog)
    if action:
        stmt = stmt.where(AuditLog.action.startswith(action))
    if obj:
        t, _, i = obj.partition(":")
        stmt = stmt.where(AuditLog.object_type == t)
        if i:
            stmt = stmt.where(AuditLog.object_id == i)
    try:
        before = int(request.args.get("before", 0))
    except ValueError:
        before = 0
    if before:
        stmt = stmt.where(AuditLog.seq < before)
    rows = db.session.scalars(stmt.order_by(AuditLog.seq.desc()).limit(PAGE)).all()
    return render_template("audit/list.html", rows=rows, action=action, obj=obj,
                           next_before=rows[-1].seq if len(rows) == PAGE else None)


@bp.get("/audit/verify")
@access("auditor")
def audit_verify():
    n, breaches = ops.verify()
    return render_template("audit/verify.html", n=n, breaches=breaches)
