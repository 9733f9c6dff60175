"""Reports of coercion (举报): anyone asked to give up a right in order to settle in town can say
so, from the public pages or their own page; a compliance supervisor tracks each report to its
resolution (农村土地承包法 art 27; 乡村振兴促进法 art 55; domain.md §9 rule 5)."""
from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import func
from sqlalchemy.types import DateTime

from app.extensions import db

CHANNELS = ("public", "notice_page", "verify_page", "farmer_page")
STATUSES = ("received", "investigating", "substantiated", "unfounded")
FINAL = ("substantiated", "unfounded")
# which status may follow which (the database holds the same in migration 0013's trigger)
NEXT = {"received": ("investigating", "substantiated", "unfounded"),
        "investigating": ("substantiated", "unfounded"),
        "substantiated": (), "unfounded": ()}


class CoercionReport(db.Model):
    """One report.  What was reported is never changed; its status moves forward only, each
    step a row of `coercion_report_step` (who, when, note) and an audit entry."""

    __tablename__ = "coercion_report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at = mapped_column(DateTime(timezone=True), nullable=False,
                                server_default=func.clock_timestamp())
    channel: Mapped[str] = mapped_column(String(12), nullable=False)
    context: Mapped[str | None] = mapped_column(String(80))  # e.g. "notice 12", "certificate 3"
    division_code: Mapped[str | None] = mapped_column(String(18), index=True)
    what_happened: Mapped[str] = mapped_column(Text, nullable=False)
    who_asked: Mapped[str | None] = mapped_column(String(200))
    contact: Mapped[str | None] = mapped_column(String(100))
    reporter_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    status: Mapped[str] = mapped_column(String(14), nullable=False, server_default="received")
    resolution: Mapped[str | None] = mapped_column(Text)
    handled_by: Mapped[str | None] = mapped_column(String(50))
    handled_at = mapped_column(DateTime(timezone=True))

    steps = relationship("CoercionReportStep", order_by="CoercionReportStep.id")

    __table_args__ = (
        CheckConstraint("channel IN ('public','notice_page','verify_page','farmer_page')",
                        name="channel"),
        CheckConstraint("status IN ('received','investigating','substantiated','unfounded')",
                        name="status"),
        CheckConstraint("length(trim(what_happened)) > 0", name="what_happened"),
        CheckConstraint("status NOT IN ('substantiated','unfounded') OR "
                        "(length(trim(coalesce(resolution, ''))) > 0 AND handled_by IS NOT NULL)",
                        name="resolved_with_note"),
    )


class CoercionReportStep(db.Model):
    """The tracked history of a report's status: insert-only."""

    __tablename__ = "coercion_report_step"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("coercion_report.id"), nullable=False,
                                           index=True)
    at = mapped_column(DateTime(timezone=True), nullable=False,
                       server_default=func.clock_timestamp())
    by: Mapped[str] = mapped_column(String(50), nullable=False)
    from_status: Mapped[str] = mapped_column(String(14), nullable=False)
    to_status: Mapped[str] = mapped_column(String(14), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False)

    __table_args__ = (CheckConstraint("length(trim(note)) > 0", name="note"),)
