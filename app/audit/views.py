from flask import Blueprint, render_template, request

from app.access import access

from . import operations as ops

bp = Blueprint("audit", __name__)
PAGE = 100


@bp.get("/audit")
@access("auditor")
def audit_list():
    action = (request.args.get("action") or "").strip()
    obj = (request.args.get("object") or "").strip()
    try:
        before = int(request.args.get("before", 0))
    except ValueError:
        before = 0
    rows = ops.search(action, obj, before, PAGE)
    return render_template("audit/list.html", rows=rows, action=action, obj=obj,
                           next_before=rows[-1].seq if len(rows) == PAGE else None)


@bp.get("/audit/verify")
@access("auditor")
def audit_verify():
    n, breaches = ops.verify()
    return render_template("audit/verify.html", n=n, breaches=breaches)
