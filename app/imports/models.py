from geoalchemy2 import Geometry
from sqlalchemy import (
    CheckConstraint,
    FetchedValue,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import func
from sqlalchemy.types import DateTime

from app.extensions import db


class ImportBatch(db.Model):
    """One survey delivery: staged as delivered, validated set-wise, then accepted in whole
    or in part; the rest waits in quarantine.  Nothing is deleted."""

    __tablename__ = "import_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(300), nullable=False)
    srid: Mapped[int | None] = mapped_column(Integer)
    crs_from: Mapped[str | None] = mapped_column(String(20))  # 'file' or 'declared'
    encoding: Mapped[str | None] = mapped_column(String(20))
    tolerance_m2 = mapped_column(Numeric(10, 3), nullable=False, server_default="1.0")
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="staging")
    counts = mapped_column(JSONB, nullable=False, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id"))
    created_by: Mapped[str] = mapped_column(String(50), nullable=False)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    # The upload as delivered, kept as evidence until the housekeeping command removes it.
    upload_path: Mapped[str | None] = mapped_column(Text)
    upload_removed_at = mapped_column(DateTime(timezone=True))
    finished_at = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('staging','validated','accepted','partly_accepted',"
                        "'refused','failed')", name="status"),
    )


class ImportFeature(db.Model):
    """A delivered feature exactly as delivered (geometry in the survey CRS, every attribute)."""

    __tablename__ = "import_feature"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id"), nullable=False,
                                          index=True)
    layer: Mapped[str] = mapped_column(String(10), nullable=False)
    fid: Mapped[int] = mapped_column(Integer, nullable=False)
    code: Mapped[str | None] = mapped_column(String(40), index=True)
    attrs = mapped_column(JSONB, nullable=False, server_default="{}")
    geom = mapped_column(Geometry(srid=-1, spatial_index=False))
    # The same geometry as it will be stored: repeated vertices dropped, in CGCS2000.
    geom_stored = mapped_column(Geometry(srid=4490, spatial_index=False))
    status: Mapped[str] = mapped_column(String(12), nullable=False, server_default="pending")
    parcel_id: Mapped[int | None] = mapped_column(Integer)
    # its parcel's county, filled by the database (trigger import_feature_parent_county,
    # migration 0041): the foreign key is (parcel_id, parcel_county_code)
    parcel_county_code: Mapped[str | None] = mapped_column(
        String(6), server_default=FetchedValue())
    # indexed: deleting a staged batch checks this self-reference for every deleted row (the
    # corrections only: a delivered feature points at none, migration 0052)
    corrected_from_id: Mapped[int | None] = mapped_column(ForeignKey("import_feature.id"))

    faults = relationship("ImportFault", back_populates="feature",
                          primaryjoin="ImportFault.feature_id == ImportFeature.id")

    __table_args__ = (
        ForeignKeyConstraint(["parcel_id", "parcel_county_code"],
                             ["parcel.id", "parcel.county_code"], match="FULL"),
        db.Index("ix_import_feature_corrected_from_id", "corrected_from_id",
                 postgresql_where=text("corrected_from_id IS NOT NULL")),
        CheckConstraint("layer IN ('DK','ZJD')", name="layer"),
        CheckConstraint("status IN ('pending','valid','faulty','registered','quarantined',"
                        "'superseded')", name="status"),
    )


class ImportRecord(db.Model):
    """A row of an ownership table (FBF, CBF, CBF_JTCY, CBHT, CBDKXX), kept as delivered."""

    __tablename__ = "import_record"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # looked up by batch through ix_import_record_tbl (batch_id, tbl), its leading column
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id"), nullable=False)
    tbl: Mapped[str] = mapped_column(String(20), nullable=False)
    rownum: Mapped[int] = mapped_column(Integer, nullable=False)
    attrs = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, server_default="pending")

    faults = relationship("ImportFault", primaryjoin="ImportFault.record_id == ImportRecord.id",
                          foreign_keys="ImportFault.record_id", viewonly=True)

    __table_args__ = (db.Index("ix_import_record_tbl", "batch_id", "tbl"),)


class ImportFault(db.Model):
    """One fault found in a delivery: which feature or row, which rule, where."""

    __tablename__ = "import_fault"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id"), nullable=False,
                                          index=True)
    feature_id: Mapped[int | None] = mapped_column(ForeignKey("import_feature.id"), index=True)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("import_record.id"), index=True)
    rule: Mapped[str] = mapped_column(String(40), nullable=False)
    code: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, nullable=False)
    location = mapped_column(Geometry("POINT", srid=4490, spatial_index=False))
    resolved_at = mapped_column(DateTime(timezone=True))
    # A knock-on fault points to the fault that caused it (fix that one, this one goes too).
    cause_id: Mapped[int | None] = mapped_column(ForeignKey("import_fault.id",
                                                            name="fk_import_fault_cause_id"),
                                                 index=True)

    feature = relationship("ImportFeature", back_populates="faults", foreign_keys=[feature_id])
    record = relationship("ImportRecord", foreign_keys=[record_id], viewonly=True)

    # the open faults (the home page's to-do counts them on every visit; a large delivery has
    # hundreds of thousands of faults, nearly all resolved) — migration 0028_web_attacks
    __table_args__ = (db.Index("ix_import_fault_open", "batch_id",
                               postgresql_where=text("resolved_at IS NULL")),)
