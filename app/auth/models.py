from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, FetchedValue, ForeignKeyConstraint, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import func
from sqlalchemy.types import DateTime

from app.extensions import db


class User(UserMixin, db.Model):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(50), nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(String(100), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(30), nullable=False)
    jurisdiction_code: Mapped[str | None] = mapped_column(String(14))
    person_id: Mapped[int | None] = mapped_column(Integer)
    # the county of the person row it names, filled by the database (trigger
    # app_user_person_county, migration 0045): the key is (person_id, person_county_code)
    person_county_code: Mapped[str | None] = mapped_column(
        String(6), server_default=FetchedValue())
    household_code: Mapped[str | None] = mapped_column(String(18))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    api_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    last_login_at = mapped_column(DateTime(timezone=True))

    person = relationship("Person", primaryjoin="Person.id == foreign(User.person_id)")

    __table_args__ = (
        ForeignKeyConstraint(["person_id", "person_county_code"], ["person.id", "person.county_code"],
                             match="FULL"),
        CheckConstraint(
            "role IN ('farmer','collective_officer','bureau_staff','exchange_operator',"
            "'hukou_officer','auditor','compliance_supervisor','admin')", name="role"),
        CheckConstraint(
            "role IN ('farmer','admin') OR jurisdiction_code IS NOT NULL",
            name="staff_have_jurisdiction"),
        CheckConstraint("role <> 'farmer' OR person_id IS NOT NULL", name="farmer_is_a_person"),
    )

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    def session_stamp(self) -> str:
        """Changes whenever the password does: a session made before a password change or an
        administrator's reset no longer signs anyone in."""
        import hashlib

        return hashlib.sha256(f"{self.id}:{self.password_hash}".encode()).hexdigest()[:16]

    def get_id(self) -> str:
        return f"{self.id}:{self.session_stamp()}"
