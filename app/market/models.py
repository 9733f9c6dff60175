"""The transfer-trading market (农村产权流转交易市场), part I: mandates, listings with their parcels
and consents, the encumbrance register on rights, applicants, applications and the deposit
ledger.  The database carries the integrity rules (see migration 0015_market): an exclusion
constraint on (parcel, term) for live listings, append-only consents and ledger, and a ledger
whose every transaction sums to zero."""
import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    FetchedValue,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import func, text
from sqlalchemy.types import DateTime

from app.extensions import db

# Kinds of item.  Household items: the land management right by lease (出租), subcontract
# (转包), equity (入股) or another lawful means (art 36); swap (互换, art 33) and transfer of the
# contract right (转让, art 34) as kinds of their own.  Collective items: reserve land (机动地),
# "four wastelands" (四荒) use rights, collective operating assets (non-spatial).
HOUSEHOLD_KINDS = ("lease", "subcontract", "equity", "other", "swap", "transfer")
COLLECTIVE_KINDS = ("reserve_land", "wasteland", "asset")
KINDS = HOUSEHOLD_KINDS + COLLECTIVE_KINDS
# draft → review → announced → (ended: agreement | competition | negotiation); returned → review
STATUSES = ("draft", "review", "returned", "announced", "agreement", "competition",
            "negotiation", "withdrawn")
LIVE = ("review", "announced", "agreement", "competition", "negotiation")
METHODS = ("auction", "tender")
APPLICANT_KINDS = ("person", "family_farm", "cooperative", "company")


class Mandate(db.Model):
    """A household's written mandate (委托书) for the collective or the exchange to list on its
    behalf (农村土地经营权流转管理办法 2021): the file itself is kept, with its hash."""

    __tablename__ = "market_mandate"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_code: Mapped[str] = mapped_column(String(18), nullable=False, index=True)
    agent: Mapped[str] = mapped_column(String(12), nullable=False)
    agent_name: Mapped[str] = mapped_column(String(100), nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    valid_from: Mapped[dt.date] = mapped_column(Date, nullable=False)
    valid_until: Mapped[dt.date] = mapped_column(Date, nullable=False)
    filename: Mapped[str] = mapped_column(String(200), nullable=False)
    content: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    uploaded_by: Mapped[str] = mapped_column(String(50), nullable=False)
    uploaded_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint("agent IN ('collective','exchange')", name="agent"),
        CheckConstraint("valid_until >= valid_from", name="validity"),
        CheckConstraint("length(content) > 0 AND sha256 = encode(sha256(content), 'hex')",
                        name="file_kept"),
    )


class Listing(db.Model):
    """An item listed for transfer, from draft to the end of its announcement."""

    __tablename__ = "market_listing"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(14), nullable=False)
    item_class: Mapped[str] = mapped_column(String(10), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    right_uid: Mapped[int | None] = mapped_column(BigInteger, index=True)
    household_code: Mapped[str | None] = mapped_column(String(18), index=True)
    fbfbm: Mapped[str] = mapped_column(String(14), nullable=False, index=True)
    county_code: Mapped[str] = mapped_column(String(6), nullable=False)
    township_code: Mapped[str] = mapped_column(String(9), nullable=False)
    listed_by: Mapped[str] = mapped_column(String(50), nullable=False)
    listed_via: Mapped[str] = mapped_column(String(12), nullable=False)
    mandate_id: Mapped[int | None] = mapped_column(ForeignKey("market_mandate.id"))
    resolution_ref: Mapped[str | None] = mapped_column(String(200))
    swap_household_code: Mapped[str | None] = mapped_column(String(18))
    issuing_party_consent_ref: Mapped[str | None] = mapped_column(String(200))
    term_start: Mapped[dt.date] = mapped_column(Date, nullable=False)
    term_end: Mapped[dt.date] = mapped_column(Date, nullable=False)
    land_use: Mapped[str] = mapped_column(String(1), nullable=False)
    use_description: Mapped[str | None] = mapped_column(Text)
    area_mu: Mapped[Decimal] = mapped_column(Numeric(12, 2), nullable=False, server_default="0")
    reserve_price: Mapped[Decimal] = mapped_column(Numeric(12, 2), nullable=False)
    payment_schedule: Mapped[str] = mapped_column(String(200), nullable=False)
    retransfer_allowed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    transferee_conditions: Mapped[str | None] = mapped_column(Text)
    deposit_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    method: Mapped[str] = mapped_column(String(8), nullable=False)
    announcement_days: Mapped[int] = mapped_column(Integer, nullable=False)
    reannounce_max: Mapped[int] = mapped_column(Integer, nullable=False)
    reannounce_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    mortgaged: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    seized: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    asset_description: Mapped[str | None] = mapped_column(Text)
    asset_valuation: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    status: Mapped[str] = mapped_column(String(12), nullable=False, server_default="draft")
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(50))
    announced_on: Mapped[dt.date | None] = mapped_column(Date)
    announcement_ends_on: Mapped[dt.date | None] = mapped_column(Date)
    calendar_note: Mapped[str | None] = mapped_column(Text)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    parcels = relationship("ListingParcel", back_populates="listing",
                           order_by="ListingParcel.parcel_code")
    consents = relationship("ListingConsent", order_by="ListingConsent.id")
    applications = relationship("Application", back_populates="listing",
                                order_by="Application.id")

    __table_args__ = (
        CheckConstraint("kind IN ('lease','subcontract','equity','other','swap','transfer',"
                        "'reserve_land','wasteland','asset')", name="kind"),
        CheckConstraint("(item_class = 'household' AND kind IN ('lease','subcontract','equity',"
                        "'other','swap','transfer') AND right_uid IS NOT NULL AND "
                        "household_code IS NOT NULL) OR (item_class = 'collective' AND kind IN "
                        "('reserve_land','wasteland','asset') AND resolution_ref IS NOT NULL)",
                        name="item_class"),
        CheckConstraint("listed_via IN ('own','collective','exchange')", name="listed_via"),
        # 2021 办法: no organisation decides a household's transfer without its written mandate.
        CheckConstraint("item_class = 'collective' OR listed_via = 'own' OR mandate_id IS NOT NULL",
                        name="mandate_for_agents"),
        CheckConstraint("kind NOT IN ('swap','transfer') OR issuing_party_consent_ref IS NOT NULL",
                        name="issuing_party_consent"),
        CheckConstraint("term_end > term_start", name="term"),
        CheckConstraint("land_use IN ('1','2','3','4')", name="agricultural_use"),
        CheckConstraint("reserve_price >= 0 AND deposit_fen >= 0", name="money"),
        CheckConstraint("method IN ('auction','tender')", name="method"),
        CheckConstraint("announcement_days >= 1 AND reannounce_max >= 0 AND "
                        "reannounce_count >= 0", name="counts"),
        CheckConstraint("status IN ('draft','review','returned','announced','agreement',"
                        "'competition','negotiation','withdrawn')", name="status"),
        CheckConstraint("status NOT IN ('announced','agreement','competition','negotiation') OR "
                        "(announced_on IS NOT NULL AND announcement_ends_on >= announced_on)",
                        name="announcement_window"),
    )

    @property
    def live(self) -> bool:
        return self.status in LIVE

    @property
    def reserve_fen(self) -> int:
        return int(self.reserve_price * 100)


class ListingParcel(db.Model):
    """A parcel of a listing over the listing's term.  `live` follows the listing's status; the
    exclusion constraint refuses two live rows over one parcel for overlapping terms."""

    __tablename__ = "market_listing_parcel"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("market_listing.id"), nullable=False,
                                            index=True)
    parcel_uid: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    parcel_code: Mapped[str] = mapped_column(String(28), nullable=False)
    area_mu: Mapped[Decimal] = mapped_column(Numeric(12, 2), nullable=False)
    term_start: Mapped[dt.date] = mapped_column(Date, nullable=False)
    term_end: Mapped[dt.date] = mapped_column(Date, nullable=False)
    live: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")

    listing = relationship("Listing", back_populates="parcels")

    __table_args__ = (UniqueConstraint("listing_id", "parcel_uid"),)


class ListingConsent(db.Model):
    """The recorded consent of an adult co-holder of the household right (append-only)."""

    __tablename__ = "market_consent"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("market_listing.id"), nullable=False,
                                            index=True)
    person_id: Mapped[int] = mapped_column(Integer, nullable=False)
    # the county of the person row it names, filled by the database (trigger
    # market_consent_person_county, migration 0045): the key is (person_id, person_county_code)
    person_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    how: Mapped[str] = mapped_column(String(8), nullable=False)
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(50), nullable=False)
    recorded_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    person = relationship("Person", primaryjoin="Person.id == foreign(ListingConsent.person_id)")

    __table_args__ = (
        ForeignKeyConstraint(["person_id", "person_county_code"], ["person.id", "person.county_code"],
                             match="FULL"),
        UniqueConstraint("listing_id", "person_id"),
        CheckConstraint("how IN ('online','document')", name="how"),
        CheckConstraint("how = 'online' OR document_sha256 IS NOT NULL", name="document"),
    )


class Encumbrance(db.Model):
    """The encumbrance register on rights: a mortgage (抵押) of a management right (农村土地承包法
    art 47) or a seizure (查封) by a court, with who recorded it and why."""

    __tablename__ = "right_encumbrance"

    # The table's key is (id, county_code) (Citus-ready, migration 0041); the mapper's is `id`.
    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    right_uid: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    holder: Mapped[str] = mapped_column(String(200), nullable=False)
    reference: Mapped[str] = mapped_column(String(200), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(50), nullable=False)
    recorded_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    released_on: Mapped[dt.date | None] = mapped_column(Date)
    released_by: Mapped[str | None] = mapped_column(String(50))
    release_reason: Mapped[str | None] = mapped_column(Text)
    # the county of the right it encumbers, copied by the database (trigger
    # right_encumbrance_county_code; docs/scaling.md)
    county_code: Mapped[str] = mapped_column(String(6), nullable=False,
                                             server_default=FetchedValue())

    __mapper_args__ = {"primary_key": [id]}
    __table_args__ = (
        PrimaryKeyConstraint("id", "county_code"),
        CheckConstraint("kind IN ('mortgage','seizure')", name="kind"),
        CheckConstraint("(released_on IS NULL) = (released_by IS NULL)", name="release"),
    )


class EncumbranceConsent(db.Model):
    """The creditor's or court's consent to announcing a listing of an encumbered right."""

    __tablename__ = "market_encumbrance_consent"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("market_listing.id"), nullable=False,
                                            index=True)
    encumbrance_id: Mapped[int] = mapped_column(Integer, nullable=False)
    # the encumbrance's county, filled by the database (trigger, migration 0041)
    encumbrance_county_code: Mapped[str] = mapped_column(String(6), nullable=False,
                                                         server_default=FetchedValue())
    reference: Mapped[str] = mapped_column(String(200), nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(50), nullable=False)
    recorded_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("listing_id", "encumbrance_id"),
        ForeignKeyConstraint(["encumbrance_id", "encumbrance_county_code"],
                             ["right_encumbrance.id", "right_encumbrance.county_code"],
                             match="FULL"),
    )


class Applicant(db.Model):
    """An intending transferee (意向受让方): a person (GB 11643 ID), or a family farm, cooperative
    or company (统一社会信用代码, GB 32100 check character)."""

    __tablename__ = "market_applicant"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    id_number: Mapped[str | None] = mapped_column(String(18))
    credit_code: Mapped[str | None] = mapped_column(String(18))
    contact_name: Mapped[str | None] = mapped_column(String(50))
    phone: Mapped[str] = mapped_column(String(20), nullable=False)
    farming_capacity: Mapped[str] = mapped_column(Text, nullable=False)
    key_sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint("kind IN ('person','family_farm','cooperative','company')", name="kind"),
        CheckConstraint("(kind = 'person' AND id_number IS NOT NULL AND "
                        "gb11643_valid(id_number)) OR (kind <> 'person' AND credit_code IS NOT "
                        "NULL AND gb32100_valid(credit_code))", name="identity_checked"),
    )


class Application(db.Model):
    """An applicant's registration for one listing during its announcement."""

    __tablename__ = "market_application"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("market_listing.id"), nullable=False,
                                            index=True)
    applicant_id: Mapped[int] = mapped_column(ForeignKey("market_applicant.id"), nullable=False,
                                              index=True)
    status: Mapped[str] = mapped_column(String(14), nullable=False)
    priority_holder: Mapped[bool] = mapped_column(Boolean, nullable=False,
                                                  server_default="false")
    member_person_id: Mapped[int | None] = mapped_column(Integer)
    # the county of the person row it names, filled by the database (trigger
    # market_application_person_county, migration 0045): the key is (member_person_id,
    # member_person_county_code)
    member_person_county_code: Mapped[str | None] = mapped_column(
        String(6), server_default=FetchedValue())
    # Renewal on equal terms (2021 办法 art 10): the contract whose transferee this is.
    renewal_contract_id: Mapped[int | None] = mapped_column(ForeignKey("market_contract.id"))
    needs_review: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    risk_deposit_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    qualification_note: Mapped[str | None] = mapped_column(Text)
    qualified_by: Mapped[str | None] = mapped_column(String(50))
    registered_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    listing = relationship("Listing", back_populates="applications")
    applicant = relationship("Applicant")

    __table_args__ = (
        ForeignKeyConstraint(["member_person_id", "member_person_county_code"],
                             ["person.id", "person.county_code"],
                             match="FULL"),
        UniqueConstraint("listing_id", "applicant_id"),
        CheckConstraint("status IN ('registered','qualification','qualified','refused')",
                        name="status"),
        CheckConstraint("NOT priority_holder OR member_person_id IS NOT NULL OR "
                        "renewal_contract_id IS NOT NULL",
                        name="priority_is_a_member"),
        CheckConstraint("risk_deposit_fen >= 0", name="risk_deposit"),
    )


class LedgerTxn(db.Model):
    """One movement of money (append-only); its entries sum to zero (checked at commit)."""

    __tablename__ = "market_ledger_txn"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    listing_id: Mapped[int | None] = mapped_column(ForeignKey("market_listing.id"), index=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("market_application.id"),
                                                       index=True)
    reference: Mapped[str] = mapped_column(String(100), nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(50), nullable=False)
    at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    entries = relationship("LedgerEntry", order_by="LedgerEntry.id")

    __table_args__ = (
        CheckConstraint("kind IN ('deposit_lodged','deposit_refunded','deposit_applied',"
                        "'deposit_forfeited','risk_lodged','risk_refunded','price_paid',"
                        "'price_paid_out','rent_received','rent_paid_out')", name="kind"),
        CheckConstraint("length(trim(reference)) > 0", name="reference"),
    )


class LedgerEntry(db.Model):
    """A debit (positive) or credit (negative) of one account, in fen."""

    __tablename__ = "market_ledger_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    txn_id: Mapped[int] = mapped_column(ForeignKey("market_ledger_txn.id"), nullable=False,
                                        index=True)
    account: Mapped[str] = mapped_column(String(60), nullable=False, index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (CheckConstraint("amount_fen <> 0", name="nonzero"),)


# ---------------------------------------------------------------------------- trading (II)
# The tables and their guards are in migration 0016_market_trading: a bid is checked, numbered,
# timed, hash-chained and its extension applied by a trigger under the auction's row lock.


class Auction(db.Model):
    """An online auction (网络竞价) of a listing: a free-bidding period from `starts_at`, then the
    timed period from `timed_from` to `ends_at`, which a bid in its last N minutes moves to bid
    time + N.  Times are market times: the server clock accelerated from `clock_origin` by
    `accelerator` (1 in production)."""

    __tablename__ = "market_auction"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("market_listing.id"), nullable=False,
                                            unique=True)
    reserve_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    step_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    starts_at = mapped_column(DateTime(timezone=True), nullable=False)
    timed_from = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at = mapped_column(DateTime(timezone=True), nullable=False)
    extension_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    clock_origin = mapped_column(DateTime(timezone=True), nullable=False)
    accelerator: Mapped[Decimal] = mapped_column(Numeric(12, 3), nullable=False)
    priority_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    current_price_fen: Mapped[int | None] = mapped_column(BigInteger)
    bid_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    last_hash: Mapped[str] = mapped_column(Text, nullable=False,
                                           server_default=func.repeat("0", 64))
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="open")
    closed_at = mapped_column(DateTime(timezone=True))
    priority_until = mapped_column(DateTime(timezone=True))
    priority_outcome: Mapped[str | None] = mapped_column(String(10))
    created_by: Mapped[str] = mapped_column(String(50), nullable=False)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    listing = relationship("Listing")
    bidders = relationship("AuctionBidder", order_by="AuctionBidder.bidder_no")


class AuctionBidder(db.Model):
    """An admitted bidder and its pseudonymous number (竞买人N), fixed at the auction's start."""

    __tablename__ = "market_auction_bidder"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    auction_id: Mapped[int] = mapped_column(ForeignKey("market_auction.id"), nullable=False)
    application_id: Mapped[int] = mapped_column(ForeignKey("market_application.id"),
                                                nullable=False)
    bidder_no: Mapped[int] = mapped_column(Integer, nullable=False)
    priority_holder: Mapped[bool] = mapped_column(Boolean, nullable=False)

    application = relationship("Application")

    __table_args__ = (UniqueConstraint("auction_id", "application_id",
                                       name="uq_market_auction_bidder_application"),
                      UniqueConstraint("auction_id", "bidder_no",
                                       name="uq_market_auction_bidder_no"))


class Bid(db.Model):
    """An accepted bid (append-only).  The client supplies auction, application, amount and
    client key; the trigger sets everything else."""

    __tablename__ = "market_bid"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    auction_id: Mapped[int] = mapped_column(ForeignKey("market_auction.id"), nullable=False)
    application_id: Mapped[int] = mapped_column(ForeignKey("market_application.id"),
                                                nullable=False)
    client_key: Mapped[str] = mapped_column(String(64), nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    bidder_no: Mapped[int] = mapped_column(Integer, nullable=False)
    real_at = mapped_column(DateTime(timezone=True), nullable=False)
    market_at = mapped_column(DateTime(timezone=True), nullable=False)
    ends_before = mapped_column(DateTime(timezone=True), nullable=False)
    ends_after = mapped_column(DateTime(timezone=True), nullable=False)
    prev_hash: Mapped[str] = mapped_column(Text, nullable=False)
    hash: Mapped[str] = mapped_column(Text, nullable=False)

    __table_args__ = (UniqueConstraint("auction_id", "seq", name="uq_market_bid_seq"),
                      UniqueConstraint("auction_id", "client_key",
                                       name="uq_market_bid_client_key"))


class PriorityExercise(db.Model):
    """A priority holder's exercise of priority on equal terms (art 38 (5)), append-only."""

    __tablename__ = "market_priority_exercise"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    auction_id: Mapped[int] = mapped_column(ForeignKey("market_auction.id"), nullable=False)
    application_id: Mapped[int] = mapped_column(ForeignKey("market_application.id"),
                                                nullable=False)
    price_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    real_at = mapped_column(DateTime(timezone=True), nullable=False)
    market_at = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("auction_id", "application_id",
                                       name="uq_market_priority_exercise_once"),)


class Award(db.Model):
    """The award (成交) of a listing to an application, with its deadlines; a forfeited award
    may pass to the next-ranked bidder (a new row, rank + 1)."""

    __tablename__ = "market_award"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("market_listing.id"), nullable=False)
    auction_id: Mapped[int | None] = mapped_column(ForeignKey("market_auction.id"))
    application_id: Mapped[int] = mapped_column(ForeignKey("market_application.id"),
                                                nullable=False)
    method: Mapped[str] = mapped_column(String(12), nullable=False)
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    price_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    notice_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    pay_by: Mapped[dt.date] = mapped_column(Date, nullable=False)
    sign_by: Mapped[dt.date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="pending")
    paid_on: Mapped[dt.date | None] = mapped_column(Date)
    forfeited_on: Mapped[dt.date | None] = mapped_column(Date)
    seller_agreed_ref: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(50), nullable=False)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    listing = relationship("Listing")
    application = relationship("Application")

    __table_args__ = (db.Index("market_award_one_standing", "listing_id", unique=True,
                               postgresql_where=text("status <> 'forfeited'")),)


class Contract(db.Model):
    """The transfer contract (art 40) generated from the award, in the structure of the model
    lease contract GF—2021—2606 (equity: GF—2021—2607); its PDF and terms are fixed (trigger),
    it moves draft → confirmed (both parties, on the PDF's SHA-256) → filed with the issuing
    party → terminated (art 42 grounds only, with evidence)."""

    __tablename__ = "market_contract"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    award_id: Mapped[int] = mapped_column(ForeignKey("market_award.id"), nullable=False,
                                          unique=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("market_listing.id"), nullable=False)
    number: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    model: Mapped[str] = mapped_column(String(20), nullable=False)
    fbfbm: Mapped[str] = mapped_column(String(14), nullable=False, index=True)
    transferee_application_id: Mapped[int] = mapped_column(
        ForeignKey("market_application.id"), nullable=False)
    transferee_name: Mapped[str] = mapped_column(String(100), nullable=False)
    transferee_person_id: Mapped[int | None] = mapped_column(Integer)
    # the county of the person row it names, filled by the database (trigger
    # market_contract_person_county, migration 0045): the key is (transferee_person_id,
    # transferee_person_county_code)
    transferee_person_county_code: Mapped[str | None] = mapped_column(
        String(6), server_default=FetchedValue())
    annual_rent_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    term_start: Mapped[dt.date] = mapped_column(Date, nullable=False)
    term_end: Mapped[dt.date] = mapped_column(Date, nullable=False)
    content = mapped_column(JSONB, nullable=False)
    pdf: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    pdf_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, server_default="draft")
    filed_at = mapped_column(DateTime(timezone=True))
    filed_by: Mapped[str | None] = mapped_column(String(50))
    management_right_uid: Mapped[int | None] = mapped_column(BigInteger)
    terminated_on: Mapped[dt.date | None] = mapped_column(Date)
    termination_ground: Mapped[str | None] = mapped_column(String(20))
    termination_evidence: Mapped[str | None] = mapped_column(Text)
    termination_evidence_sha256: Mapped[str | None] = mapped_column(String(64))
    terminated_by: Mapped[str | None] = mapped_column(String(50))
    created_by: Mapped[str] = mapped_column(String(50), nullable=False)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    listing = relationship("Listing")
    award = relationship("Award")
    confirmations = relationship("ContractConfirmation", order_by="ContractConfirmation.id")
    instalments = relationship("RentInstalment", order_by="RentInstalment.no")

    __table_args__ = (
        ForeignKeyConstraint(["transferee_person_id", "transferee_person_county_code"],
                             ["person.id", "person.county_code"],
                             match="FULL"),
    )


class ContractConfirmation(db.Model):
    """A party's online confirmation of the contract: who, when (server time), which PDF."""

    __tablename__ = "market_contract_confirmation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("market_contract.id"), nullable=False)
    party: Mapped[str] = mapped_column(String(12), nullable=False)
    confirmed_by: Mapped[str] = mapped_column(String(100), nullable=False)
    pdf_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    at = mapped_column(DateTime(timezone=True), nullable=False,
                       server_default=func.clock_timestamp())

    __table_args__ = (UniqueConstraint("contract_id", "party",
                                       name="uq_market_contract_confirmation_party"),)


class TradeCertificate(db.Model):
    """The transaction certificate (农村产权交易鉴证书) of a filed contract, verified by the QR
    code's /verify/TOKEN like the other certificates; only ever cancelled, with a reason."""

    __tablename__ = "market_trade_certificate"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("market_contract.id"), nullable=False,
                                             unique=True)
    number: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    token: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    content = mapped_column(JSONB, nullable=False)
    content_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="valid")
    issued_by: Mapped[str] = mapped_column(String(50), nullable=False)
    issued_at = mapped_column(DateTime(timezone=True), nullable=False,
                              server_default=func.clock_timestamp())
    cancelled_reason: Mapped[str | None] = mapped_column(Text)

    contract = relationship("Contract")


class RentInstalment(db.Model):
    """One instalment of a contract's rent schedule (append-only)."""

    __tablename__ = "market_rent_instalment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("market_contract.id"), nullable=False)
    no: Mapped[int] = mapped_column(Integer, nullable=False)
    due_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (UniqueConstraint("contract_id", "no", name="uq_market_rent_instalment_no"),)


class Tender(db.Model):
    """A tender (招标) with sealed bids: lodging until `lodging_ends_at`, opening at `opens_at`,
    reveals until `reveal_ends_at`; scored by price and plan with published weights."""

    __tablename__ = "market_tender"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("market_listing.id"), nullable=False,
                                            unique=True)
    reserve_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    lodging_ends_at = mapped_column(DateTime(timezone=True), nullable=False)
    opens_at = mapped_column(DateTime(timezone=True), nullable=False)
    reveal_ends_at = mapped_column(DateTime(timezone=True), nullable=False)
    clock_origin = mapped_column(DateTime(timezone=True), nullable=False)
    accelerator: Mapped[Decimal] = mapped_column(Numeric(12, 3), nullable=False)
    weight_price: Mapped[int] = mapped_column(Integer, nullable=False)
    weight_plan: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(8), nullable=False, server_default="open")
    created_by: Mapped[str] = mapped_column(String(50), nullable=False)

    listing = relationship("Listing")
    bids = relationship("TenderBid", order_by="TenderBid.id")


class TenderBid(db.Model):
    """A sealed bid: the commitment at lodging; price, nonce and plan only at the opening."""

    __tablename__ = "market_tender_bid"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("market_tender.id"), nullable=False)
    application_id: Mapped[int] = mapped_column(ForeignKey("market_application.id"),
                                                nullable=False)
    commitment: Mapped[str] = mapped_column(String(64), nullable=False)
    lodged_at = mapped_column(DateTime(timezone=True), nullable=False,
                              server_default=func.clock_timestamp())
    price_fen: Mapped[int | None] = mapped_column(BigInteger)
    nonce: Mapped[str | None] = mapped_column(String(100))
    plan: Mapped[str | None] = mapped_column(Text)
    revealed_at = mapped_column(DateTime(timezone=True))
    plan_score: Mapped[int | None] = mapped_column(Integer)

    application = relationship("Application")

    __table_args__ = (UniqueConstraint("tender_id", "application_id",
                                       name="uq_market_tender_bid_once"),)
