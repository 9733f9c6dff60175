"""To-do items of the survey imports: faults of deliveries waiting to be corrected."""
from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import text

from app.extensions import db
from app.todo import Item, provider


@provider("imports")
def corrections(user):
    if user.role not in ("bureau_staff", "admin"):
        return []
    n = db.session.scalar(text("""
        SELECT count(*) FROM import_fault f JOIN import_batch b ON b.id = f.batch_id
        WHERE f.resolved_at IS NULL AND b.status NOT IN ('refused', 'failed')"""))
    return [Item(_("Survey faults to correct"), n, url_for("imports.batches"), "imports.faults")]
