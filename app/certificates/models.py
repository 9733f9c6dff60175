from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    FetchedValue,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import func
from sqlalchemy.types import DateTime

from app.extensions import db

KINDS = ("land_contract", "homestead")
ISSUE_KINDS = ("first", "reissue", "replacement")  # 首次颁发 / 补发 / 换发
STATUSES = ("valid", "superseded", "cancelled")


class Certificate(db.Model):
    """The certificate register: every certificate ever issued, each edition a row.  A
    certificate is never changed: a reissue (补发) or replacement (换发) supersedes it with a
    new edition, a cancellation (注销) ends it; the issued content and PDF stay as issued."""

    __tablename__ = "certificate"

    # The table's key is (id, county_code) (Citus-ready, migration 0036); the mapper's is `id`.
    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    number: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    edition: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    issue_kind: Mapped[str] = mapped_column(String(12), nullable=False, server_default="first")
    right_uid: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    right_id: Mapped[int] = mapped_column(Integer, nullable=False)
    household_code: Mapped[str | None] = mapped_column(String(18), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"), index=True)
    token: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, server_default="valid")
    authority: Mapped[str] = mapped_column(String(100), nullable=False)
    issued_by: Mapped[str] = mapped_column(String(50), nullable=False)
    issued_at = mapped_column(DateTime(timezone=True), nullable=False,
                              server_default=func.clock_timestamp())
    issue_reason: Mapped[str | None] = mapped_column(Text)
    replaces_id: Mapped[int | None] = mapped_column(Integer, index=True)
    content = mapped_column(JSONB, nullable=False)
    # The PDF is rendered from `content` with the certificate template; the digest shows the
    # content is the one issued.
    content_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    ended_at = mapped_column(DateTime(timezone=True))
    ended_by: Mapped[str | None] = mapped_column(String(50))
    end_reason: Mapped[str | None] = mapped_column(Text)
    # the ground of the end (migration 0013): new_edition (superseded by a reissue or
    # replacement); right_ended or error_corrected (cancelled), the latter with its reference
    end_ground: Mapped[str | None] = mapped_column(String(20))
    end_reference: Mapped[str | None] = mapped_column(String(100))
    # its right's county, copied by the database (trigger certificate_county_code)
    county_code: Mapped[str] = mapped_column(String(6), nullable=False,
                                             server_default=FetchedValue())

    # read only: the edition chain is written through replaces_id (county_code is the
    # database's, and the same on both ends)
    replaces = relationship("Certificate", remote_side=[id, county_code], viewonly=True)

    __mapper_args__ = {"primary_key": [id]}
    __table_args__ = (
        PrimaryKeyConstraint("id", "county_code"),
        ForeignKeyConstraint(["right_id", "county_code"],
                             ["land_right.id", "land_right.county_code"]),
        ForeignKeyConstraint(["replaces_id", "county_code"],
                             ["certificate.id", "certificate.county_code"]),
        CheckConstraint("kind IN ('land_contract','homestead')", name="kind"),
        CheckConstraint("issue_kind IN ('first','reissue','replacement')", name="issue_kind"),
        CheckConstraint("status IN ('valid','superseded','cancelled')", name="status"),
        CheckConstraint("(status = 'valid' AND ended_at IS NULL) OR (status <> 'valid' AND "
                        "ended_at IS NOT NULL AND ended_by IS NOT NULL AND "
                        "length(trim(coalesce(end_reason, ''))) > 0)", name="ended_with_reason"),
        CheckConstraint("(issue_kind = 'first') = (replaces_id IS NULL)", name="edition_chain"),
        db.UniqueConstraint("kind", "number", "edition", "county_code",
                            name="uq_certificate_edition"),
        db.UniqueConstraint("token", "county_code", name="uq_certificate_token"),
        db.Index("uq_certificate_valid_number", "kind", "number", "county_code", unique=True,
                 postgresql_where=sql_text("status = 'valid'")),
        db.Index("uq_certificate_valid_right", "right_uid", "county_code", unique=True,
                 postgresql_where=sql_text("status = 'valid'")),
    )

    @property
    def label(self) -> str:
        return f"{self.number}" + (f" ({self.edition})" if self.edition > 1 else "")
