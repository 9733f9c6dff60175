"""To-do items of the withdrawal pilot: flagged withdrawals to check, payments to record."""
from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import text

from app.access import jurisdiction_like
from app.extensions import db
from app.todo import Item, provider


@provider("withdrawal")
def withdrawal_work(user):
    if user.role not in ("bureau_staff", "collective_officer", "auditor", "admin"):
        return []
    row = db.session.execute(text("""
        SELECT count(*) FILTER (WHERE status = 'check'),
               count(*) FILTER (WHERE status = 'consent'),
               count(*) FILTER (WHERE status = 'cooling')
        FROM withdrawal WHERE household_code LIKE :l"""),
        {"l": jurisdiction_like(user) or "%"}).one()
    url = url_for("withdrawal.withdrawal_list")
    return [Item(_("Flagged withdrawals to check"), row[0], url, "withdrawal.check"),
            Item(_("Withdrawals waiting for consents"), row[1], url, "withdrawal.consent"),
            Item(_("Withdrawals in cooling-off"), row[2], url, "withdrawal.cooling")]
