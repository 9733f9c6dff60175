"""To-do items of the reports of coercion: reports not yet decided, within reach."""
from flask import url_for
from flask_babel import gettext as _

from app.access import jurisdiction_like
from app.todo import Item, provider

from . import operations as ops


@provider("reports")
def open_reports(user):
    if user.role not in ops.SUPERVISORS + ("admin",):
        return []
    c = ops.counts(jurisdiction_like(user))
    return [Item(_("Reports of coercion to investigate"), c["received"] + c["investigating"],
                 url_for("reports.listing"), "reports.open")]
