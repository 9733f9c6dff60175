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
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import func
from sqlalchemy.types import DateTime

from app.extensions import db

STATUSES = ("consent", "check", "cooling", "effective", "revoked")


class Withdrawal(db.Model):
    """Voluntary, paid withdrawal (自愿有偿退出) of a land-contract or homestead right: a pilot
    procedure started only by the right holder, never from a settlement case."""

    __tablename__ = "withdrawal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    right_uid: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    right_kind: Mapped[str] = mapped_column(String(20), nullable=False)
    household_code: Mapped[str] = mapped_column(String(18), nullable=False, index=True)
    county_code: Mapped[str] = mapped_column(String(6), nullable=False)
    started_by: Mapped[str] = mapped_column(String(50), nullable=False)
    started_via: Mapped[str] = mapped_column(String(12), nullable=False)
    statement_filename: Mapped[str | None] = mapped_column(String(200))
    statement_sha256: Mapped[str | None] = mapped_column(String(64))
    statement_file: Mapped[bytes | None] = mapped_column(LargeBinary)  # the signed statement
    witnessed_by: Mapped[str | None] = mapped_column(String(50))  # a second officer, in person
    started_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    started_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    land_to: Mapped[str] = mapped_column(String(12), nullable=False)
    transferee_household_code: Mapped[str | None] = mapped_column(String(18))
    compensation: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    compensation_agreed_on: Mapped[dt.date | None] = mapped_column(Date)
    compensation_by: Mapped[str | None] = mapped_column(String(50))
    paid_on: Mapped[dt.date | None] = mapped_column(Date)
    paid_reference: Mapped[str | None] = mapped_column(String(100))
    paid_by: Mapped[str | None] = mapped_column(String(50))
    notice_given_on: Mapped[dt.date | None] = mapped_column(Date)
    cooling_until: Mapped[dt.date] = mapped_column(Date, nullable=False)
    flagged: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    flag_reason: Mapped[str | None] = mapped_column(Text)
    checked_by: Mapped[str | None] = mapped_column(String(50))
    checked_at = mapped_column(DateTime(timezone=True))
    interview: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="consent")
    effective_on: Mapped[dt.date | None] = mapped_column(Date)
    revoked_on: Mapped[dt.date | None] = mapped_column(Date)
    revoked_by: Mapped[str | None] = mapped_column(String(50))

    consents = relationship("WithdrawalConsent", back_populates="withdrawal",
                            order_by="WithdrawalConsent.id")

    __table_args__ = (
        CheckConstraint("right_kind IN ('land_contract','homestead')", name="right_kind"),
        CheckConstraint("started_via IN ('own_account','in_person')", name="started_via"),
        CheckConstraint("started_via = 'own_account' OR statement_sha256 IS NOT NULL",
                        name="in_person_needs_signed_statement"),
        CheckConstraint("started_via = 'own_account' OR (statement_file IS NOT NULL AND "
                        "witnessed_by IS NOT NULL AND witnessed_by <> started_by)",
                        name="in_person_kept_and_witnessed"),
        CheckConstraint("land_to IN ('collective','within')", name="land_to"),
        CheckConstraint("land_to <> 'within' OR transferee_household_code IS NOT NULL",
                        name="transferee"),
        CheckConstraint("status IN ('consent','check','cooling','effective','revoked')",
                        name="status"),
        CheckConstraint("status <> 'effective' OR (paid_on IS NOT NULL AND compensation > 0 "
                        "AND effective_on >= cooling_until)", name="effective_needs_payment"),
        CheckConstraint("NOT flagged OR status IN ('consent','check','revoked') OR "
                        "(checked_by IS NOT NULL AND length(trim(coalesce(interview,''))) > 0 "
                        "AND checked_by <> started_by)", name="flagged_needs_check"),
        CheckConstraint("right_kind <> 'land_contract' OR status <> 'effective' OR "
                        "effective_on >= notice_given_on + interval '6 months'",
                        name="six_months_notice"),
        db.Index("uq_withdrawal_open", "right_uid", unique=True,
                 postgresql_where=db.text("status IN ('consent','check','cooling')")),
    )


class WithdrawalConsent(db.Model):
    """The written agreement of an adult co-holder of a household right."""

    __tablename__ = "withdrawal_consent"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    withdrawal_id: Mapped[int] = mapped_column(ForeignKey("withdrawal.id"), nullable=False,
                                               index=True)
    person_id: Mapped[int] = mapped_column(Integer, nullable=False)
    # the county of the person row it names, filled by the database (trigger
    # withdrawal_consent_person_county, migration 0045): the key is (person_id, person_county_code)
    person_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    signed_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    document_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(50), nullable=False)
    # Each co-holder for themselves: from their own account, or in person with the signed
    # agreement kept (the file).
    via: Mapped[str] = mapped_column(String(12), nullable=False, server_default="in_person")
    document: Mapped[bytes | None] = mapped_column(LargeBinary)
    document_filename: Mapped[str | None] = mapped_column(String(200))

    withdrawal = relationship("Withdrawal", back_populates="consents")
    person = relationship("Person", primaryjoin="Person.id == foreign(WithdrawalConsent.person_id)")

    __table_args__ = (
        ForeignKeyConstraint(["person_id", "person_county_code"], ["person.id", "person.county_code"],
                             match="FULL"),
        db.UniqueConstraint("withdrawal_id", "person_id", name="uq_withdrawal_consent"),
        CheckConstraint("via IN ('own_account','in_person')", name="via"),
        CheckConstraint("via = 'own_account' OR document IS NOT NULL",
                        name="in_person_document_kept"),
    )
