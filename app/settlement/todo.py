"""To-do items of settlement in town: applications waiting for a decision."""
from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import text

from app.access import jurisdiction_like
from app.extensions import db
from app.todo import Item, provider


@provider("settlement")
def decisions(user):
    if user.role not in ("hukou_officer", "admin"):
        return []
    n = db.session.scalar(text("""
        SELECT count(*) FROM settlement_application a JOIN person p ON p.id = a.applicant_id
        WHERE a.status = 'submitted' AND coalesce(p.hukou_division_code, '') LIKE :l"""),
        {"l": jurisdiction_like(user) or "%"})
    return [Item(_("Settlement applications to decide"), n,
                 url_for("settlement.application_list"), "settlement.decide")]
