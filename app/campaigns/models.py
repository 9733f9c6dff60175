import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    Date,
    FetchedValue,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import func
from sqlalchemy.types import DateTime

from app.extensions import db


class Campaign(db.Model):
    """A rights-confirmation campaign (确权) for one villagers' group: public notice (公示),
    objections (异议), registration into the register book (登簿)."""

    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fbfbm: Mapped[str] = mapped_column(String(14), nullable=False, index=True)
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"))
    status: Mapped[str] = mapped_column(String(12), nullable=False, server_default="draft")
    notice_start: Mapped[dt.date | None] = mapped_column(Date)
    notice_end: Mapped[dt.date | None] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(50), nullable=False)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    registrar: Mapped[str | None] = mapped_column(String(50))
    registered_at = mapped_column(DateTime(timezone=True))

    objections = relationship("Objection", back_populates="campaign", order_by="Objection.id")

    __table_args__ = (
        CheckConstraint("status IN ('draft','notice','registered')", name="status"),
        CheckConstraint("notice_end IS NULL OR notice_end > notice_start", name="notice"),
        CheckConstraint("status <> 'registered' OR (registrar IS NOT NULL AND "
                        "registered_at IS NOT NULL)", name="registered_by_someone"),
    )


class Objection(db.Model):
    """An objection to a parcel, a boundary, an area or a holder, lodged during the notice."""

    __tablename__ = "objection"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), nullable=False,
                                             index=True)
    parcel_code: Mapped[str | None] = mapped_column(String(28))
    subject: Mapped[str] = mapped_column(String(10), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    lodged_by: Mapped[str] = mapped_column(String(100), nullable=False)
    lodged_at = mapped_column(DateTime(timezone=True), nullable=False,
                              server_default=func.clock_timestamp())
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="open")
    resolution: Mapped[str | None] = mapped_column(Text)
    correction_parcel_id: Mapped[int | None] = mapped_column(Integer)
    # its parcel's county, filled by the database (trigger objection_parent_county,
    # migration 0041): the foreign key is (correction_parcel_id, correction_parcel_county_code)
    correction_parcel_county_code: Mapped[str | None] = mapped_column(
        String(6), server_default=FetchedValue())
    resolved_by: Mapped[str | None] = mapped_column(String(50))
    resolved_at = mapped_column(DateTime(timezone=True))

    campaign = relationship("Campaign", back_populates="objections")

    __table_args__ = (
        ForeignKeyConstraint(["correction_parcel_id", "correction_parcel_county_code"],
                             ["parcel.id", "parcel.county_code"], match="FULL"),
        CheckConstraint("subject IN ('parcel','boundary','area','holder')", name="subject"),
        CheckConstraint("status IN ('open','upheld','dismissed')", name="status"),
        CheckConstraint("status = 'open' OR (resolution IS NOT NULL AND length(trim(resolution))"
                        " > 0 AND resolved_by IS NOT NULL)", name="resolved_with_reasons"),
        CheckConstraint("status <> 'upheld' OR correction_parcel_id IS NOT NULL",
                        name="upheld_means_corrected"),
    )
