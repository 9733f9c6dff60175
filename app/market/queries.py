"""Read-only queries of the market for its pages (views hold no SQL). Other features' tables
(division, parcel) are only read here, never written."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, text

from app.extensions import db

from .models import Application, LedgerTxn, Listing, Mandate
from .operations import PUBLIC_STATES


def public_listings(f: dict, limit: int = 200) -> list[Listing]:
    """Public listings matching the filters `f` (strings from the query string), newest first.
    A malformed number raises ValueError or ArithmeticError."""
    stmt = select(Listing).where(Listing.status.in_(PUBLIC_STATES))
    if f["county"]:
        stmt = stmt.where(Listing.county_code == f["county"])
    if f["township"]:
        stmt = stmt.where(Listing.township_code == f["township"])
    if f["use"]:
        stmt = stmt.where(Listing.land_use == f["use"])
    if f["method"]:
        stmt = stmt.where(Listing.method == f["method"])
    if True:  # a malformed number raises ValueError / ArithmeticError to the caller (400)
        if f["min_area"]:
            stmt = stmt.where(Listing.area_mu >= Decimal(f["min_area"]))
        if f["max_area"]:
            stmt = stmt.where(Listing.area_mu <= Decimal(f["max_area"]))
        if f["min_price"]:
            stmt = stmt.where(Listing.reserve_price >= Decimal(f["min_price"]))
        if f["max_price"]:
            stmt = stmt.where(Listing.reserve_price <= Decimal(f["max_price"]))
        days = Listing.term_end - Listing.term_start  # PostgreSQL: date − date = days
        if f["min_years"]:
            stmt = stmt.where(days >= int(int(f["min_years"]) * 365.25))
        if f["max_years"]:
            stmt = stmt.where(days <= int((int(f["max_years"]) + 1) * 365.25))
    return list(db.session.scalars(stmt.order_by(Listing.announced_on.desc(), Listing.id.desc())
                                   .limit(limit)))


def listing_places() -> tuple[list, list]:
    """(townships, counties) that have listings, with their names."""
    townships = db.session.execute(text(
        "SELECT DISTINCT l.township_code, d.name FROM market_listing l "
        "LEFT JOIN division d ON d.code = l.township_code ORDER BY 1")).all()
    counties = db.session.execute(text(
        "SELECT DISTINCT l.county_code, d.name FROM market_listing l "
        "LEFT JOIN division d ON d.code = l.county_code ORDER BY 1")).all()
    return townships, counties


def listed_parcels() -> list:
    """Parcels of announced (and ended, awaiting trade) listings with their GeoJSON."""
    return db.session.execute(text("""
        SELECT l.id, l.title, l.reserve_price::text AS price, l.status, lp.parcel_code,
               lp.area_mu::text AS area, ST_AsGeoJSON(p.geom, 7) AS g
        FROM market_listing l JOIN market_listing_parcel lp ON lp.listing_id = l.id
        JOIN parcel p ON p.uid = lp.parcel_uid AND p.end_lifespan IS NULL
        WHERE l.status IN ('announced','agreement','competition','negotiation')
        ORDER BY l.id, lp.parcel_code""")).all()


def public_listings_by(args: dict, limit: int = 500) -> list[Listing]:
    """Public listings by county, township, land use and method (the JSON API), newest first."""
    stmt = select(Listing).where(Listing.status.in_(PUBLIC_STATES))
    for key, col in (("county", Listing.county_code), ("township", Listing.township_code),
                     ("use", Listing.land_use), ("method", Listing.method)):
        if args.get(key):
            stmt = stmt.where(col == args[key])
    return list(db.session.scalars(stmt.order_by(Listing.id.desc()).limit(limit)))


def applications_of_applicant(applicant_id: int) -> list[Application]:
    return list(db.session.scalars(select(Application).where(
        Application.applicant_id == applicant_id).order_by(Application.id)))


def applications_of_listing(listing_id: int) -> list[Application]:
    return list(db.session.scalars(select(Application).where(
        Application.listing_id == listing_id).order_by(Application.id)))


def application_of(listing_id: int, applicant_id: int) -> Application | None:
    return db.session.scalar(select(Application).where(
        Application.listing_id == listing_id, Application.applicant_id == applicant_id))


def review_queue(like: str | None = None) -> list[Listing]:
    """Listings under review first, then those announced or trading, within `like`."""
    stmt = select(Listing).where(Listing.status.in_(("review", "announced", "agreement",
                                                      "competition", "negotiation")))
    if like:
        stmt = stmt.where(Listing.fbfbm.like(like))
    return list(db.session.scalars(stmt.order_by(Listing.status != "review", Listing.id)))


def mandates(like: str | None = None, limit: int = 200) -> list[Mandate]:
    stmt = select(Mandate).order_by(Mandate.id.desc())
    if like:
        stmt = stmt.where(Mandate.household_code.like(like))
    return list(db.session.scalars(stmt.limit(limit)))


def ledger_transactions(limit: int = 1000, newest_first: bool = False) -> list[LedgerTxn]:
    order = LedgerTxn.id.desc() if newest_first else LedgerTxn.id
    return list(db.session.scalars(select(LedgerTxn).order_by(order).limit(limit)))
