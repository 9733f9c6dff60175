from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.access import access
from app.errors import DomainError
from app.extensions import db

from . import operations as ops

bp = Blueprint("settings", __name__)


@bp.get("/settings")
@access("admin")
def settings_page():
    return render_template("settings/index.html", rows=ops.rows(), history=ops.history())


@bp.post("/settings")
@access("admin")
def change():
    try:
        changed = ops.change(current_user, request.form.get("key", ""),
                             request.form.get("value", ""), request.form.get("reason", ""),
                             request.form.get("expected"))
    except DomainError as e:
        db.session.rollback()
        flash(e.message(), "error")
        return render_template("settings/index.html", rows=ops.rows(), history=ops.history(),
                               failed=request.form.get("key")), e.status
    db.session.commit()
    flash(_("Setting saved.") if changed else _("No change."), "success")
    return redirect(url_for("settings.settings_page"))
