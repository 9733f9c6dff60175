"""To-do items of the reports of coercion: reports not yet decided."""
from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import text

from app.extensions import db
from app.todo import Item, provider


@provider("reports")
def open_reports(user):
    if user.role not in ("compliance_supervisor", "admin"):
        return []
    n = db.session.scalar(text("SELECT count(*) FROM coercion_report "
                               "WHERE status IN ('received', 'investigating')"))
    return [Item(_("Reports of coercion to investigate"), n, url_for("reports.listing"),
                 "reports.open")]
