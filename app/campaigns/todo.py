"""To-do items of the confirmation campaigns: objections to resolve, notices ready to register."""
import datetime as dt

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import text

from app.access import jurisdiction_like
from app.extensions import db
from app.todo import Item, provider


@provider("campaigns")
def campaign_work(user, today: dt.date | None = None):
    if user.role not in ("bureau_staff", "collective_officer", "admin"):
        return []
    like = jurisdiction_like(user) or "%"
    # "ready" and "running" by the campaign's own rule (notice_has_run, migration 0021_house:
    # the notice's last day is still a notice day) — `notice_end <= today` listed a campaign
    # as ready to register on the last day, when registering it is refused.
    row = db.session.execute(text("""
        SELECT (SELECT count(*) FROM objection o JOIN campaign c ON c.id = o.campaign_id
                 WHERE o.status = 'open' AND c.fbfbm LIKE :l),
               (SELECT count(*) FROM campaign c WHERE c.status = 'notice'
                 AND notice_has_run(c.notice_end, :today) AND c.fbfbm LIKE :l),
               (SELECT count(*) FROM campaign c WHERE c.status = 'notice'
                 AND c.notice_start <= :today AND NOT notice_has_run(c.notice_end, :today)
                 AND c.fbfbm LIKE :l)"""), {"l": like, "today": today or dt.date.today()}).one()
    url = url_for("campaigns.campaign_list")
    return [Item(_("Objections to resolve"), row[0], url, "campaigns.objections"),
            Item(_("Notices ended, ready to register"), row[1], url, "campaigns.register"),
            Item(_("Public notices running"), row[2], url, "campaigns.notice")]
