"""Public open-data page and downloads (issue 19 point 4).  No login: what is here is what the
law makes public (register statistics, completed market transactions without personal data)."""
import datetime as dt
import json

from flask import Blueprint, Response, abort, current_app, render_template, url_for

from app.access import access

from . import operations as ops

bp = Blueprint("opendata", __name__)


@bp.get("/opendata")
@access(public=True)
def index():
    return render_template("opendata/index.html", files=ops.FILES,
                           township_fields=ops.TOWNSHIP_FIELDS, result_fields=ops.RESULT_FIELDS)


@bp.get("/opendata/<name>")
@access(public=True)
def download(name: str):
    if name == ops.FILES[0]:
        body = "\ufeff" + ops.to_csv(ops.township_statistics(), ops.TOWNSHIP_FIELDS)
        return Response(body, mimetype="text/csv", headers={
            "Content-Disposition": f"attachment; filename={name}"})
    if name == ops.FILES[1]:
        body = "\ufeff" + ops.to_csv(ops.market_results(), ops.RESULT_FIELDS)
        return Response(body, mimetype="text/csv", headers={
            "Content-Disposition": f"attachment; filename={name}"})
    if name == ops.FILES[2]:
        base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
        uri = base + url_for("opendata.download", name=name) if base else \
            url_for("opendata.download", name=name, _external=True)
        results = ops.market_results()
        pkg = ops.ocds_release_package(results, dt.datetime.now(dt.UTC), uri)
        if not results:
            abort(404)  # an OCDS release package holds at least one release
        return Response(json.dumps(pkg, ensure_ascii=False), mimetype="application/json")
    abort(404)
