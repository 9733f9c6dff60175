import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    Date,
    FetchedValue,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import func
from sqlalchemy.types import DateTime

from app.extensions import db

# The closed list of lawful grounds on which a right ends (domain.md §9 rule 3; issue 4).
LAWFUL_END_GROUNDS = ("expiry", "voluntary_withdrawal", "expropriation", "court_judgment",
                      "mutation", "holder_extinct")
KINDS = ("land_contract", "homestead", "management")


class Right(db.Model):
    """A right (LADM: RRR) of a holder over spatial units: the land-contract right
    (土地承包经营权), the homestead use right (宅基地使用权), or the derived land management
    right (土地经营权).  Versioned like parcels; it ends only on a lawful ground."""

    __tablename__ = "land_right"

    # The table's key is (id, county_code) (Citus-ready, migration 0036); the mapper's is `id`.
    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    uid: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True,
                                     server_default=text("nextval('land_right_uid_seq')"))
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    holder_household_code: Mapped[str | None] = mapped_column(String(18), index=True)
    holder_person_id: Mapped[int | None] = mapped_column(Integer)
    holder_name: Mapped[str | None] = mapped_column(String(100))
    contract_code: Mapped[str | None] = mapped_column(String(20), index=True)
    obtained_by: Mapped[str | None] = mapped_column(String(3))  # CBJYQQDFS / CBFS code
    fbfbm: Mapped[str | None] = mapped_column(String(14), index=True)
    term_start: Mapped[dt.date | None] = mapped_column(Date)
    term_end: Mapped[dt.date | None] = mapped_column(Date)
    contract_area: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="current")
    end_ground: Mapped[str | None] = mapped_column(String(30))
    end_evidence: Mapped[str | None] = mapped_column(Text)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    # The record behind the ground (issue 11): court_judgment.id, expropriation.id, withdrawal.id
    # or parcel_mutation.id; the database checks it per ground (migration 0012).
    end_record_id: Mapped[int | None] = mapped_column(Integer)
    begin_lifespan = mapped_column(DateTime(timezone=True), nullable=False,
                                   server_default=func.now())
    end_lifespan = mapped_column(DateTime(timezone=True))
    change_reason: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str | None] = mapped_column(String(50))
    # The county (the distribution column, docs/scaling.md): the first six digits of the
    # collective's, else the holder household's, else the contract's code (NY/T 2539).
    county_code: Mapped[str] = mapped_column(
        String(6), Computed("left(coalesce(fbfbm, holder_household_code, contract_code), 6)",
                            persisted=True), nullable=False)

    parcels = relationship("RightParcel", back_populates="right", order_by="RightParcel.id")

    __mapper_args__ = {"primary_key": [id]}
    __table_args__ = (
        # the person's row in this row's county (one person row per county; a person named
        # from another county is re-pointed by the database, land_right_*person trigger, 0045)
        ForeignKeyConstraint(["holder_person_id", "county_code"], ["person.id", "person.county_code"]),
        PrimaryKeyConstraint("id", "county_code"),
        CheckConstraint("kind IN ('land_contract','homestead','management')", name="kind"),
        CheckConstraint("status IN ('current','ended')", name="status"),
        CheckConstraint(
            "(status = 'current' AND end_ground IS NULL AND ended_on IS NULL)"
            " OR (status = 'ended' AND ended_on IS NOT NULL AND end_ground IN "
            "('expiry','voluntary_withdrawal','expropriation','court_judgment','mutation',"
            "'holder_extinct'))",
            name="end_only_on_lawful_ground"),
        CheckConstraint("term_end IS NULL OR term_start IS NULL OR term_end > term_start",
                        name="term"),
        CheckConstraint("holder_household_code IS NOT NULL OR holder_person_id IS NOT NULL "
                        "OR holder_name IS NOT NULL", name="has_holder"),
        CheckConstraint("kind <> 'land_contract' OR contract_code ~ '^[0-9]{18}J$'",
                        name="contract_code"),
        # the codes agree on the county (the generated county_code takes the first present):
        # each county-scoped unique index then means what it meant nationally (0040_atk_db)
        CheckConstraint(
            "left(coalesce(holder_household_code, fbfbm, contract_code), 6) = "
            "left(coalesce(fbfbm, holder_household_code, contract_code), 6) AND "
            "left(coalesce(contract_code, fbfbm, holder_household_code), 6) = "
            "left(coalesce(fbfbm, holder_household_code, contract_code), 6)",
            name="codes_one_county"),
        db.Index("uq_land_right_current_version", "uid", "county_code", unique=True,
                 postgresql_where=text("end_lifespan IS NULL")),
        # One household, one homestead (土地管理法 art 62).
        db.Index("uq_land_right_one_homestead", "holder_household_code", "county_code",
                 unique=True,
                 postgresql_where=text("kind = 'homestead' AND status = 'current' "
                                       "AND end_lifespan IS NULL")),
    )


class CourtJudgment(db.Model):
    """A court judgment that ends a right: the court, the case number, the date, the judgment
    itself (the file, kept).  Recorded once, never changed."""

    __tablename__ = "court_judgment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    right_uid: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    court: Mapped[str] = mapped_column(String(100), nullable=False)
    case_number: Mapped[str] = mapped_column(String(60), nullable=False)
    judged_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    filename: Mapped[str] = mapped_column(String(200), nullable=False)
    file: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(50), nullable=False)
    recorded_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint("length(trim(court)) > 0 AND length(trim(case_number)) > 0",
                        name="named"),
        CheckConstraint("length(file) > 0 AND sha256 = encode(sha256(file), 'hex')",
                        name="file_kept"),
        db.UniqueConstraint("court", "case_number", "right_uid", name="uq_court_judgment_case"),
    )


class Expropriation(db.Model):
    """An expropriation of the land under a right, with its compensation and the decision's
    file.  Recorded once, never changed."""

    __tablename__ = "expropriation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    right_uid: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    authority: Mapped[str] = mapped_column(String(100), nullable=False)
    decision_number: Mapped[str] = mapped_column(String(60), nullable=False)
    decided_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    compensation: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)
    filename: Mapped[str] = mapped_column(String(200), nullable=False)
    file: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(50), nullable=False)
    recorded_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint("compensation > 0", name="compensated"),
        CheckConstraint("length(file) > 0 AND sha256 = encode(sha256(file), 'hex')",
                        name="file_kept"),
    )


class RightParcel(db.Model):
    """Which spatial units (by parcel uid, stable across versions) a right covers."""

    __tablename__ = "land_right_parcel"

    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    right_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    parcel_uid: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    parcel_code: Mapped[str] = mapped_column(String(28), nullable=False)
    contract_area: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    # its right's county, copied by the database (trigger land_right_parcel_county_code)
    county_code: Mapped[str] = mapped_column(String(6), nullable=False,
                                             server_default=FetchedValue())

    right = relationship("Right", back_populates="parcels")

    __mapper_args__ = {"primary_key": [id]}
    __table_args__ = (
        PrimaryKeyConstraint("id", "county_code"),
        ForeignKeyConstraint(["right_id", "county_code"],
                             ["land_right.id", "land_right.county_code"]),
    )
