"""To-do items of the transfer market, per role."""
from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import text

from app.access import jurisdiction_like
from app.extensions import db
from app.todo import Item, provider


@provider("market")
def market_work(user):
    if user.role in ("exchange_operator", "admin"):
        row = db.session.execute(text("""
            SELECT (SELECT count(*) FROM market_listing WHERE status = 'review'),
                   (SELECT count(*) FROM market_application WHERE status IN
                      ('registered', 'qualification')),
                   (SELECT count(*) FROM market_listing WHERE status IN
                      ('competition', 'agreement', 'negotiation')),
                   (SELECT count(*) FROM market_auction WHERE status = 'open')""")).one()
        url = url_for("market.review_queue")
        return [Item(_("Listings to review"), row[0], url, "market.review"),
                Item(_("Applications waiting for a deposit or qualification"), row[1], url,
                     "market.payments"),
                Item(_("Listings ready for their method"), row[2], url, "market.method"),
                Item(_("Auctions running"), row[3], url_for("market.market"), "market.auctions")]
    if user.role == "collective_officer":
        n = db.session.scalar(text("""
            SELECT count(*) FROM market_contract WHERE status = 'confirmed' AND fbfbm LIKE :l"""),
            {"l": jurisdiction_like(user) or "%"})
        return [Item(_("Contracts to file"), n, url_for("market.market"), "market.file")]
    if user.role == "farmer" and user.household_code:
        row = db.session.execute(text("""
            SELECT count(*) FILTER (WHERE status IN ('draft', 'returned')),
                   count(*) FILTER (WHERE status IN ('review', 'announced', 'agreement',
                                                      'competition', 'negotiation'))
            FROM market_listing WHERE household_code = :h"""),
            {"h": user.household_code}).one()
        url = url_for("market.mine")
        return [Item(_("My listings to complete or resubmit"), row[0], url, "market.mine"),
                Item(_("My listings on the market"), row[1], url, "market.live")]
    return []
