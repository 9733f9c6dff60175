from sqlalchemy import Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import func
from sqlalchemy.types import DateTime

from app.extensions import db


class Job(db.Model):
    """Long work (imports, certificate batches) and its progress, for a progress page."""

    __tablename__ = "job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="queued")
    done: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    total: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    message: Mapped[str | None] = mapped_column(Text)
    params = mapped_column(JSONB, nullable=False, server_default="{}")
    result = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    # Touched every few seconds by the process that owns the job; stale: the reaper fails it.
    heartbeat_at = mapped_column(DateTime(timezone=True))
    rerun_of: Mapped[int | None] = mapped_column(Integer)  # the failed job this one repeats

    __table_args__ = (
        db.Index("ix_job_live", "heartbeat_at",
                 postgresql_where=text("status IN ('queued', 'running')")),
    )

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else (100 if self.status == "done"
                                                                       else 0)
