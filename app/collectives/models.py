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
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import func
from sqlalchemy.types import DateTime

from app.extensions import db

# 农村集体经济组织法 art 17: the only grounds on which membership ends.
LAWFUL_END_GROUNDS = ("death", "nationality_lost", "other_membership", "civil_servant",
                      "law_or_charter")
JOIN_BASES = ("original", "birth", "marriage", "adoption", "resettlement", "assembly_decision")


class Collective(db.Model):
    """A collective economic organisation acting as contract-issuing party (发包方, FBF).
    FBFBM: 14 digits = 12-digit village code + 2-digit villagers' group ("00": the village)."""

    __tablename__ = "collective"

    # The table's key is (id, county_code) (Citus-ready, migration 0041); the mapper's is `id`.
    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    fbfbm: Mapped[str] = mapped_column(String(14), nullable=False)
    # The county (first six digits of the code): the distribution column of a later Citus
    # cluster (migration 0026, docs/scaling.md); generated, never written.
    county_code: Mapped[str] = mapped_column(String(6), Computed("left(fbfbm, 6)", persisted=True),
                                             nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    village_code: Mapped[str] = mapped_column(ForeignKey("division.code"), nullable=False, index=True)
    leader_name: Mapped[str | None] = mapped_column(String(50))
    address: Mapped[str | None] = mapped_column(String(200))
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    village = relationship("Division")

    __mapper_args__ = {"primary_key": [id]}
    __table_args__ = (
        PrimaryKeyConstraint("id", "county_code"),
        CheckConstraint("fbfbm ~ '^[0-9]{14}$'", name="fbfbm_format"),
        CheckConstraint("substr(fbfbm, 1, 12) = village_code", name="fbfbm_in_village"),
        db.UniqueConstraint("fbfbm", "county_code", name="uq_collective_fbfbm"),
    )

    @property
    def group_no(self) -> str:
        return self.fbfbm[12:]


class Membership(db.Model):
    """A person's membership of a collective economic organisation.

    It ends only on a ground of 农村集体经济组织法 art 17; the database refuses any other
    (CHECK constraint) and refuses to delete or rewrite an ended membership (trigger)."""

    __tablename__ = "membership"

    # The table's key is (id, county_code) (Citus-ready, migration 0036); the mapper's is `id`.
    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    person_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    collective_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="active")
    began_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    basis: Mapped[str] = mapped_column(String(20), nullable=False)
    confirmed_on: Mapped[dt.date | None] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    end_ground: Mapped[str | None] = mapped_column(String(20))
    end_note: Mapped[str | None] = mapped_column(Text)
    rights_kept_until: Mapped[dt.date | None] = mapped_column(Date)
    # law_or_charter cites an article of a named law, or a clause of the charter register.
    end_law: Mapped[str | None] = mapped_column(String(60))
    end_article: Mapped[str | None] = mapped_column(String(20))
    end_charter_clause_id: Mapped[int | None] = mapped_column(Integer)
    # its collective's county, copied by the database (trigger membership_county_code)
    county_code: Mapped[str] = mapped_column(String(6), nullable=False,
                                             server_default=FetchedValue())

    person = relationship("Person", primaryjoin="Person.id == foreign(Membership.person_id)")
    collective = relationship("Collective")

    __mapper_args__ = {"primary_key": [id]}
    __table_args__ = (
        # the person's row in this row's county (one person row per county; a person named
        # from another county is re-pointed by the database, membership_*person trigger, 0045)
        ForeignKeyConstraint(["person_id", "county_code"], ["person.id", "person.county_code"]),
        PrimaryKeyConstraint("id", "county_code"),
        ForeignKeyConstraint(["collective_id", "county_code"],
                             ["collective.id", "collective.county_code"]),
        ForeignKeyConstraint(["end_charter_clause_id", "county_code"],
                             ["charter_clause.id", "charter_clause.county_code"]),
        CheckConstraint("status IN ('active','ended')", name="status"),
        CheckConstraint(
            "basis IN ('original','birth','marriage','adoption','resettlement',"
            "'assembly_decision')", name="basis"),
        CheckConstraint(
            "(status = 'active' AND ended_on IS NULL AND end_ground IS NULL)"
            " OR (status = 'ended' AND ended_on IS NOT NULL AND end_ground IN "
            "('death','nationality_lost','other_membership','civil_servant','law_or_charter'))",
            name="end_only_on_lawful_ground",
        ),
        CheckConstraint("end_ground <> 'law_or_charter' OR length(trim(end_note)) > 0",
                        name="charter_ground_cites_basis"),
        CheckConstraint("ended_on IS NULL OR ended_on >= began_on", name="dates"),
        CheckConstraint(
            "end_ground IS DISTINCT FROM 'law_or_charter' OR end_charter_clause_id IS NOT NULL "
            "OR (length(trim(end_law)) > 0 AND length(trim(end_article)) > 0)",
            name="charter_ground_cites_clause"),
        db.Index("uq_membership_active", "person_id", "collective_id", "county_code",
                 unique=True,
                 postgresql_where=text("status = 'active'")),
    )


class CharterClause(db.Model):
    """A clause of a collective's charter (章程), as adopted.  A clause that ends membership may
    never do so for moving the hukou, settling in town or living elsewhere (乡村振兴促进法 art 55;
    农村集体经济组织法 art 17): refused on entry, in the operation and the database."""

    __tablename__ = "charter_clause"

    # The table's key is (id, county_code) (Citus-ready, migration 0036); the mapper's is `id`.
    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    collective_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    clause_no: Mapped[str] = mapped_column(String(20), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    ends_membership: Mapped[bool] = mapped_column(Boolean, nullable=False,
                                                  server_default="false")
    adopted_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(50), nullable=False)
    recorded_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    # its collective's county, copied by the database (trigger charter_clause_county_code)
    county_code: Mapped[str] = mapped_column(String(6), nullable=False,
                                             server_default=FetchedValue())

    collective = relationship("Collective")

    __mapper_args__ = {"primary_key": [id]}
    __table_args__ = (
        PrimaryKeyConstraint("id", "county_code"),
        ForeignKeyConstraint(["collective_id", "county_code"],
                             ["collective.id", "collective.county_code"]),
        CheckConstraint("length(trim(text)) > 0", name="text"),
        db.UniqueConstraint("collective_id", "clause_no", "county_code",
                            name="uq_charter_clause_no"),
    )
