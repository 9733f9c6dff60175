"""JSON API of the market (flask-smorest, problem JSON): public listings; listing, consent and
submission for listers; review, applicants and payments for the exchange operator; the ledger."""
from flask import abort, request
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.access import Scope, access, require_scope, user_can
from app.errors import problem_response
from app.extensions import db
from app.people.idnumber import mask_name
from app.people.models import Person

from . import operations as ops
from . import queries
from .models import (
    APPLICANT_KINDS,
    HOUSEHOLD_KINDS,
    METHODS,
    Application,
    Auction,
    Listing,
    Mandate,
    Tender,
)
from .views import LISTERS, OPERATOR, PUBLIC_STATES, application_scope, listing_scope

blp = Blueprint("api_market", __name__, url_prefix="/market",
                description="The transfer-trading market (农村产权流转交易市场): listings, "
                            "review, announcement, applicants and deposits")


def _applicant_key() -> str:
    """The applicant's key from `Authorization: Applicant <key>` (a bearer token is an account's,
    checked by app.security; an applicant has no account)."""
    scheme, _sep, key = request.headers.get("Authorization", "").strip().partition(" ")
    return key.strip() if scheme.lower() == "applicant" else ""


class MarketParcelSchema(Schema):
    parcel_code = fields.Str()
    area_mu = fields.Decimal(as_string=True)


class MarketListingSchema(Schema):
    id = fields.Int()
    kind = fields.Str()
    item_class = fields.Str()
    title = fields.Str()
    fbfbm = fields.Str()
    county_code = fields.Str()
    township_code = fields.Str()
    term_start = fields.Date()
    term_end = fields.Date()
    land_use = fields.Str()
    use_description = fields.Str(allow_none=True)
    area_mu = fields.Decimal(as_string=True)
    reserve_price = fields.Decimal(as_string=True, metadata={
        "description": "yuan per mu per year, exact to the fen"})
    payment_schedule = fields.Str()
    retransfer_allowed = fields.Bool()
    transferee_conditions = fields.Str(allow_none=True)
    deposit_fen = fields.Int()
    method = fields.Str()
    announcement_days = fields.Int()
    reannounce_count = fields.Int()
    mortgaged = fields.Bool()
    seized = fields.Bool()
    asset_description = fields.Str(allow_none=True)
    asset_valuation = fields.Decimal(as_string=True, allow_none=True)
    status = fields.Str()
    announced_on = fields.Date(allow_none=True)
    announcement_ends_on = fields.Date(allow_none=True)
    calendar_note = fields.Str(allow_none=True)
    parcels = fields.List(fields.Nested(MarketParcelSchema))
    qualified_applicants = fields.Function(lambda x: ops.qualified_count(x))


class MarketListingArgs(Schema):
    right_uid = fields.Int(required=True)
    kind = fields.Str(load_default="lease", validate=validate.OneOf(HOUSEHOLD_KINDS))
    parcels = fields.List(fields.Str(), required=True, validate=validate.Length(min=1))
    term_start = fields.Date(required=True)
    term_end = fields.Date(required=True)
    land_use = fields.Str(required=True, metadata={"description": "TDYT 1–4 (agricultural)"})
    use_description = fields.Str(load_default=None)
    reserve_price = fields.Str(required=True, metadata={
        "description": "yuan per mu per year as a decimal string, at most two places"})
    payment_schedule = fields.Str(load_default="annual")
    retransfer_allowed = fields.Bool(load_default=False)
    transferee_conditions = fields.Str(load_default=None)
    deposit = fields.Str(load_default=None, metadata={"description": "yuan; default: a county "
                                                                     "percentage of one year"})
    method = fields.Str(load_default=None, validate=validate.OneOf(METHODS))
    announcement_days = fields.Int(load_default=None, validate=validate.Range(min=1, max=60))
    reannounce_max = fields.Int(load_default=None, validate=validate.Range(min=0, max=5))
    mortgaged = fields.Bool(load_default=False)
    seized = fields.Bool(load_default=False)
    mandate_id = fields.Int(load_default=None)
    swap_household_code = fields.Str(load_default=None)
    issuing_party_consent_ref = fields.Str(load_default=None)


class MarketFilterArgs(Schema):
    county = fields.Str(load_default=None)
    township = fields.Str(load_default=None)
    use = fields.Str(load_default=None)
    method = fields.Str(load_default=None)


class MarketReviewArgs(Schema):
    decision = fields.Str(required=True, validate=validate.OneOf(("accept", "return")))
    reasons = fields.Str(load_default=None)


class MarketConsentArgs(Schema):
    person_id = fields.Int(required=True)


class MarketApplicantArgs(Schema):
    kind = fields.Str(required=True, validate=validate.OneOf(APPLICANT_KINDS))
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    id_number = fields.Str(load_default=None)
    credit_code = fields.Str(load_default=None)
    contact_name = fields.Str(load_default=None)
    phone = fields.Str(required=True)
    farming_capacity = fields.Str(required=True)
    priority = fields.Bool(load_default=False)


class MarketApplicationSchema(Schema):
    id = fields.Int()
    listing_id = fields.Int()
    status = fields.Str()
    priority_holder = fields.Bool()
    needs_review = fields.Bool()
    risk_deposit_fen = fields.Int()
    applicant = fields.Function(lambda a: mask_name(a.applicant.name)
                                if a.applicant.kind == "person" else a.applicant.name)
    applicant_kind = fields.Function(lambda a: a.applicant.kind)
    deposit_held_fen = fields.Function(lambda a: ops.held(a))
    risk_held_fen = fields.Function(lambda a: ops.held(a, "risk"))


class MarketPaymentArgs(Schema):
    amount_fen = fields.Int(required=True, validate=validate.Range(min=1))
    reference = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    what = fields.Str(load_default="deposit", validate=validate.OneOf(("deposit", "risk")))


class MarketLedgerEntrySchema(Schema):
    account = fields.Str()
    amount_fen = fields.Int()


class MarketLedgerTxnSchema(Schema):
    id = fields.Int()
    kind = fields.Str()
    listing_id = fields.Int(allow_none=True)
    application_id = fields.Int(allow_none=True)
    reference = fields.Str()
    recorded_by = fields.Str()
    at = fields.DateTime()
    entries = fields.List(fields.Nested(MarketLedgerEntrySchema))


class MarketLedgerSchema(Schema):
    reconciles = fields.Bool()
    bank_fen = fields.Int()
    owed_fen = fields.Int()
    transactions = fields.List(fields.Nested(MarketLedgerTxnSchema))


@blp.route("/listings")
@access(public=True)
@blp.arguments(MarketFilterArgs, location="query")
@blp.response(200, MarketListingSchema(many=True))
def list_listings(args):
    return queries.public_listings_by(args, 500)


@blp.route("/listings/<int:listing_id>")
@access(public=True)
@blp.response(200, MarketListingSchema)
def get_listing(listing_id: int):
    x = db.session.get(Listing, listing_id)
    if x is None or (x.status not in PUBLIC_STATES and not (
            current_user.is_authenticated and _reads(listing_id))):
        from flask import abort

        abort(404)
    return x


def _reads(listing_id: int) -> bool:
    return user_can(current_user, (*LISTERS, "bureau_staff", "auditor"),
                    listing_scope(listing_id))


@blp.route("/listings", methods=["POST"])
@access(*LISTERS)
@blp.arguments(MarketListingArgs)
@blp.response(201, MarketListingSchema)
def create_listing(args):
    right = ops.current_contract(args["right_uid"])
    if right is None:
        from flask import abort

        abort(404)
    require_scope(Scope([right.fbfbm], {right.holder_household_code}), LISTERS)
    mandate = db.session.get(Mandate, args["mandate_id"]) if args["mandate_id"] else None
    x = ops.create_listing(
        current_user, right, args["kind"], args["parcels"], args["term_start"],
        args["term_end"], args["land_use"], args["reserve_price"], args["payment_schedule"],
        retransfer_allowed=args["retransfer_allowed"],
        transferee_conditions=args["transferee_conditions"], deposit_yuan=args["deposit"],
        method=args["method"], announcement_days=args["announcement_days"],
        reannounce_max=args["reannounce_max"], mortgaged=args["mortgaged"],
        seized=args["seized"], use_description=args["use_description"], mandate=mandate,
        swap_household_code=args["swap_household_code"],
        issuing_party_consent_ref=args["issuing_party_consent_ref"])
    db.session.commit()
    return x


@blp.route("/listings/<int:listing_id>/consent", methods=["POST"])
@access(*LISTERS, scope=listing_scope)
@blp.arguments(MarketConsentArgs)
@blp.response(200, MarketListingSchema)
def consent(args, listing_id: int):
    """An adult co-holder's own online consent (their signed statement goes through the page)."""
    x = db.session.get(Listing, listing_id)
    person = db.session.get(Person, args["person_id"])
    if person is None:
        from flask import abort

        abort(404)
    ops.consent(current_user, x, person, None)
    db.session.commit()
    return x


@blp.route("/listings/<int:listing_id>/submit", methods=["POST"])
@access(*LISTERS, scope=listing_scope)
@blp.response(200, MarketListingSchema)
def submit(listing_id: int):
    x = db.session.get(Listing, listing_id)
    ops.submit(current_user, x)
    db.session.commit()
    return x


@blp.route("/listings/<int:listing_id>/review", methods=["POST"])
@access(*OPERATOR, scope=listing_scope)
@blp.arguments(MarketReviewArgs)
@blp.response(200, MarketListingSchema)
def review(args, listing_id: int):
    x = db.session.get(Listing, listing_id)
    ops.review(current_user, x, args["decision"] == "accept", args["reasons"])
    db.session.commit()
    return x


@blp.route("/listings/<int:listing_id>/applications")
@access(*OPERATOR, "bureau_staff", "auditor", scope=listing_scope)
@blp.response(200, MarketApplicationSchema(many=True))
def applications(listing_id: int):
    return queries.applications_of_listing(listing_id)


@blp.route("/listings/<int:listing_id>/applications", methods=["POST"])
@access(*OPERATOR, scope=listing_scope)
@blp.arguments(MarketApplicantArgs)
@blp.response(201, MarketApplicationSchema)
def register(args, listing_id: int):
    """The operator registers an applicant at the counter."""
    x = db.session.get(Listing, listing_id)
    applicant, _key = ops.register_applicant(
        current_user, args["kind"], args["name"], args["phone"], args["farming_capacity"],
        id_number=args["id_number"], credit_code=args["credit_code"],
        contact_name=args["contact_name"])
    a = ops.apply(current_user, x, applicant, args["priority"])
    db.session.commit()
    return a


@blp.route("/applications/<int:market_app_id>/payments", methods=["POST"])
@access(*OPERATOR, scope=application_scope)
@blp.arguments(MarketPaymentArgs)
@blp.response(201, MarketApplicationSchema)
def payment(args, market_app_id: int):
    a = db.session.get(Application, market_app_id)
    ops.record_payment(current_user, a, args["amount_fen"], args["reference"], args["what"])
    db.session.commit()
    return a


@blp.route("/ledger")
@access(*OPERATOR, "auditor")
@blp.response(200, MarketLedgerSchema)
def ledger():
    rec = ops.reconciliation()
    return {"reconciles": rec["ok"], "bank_fen": rec["bank"], "owed_fen": rec["owed"],
            "transactions": queries.ledger_transactions(1000)}


# ---------------------------------------------------------------------------- the auction


class AuctionBidSchema(Schema):
    seq = fields.Int()
    bidder = fields.Str()
    amount_fen = fields.Int()
    market_at = fields.DateTime()
    ends_at = fields.DateTime()


class AuctionStateSchema(Schema):
    id = fields.Int()
    listing_id = fields.Int()
    status = fields.Str()
    reserve_fen = fields.Int()
    step_fen = fields.Int()
    current_price_fen = fields.Int(allow_none=True)
    bid_count = fields.Int()
    starts_at = fields.DateTime()
    timed_from = fields.DateTime()
    ends_at = fields.DateTime()
    now = fields.DateTime()
    extension_minutes = fields.Int()
    last_hash = fields.Str()
    bids = fields.List(fields.Nested(AuctionBidSchema))


class BidArgs(Schema):
    amount_fen = fields.Int(required=True, validate=validate.Range(min=1))
    client_key = fields.Str(required=True, validate=validate.Length(min=8, max=64))


class BidResultSchema(Schema):
    seq = fields.Int()
    bidder = fields.Str()
    amount_fen = fields.Int()
    market_at = fields.DateTime()
    ends_at = fields.DateTime()
    hash = fields.Str()
    new = fields.Bool()


@blp.route("/auctions/<int:auction_id>")
@access(public=True)  # bidders authenticate by their applicant key
@blp.response(200, AuctionStateSchema)
def auction_state(auction_id: int):
    """The auction as every watcher sees it: bidders only as 竞买人N, times on the server's
    market clock.  `?since=N` lists only the bids after sequence N."""
    from flask import request

    return ops.auction_state(auction_id, request.args.get("since", 0, type=int))


@blp.route("/auctions/<int:auction_id>/bids", methods=["POST"])
@access(public=True)  # bidders authenticate by their applicant key
@blp.arguments(BidArgs)
@blp.response(201, BidResultSchema)
def bid(args, auction_id: int):
    """A bid by an admitted bidder, authenticated by the applicant's key
    (`Authorization: Applicant <key>`).  Retrying with the same `client_key` returns the bid
    already made (200), never a second one."""

    key = _applicant_key()
    application_id = ops.bidder_application(auction_id, key)
    try:
        row, new = ops.place_bid(auction_id, application_id, args["amount_fen"],
                                 args["client_key"])
    except ops.DomainError as e:
        if "current" not in e.params:
            raise
        return problem_response({**e.problem(), "current_price_fen": e.params["current"]},
                                e.status)
    db.session.commit()
    if new:
        ops.publish_bid(auction_id, row)
    out = {"seq": row["seq"], "bidder": ops.pseudonym(row["bidder_no"]),
           "amount_fen": row["amount_fen"], "market_at": row["market_at"],
           "ends_at": row["ends_after"], "hash": row["hash"], "new": new}
    return out, 201 if new else 200


# ---------------------------------------------------------------------------- priority, tender


class SealedBidArgs(Schema):
    commitment = fields.Str(required=True, validate=validate.Length(equal=64))


class RevealArgs(Schema):
    price_fen = fields.Int(required=True, validate=validate.Range(min=1))
    nonce = fields.Str(required=True, validate=validate.Length(min=8, max=100))
    plan = fields.Str(required=True)


class SealedBidSchema(Schema):
    id = fields.Int()
    commitment = fields.Str()
    lodged_at = fields.DateTime()
    price_fen = fields.Int(allow_none=True)
    revealed_at = fields.DateTime(allow_none=True)


def _bearer_application(listing_id: int):

    applicant = ops.applicant_by_key(_applicant_key())
    a = queries.application_of(listing_id, applicant.id if applicant else -1)
    if a is None:
        abort(403)
    return a


@blp.route("/auctions/<int:auction_id>/priority", methods=["POST"])
@access(public=True)  # bidders authenticate by their applicant key
@blp.response(200, AuctionStateSchema)
def priority(auction_id: int):
    """A priority holder takes the deal at the final price (art 38), by the applicant's key."""
    a = db.get_or_404(Auction, auction_id)
    app_ = _bearer_application(a.listing_id)
    ops.exercise_priority(f"applicant:{app_.applicant_id}", a, app_)
    db.session.commit()
    return ops.auction_state(auction_id)


@blp.route("/tenders/<int:tender_id>/bids", methods=["POST"])
@access(public=True)  # bidders authenticate by their applicant key
@blp.arguments(SealedBidArgs)
@blp.response(201, SealedBidSchema)
def lodge(args, tender_id: int):
    """Lodge a sealed bid: only sha256("price_fen|nonce|plan"), computed on your side."""
    t = db.get_or_404(Tender, tender_id)
    app_ = _bearer_application(t.listing_id)
    b = ops.lodge(f"applicant:{app_.applicant_id}", t, app_, args["commitment"])
    db.session.commit()
    return b


@blp.route("/tenders/<int:tender_id>/reveal", methods=["POST"])
@access(public=True)  # bidders authenticate by their applicant key
@blp.arguments(RevealArgs)
@blp.response(200, SealedBidSchema)
def reveal(args, tender_id: int):
    """At the opening: reveal price, nonce and plan; checked against the commitment."""
    t = db.get_or_404(Tender, tender_id)
    app_ = _bearer_application(t.listing_id)
    b = ops.reveal(f"applicant:{app_.applicant_id}", t, app_, args["price_fen"], args["nonce"],
                   args["plan"])
    db.session.commit()
    return b
