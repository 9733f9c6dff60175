import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    FetchedValue,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import func
from sqlalchemy.types import DateTime

from app.codes import cbfbm_sequence_sql
from app.extensions import db

from .idnumber import mask, mask_phone


class Person(db.Model):
    """A natural person.  The hukou is a *place*, never an agricultural / non-agricultural
    type (source document item 4): rights never depend on a hukou type."""

    __tablename__ = "person"

    # One row per county that put the person on a roll (docs/scaling.md §3, migration 0045):
    # the table's key is (id, county_code), the mapper's is `id` (always from the sequence, so
    # unique); the same ID number may have a row in each such county — a rule about the human
    # reads all of them (app.people.operations.rows_of).
    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    id_number: Mapped[str] = mapped_column(String(18), nullable=False)
    # the county of the roll (household place, membership, right held) the row is for; a person
    # registered before any placement takes their hukou place's (trigger person_county).  Never
    # moved by settling in town.
    county_code: Mapped[str] = mapped_column(String(6), nullable=False,
                                             server_default=FetchedValue())
    name: Mapped[str] = mapped_column(String(50), nullable=False)
    sex: Mapped[str] = mapped_column(String(1), nullable=False)
    birth_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    hukou_division_code: Mapped[str | None] = mapped_column(ForeignKey("division.code"), index=True)
    hukou_address: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __mapper_args__ = {"primary_key": [id]}
    __table_args__ = (
        PrimaryKeyConstraint("id", "county_code"),
        UniqueConstraint("id_number", "county_code", name="uq_person_id_number"),
        CheckConstraint("county_code ~ '^[0-9]{6}$'", name="county_code_format"),
        CheckConstraint("sex IN ('1','2')", name="sex"),
        # GB 11643 check digit, enforced by the database too (function in migration 0001).
        CheckConstraint("gb11643_valid(id_number)", name="id_number_gb11643"),
    )

    @property
    def id_masked(self) -> str:
        return mask(self.id_number)

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone)

    @property
    def age(self) -> int:
        t = dt.date.today()
        b = self.birth_date
        return t.year - b.year - ((t.month, t.day) < (b.month, b.day))


CBFLX = {"1": "household", "2": "individual", "3": "organisation"}
YHZGX = {
    "01": "self", "02": "head", "10": "spouse", "11": "husband", "12": "wife", "20": "son",
    "30": "daughter", "51": "father", "52": "mother", "97": "other relative", "99": "not related",
}
CYBZ = {"1": "married-out woman", "2": "married-in man", "3": "university student",
        "4": "public servant", "5": "soldier", "6": "newborn", "7": "deceased", "9": "other"}


class Household(db.Model):
    """A contracting party (承包方, CBF): 18-digit CBFBM = FBFBM + 4-digit sequence.
    Sequence ranges by type: app.codes.CBFBM_SEQUENCE."""

    __tablename__ = "household"

    # The table's key is (id, county_code) (Citus-ready, migration 0041); the mapper's is `id`.
    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    cbfbm: Mapped[str] = mapped_column(String(18), nullable=False)
    # The county (first six digits of the code): the distribution column of a later Citus
    # cluster (migration 0026, docs/scaling.md); generated, never written.
    county_code: Mapped[str] = mapped_column(String(6), Computed("left(cbfbm, 6)", persisted=True),
                                             nullable=False)
    collective_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    cbflx: Mapped[str] = mapped_column(String(1), nullable=False, server_default="1")
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    head_person_id: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    end_ground: Mapped[str | None] = mapped_column(String(30))

    # read only: named by collective_id (county_code is generated and never written)
    collective = relationship("Collective", viewonly=True)
    head = relationship("Person", primaryjoin="Person.id == foreign(Household.head_person_id)")
    members = relationship("HouseholdMember", back_populates="household",
                           order_by="HouseholdMember.id")

    __mapper_args__ = {"primary_key": [id]}
    __table_args__ = (
        # the person's row in this row's county (one person row per county; a person named
        # from another county is re-pointed by the database, household_*person trigger, 0045)
        ForeignKeyConstraint(["head_person_id", "county_code"], ["person.id", "person.county_code"]),
        PrimaryKeyConstraint("id", "county_code"),
        # its collective is in its county (the CBFBM begins with the FBFBM)
        ForeignKeyConstraint(["collective_id", "county_code"],
                             ["collective.id", "collective.county_code"]),
        UniqueConstraint("cbfbm", "county_code", name="uq_household_cbfbm"),
        CheckConstraint("cbfbm ~ '^[0-9]{18}$'", name="cbfbm_format"),
        CheckConstraint("cbflx IN ('1','2','3')", name="cbflx"),
        CheckConstraint(cbfbm_sequence_sql("cbfbm", "cbflx"), name="cbfbm_sequence_matches_type"),
        CheckConstraint("(ended_on IS NULL AND end_ground IS NULL) OR (ended_on IS NOT NULL AND "
                        "end_ground IN ('all_members_deceased','all_members_left'))",
                        name="ended_on_its_ground"),
        # the staff search's "holder's name contains" by trigrams (pg_trgm, 0035_search)
        db.Index("ix_household_name_trgm", "name", postgresql_using="gin",
                 postgresql_ops={"name": "gin_trgm_ops"}),
        # Also ix_household_name_code_c (0041_search2): (name, cbfbm) in byte order, holders
        # of a name in household-code order; collated columns have no SQLAlchemy form
        # (app/schema.py).
    )

    @property
    def fbfbm(self) -> str:
        return self.cbfbm[:14]

    @property
    def current_members(self):
        return [m for m in self.members if m.left_on is None]


class HouseholdMember(db.Model):
    """A member of a contracting household (CBF_JTCY)."""

    __tablename__ = "household_member"

    # The table's key is (id, county_code) (Citus-ready, migration 0036); the mapper's is `id`.
    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    household_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    person_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    relation: Mapped[str] = mapped_column(String(2), nullable=False)
    is_coholder: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    remark: Mapped[str | None] = mapped_column(String(1))
    joined_on: Mapped[dt.date | None] = mapped_column(Date)
    left_on: Mapped[dt.date | None] = mapped_column(Date)
    end_ground: Mapped[str | None] = mapped_column(String(30))
    # its household's county, copied by the database (trigger household_member_county_code)
    county_code: Mapped[str] = mapped_column(String(6), nullable=False,
                                             server_default=FetchedValue())

    household = relationship("Household", back_populates="members")
    person = relationship("Person", primaryjoin="Person.id == foreign(HouseholdMember.person_id)")

    __mapper_args__ = {"primary_key": [id]}
    __table_args__ = (
        # the person's row in this row's county (one person row per county; a person named
        # from another county is re-pointed by the database, household_member_*person trigger, 0045)
        ForeignKeyConstraint(["person_id", "county_code"], ["person.id", "person.county_code"]),
        PrimaryKeyConstraint("id", "county_code"),
        ForeignKeyConstraint(["household_id", "county_code"],
                             ["household.id", "household.county_code"]),
        CheckConstraint(
            "relation IN ('01','02','10','11','12','20','30','51','52','97','99')", name="relation"),
        CheckConstraint("remark IS NULL OR remark IN ('1','2','3','4','5','6','7','9')",
                        name="remark"),
        CheckConstraint(
            "(left_on IS NULL AND end_ground IS NULL) OR (left_on IS NOT NULL AND end_ground IN "
            "('death','joined_other_household','household_division','nationality_lost',"
            "'superseded'))", name="left_on_its_ground"),
        db.Index("uq_household_member_current", "household_id", "person_id", "county_code",
                 unique=True,
                 postgresql_where=text("left_on IS NULL")),
    )
