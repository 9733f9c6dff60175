import datetime as dt

from sqlalchemy import CheckConstraint, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db

LEVELS = ("province", "city", "county", "township", "village")


class Division(db.Model):
    """An administrative division (GB/T 2260 + township/village codes).

    6 digits for province, city and county; 9 for a township; 12 for a village.
    Retired codes stay with `valid_to` and the code that succeeded them."""

    __tablename__ = "division"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    level: Mapped[str] = mapped_column(String(10), nullable=False)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("division.code"), index=True)
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    successor_code: Mapped[str | None] = mapped_column(ForeignKey("division.code"), index=True)

    __table_args__ = (
        CheckConstraint("code ~ '^([0-9]{6}|[0-9]{9}|[0-9]{12})$'", name="code_format"),
        CheckConstraint(
            "level IN ('province','city','county','township','village')", name="level"),
        CheckConstraint(
            "(level IN ('province','city','county') AND length(code) = 6)"
            " OR (level = 'township' AND length(code) = 9)"
            " OR (level = 'village' AND length(code) = 12)",
            name="level_matches_length",
        ),
    )

    @property
    def current(self) -> bool:
        return self.valid_to is None
