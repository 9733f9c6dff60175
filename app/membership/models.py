"""Membership confirmation, shares and income distribution (migration 0022_membership).

The roll itself (`membership`) belongs to app.collectives; this package records how people come
onto it (applications, the members' assembly, the notice and its objections, the filed roll) and
what membership yields (shares, distributions in integer fen)."""
import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    FetchedValue,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import func
from sqlalchemy.types import DateTime

from app.extensions import db

APPLICATION_BASES = ("birth", "marriage", "adoption", "resettlement", "return", "other")
SPECIAL_CASES = ("married_out_no_other", "student", "soldier", "prisoner",
                 "contract_civil_servant", "settled_in_town")


class CharterRule(db.Model):
    __tablename__ = "membership_charter_rule"

    collective_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # its collective's county, filled by the database (trigger
    # membership_charter_rule_parent_county, migration 0041)
    collective_county_code: Mapped[str] = mapped_column(String(6), nullable=False,
                                                        server_default=FetchedValue())
    vote_num: Mapped[int] = mapped_column(Integer, nullable=False, server_default="2")
    vote_den: Mapped[int] = mapped_column(Integer, nullable=False, server_default="3")
    population_centi: Mapped[int] = mapped_column(Integer, nullable=False, server_default="100")
    labour_centi_per_year: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    labour_age_from: Mapped[int] = mapped_column(Integer, nullable=False, server_default="16")
    labour_age_to: Mapped[int] = mapped_column(Integer, nullable=False, server_default="60")
    collective_share_bp: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    management: Mapped[str] = mapped_column(String(10), nullable=False, server_default="static")
    adjust_every_years: Mapped[int | None] = mapped_column(Integer)
    notice_days: Mapped[int] = mapped_column(Integer, nullable=False, server_default="7")
    updated_by: Mapped[str] = mapped_column(String(50), nullable=False)
    updated_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(["collective_id", "collective_county_code"],
                             ["collective.id", "collective.county_code"], match="FULL"),
    )


class MembershipApplication(db.Model):
    __tablename__ = "membership_application"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collective_id: Mapped[int] = mapped_column(Integer, nullable=False,
                                               index=True)
    # its collective's county, filled by the database (trigger membership_application_parent_county,
    # migration 0041): the foreign key is (collective_id, collective_county_code)
    collective_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    person_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    # the county of the person row it names, filled by the database (trigger
    # membership_application_person_county, migration 0045): the key is (person_id, person_county_code)
    person_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    basis: Mapped[str] = mapped_column(String(20), nullable=False)
    criteria: Mapped[dict] = mapped_column(JSONB, nullable=False)
    flags: Mapped[list] = mapped_column(ARRAY(String(30)), nullable=False, server_default="{}")
    statement: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    submitted_by: Mapped[str] = mapped_column(String(50), nullable=False)
    submitted_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    person = relationship("Person", primaryjoin="Person.id == foreign(MembershipApplication.person_id)")
    collective = relationship("Collective")

    __table_args__ = (
        ForeignKeyConstraint(["person_id", "person_county_code"], ["person.id", "person.county_code"],
                             match="FULL"),
        ForeignKeyConstraint(["collective_id", "collective_county_code"],
                             ["collective.id", "collective.county_code"], match="FULL"),
        CheckConstraint("basis IN ('birth','marriage','adoption','resettlement','return','other')",
                        name="basis"),
    )


class MemberAssembly(db.Model):
    __tablename__ = "member_assembly"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collective_id: Mapped[int] = mapped_column(Integer, nullable=False,
                                               index=True)
    # its collective's county, filled by the database (trigger member_assembly_parent_county,
    # migration 0041): the foreign key is (collective_id, collective_county_code)
    collective_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    meeting_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    members_total: Mapped[int] = mapped_column(Integer, nullable=False)
    vote_num: Mapped[int] = mapped_column(Integer, nullable=False)
    vote_den: Mapped[int] = mapped_column(Integer, nullable=False)
    created_by: Mapped[str] = mapped_column(String(50), nullable=False)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    collective = relationship("Collective")

    @property
    def needed(self) -> int:
        """Votes needed: the smallest count reaching num/den of ALL members."""
        return -(-self.vote_num * self.members_total // self.vote_den)

    __table_args__ = (
        ForeignKeyConstraint(["collective_id", "collective_county_code"],
                             ["collective.id", "collective.county_code"], match="FULL"),
    )


class AssemblyAttendance(db.Model):
    __tablename__ = "member_assembly_attendance"

    assembly_id: Mapped[int] = mapped_column(ForeignKey("member_assembly.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, autoincrement=False, primary_key=True)
    # the county of the person row it names, filled by the database (trigger
    # member_assembly_attendance_person_county, migration 0045): the key is (person_id, person_county_code)
    person_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())

    __table_args__ = (
        ForeignKeyConstraint(["person_id", "person_county_code"], ["person.id", "person.county_code"],
                             match="FULL"),
    )


class AssemblyResolution(db.Model):
    __tablename__ = "member_assembly_resolution"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assembly_id: Mapped[int] = mapped_column(ForeignKey("member_assembly.id"), nullable=False,
                                             index=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("membership_application.id"),
                                                nullable=False)
    yes: Mapped[int] = mapped_column(Integer, nullable=False)
    no: Mapped[int] = mapped_column(Integer, nullable=False)
    abstain: Mapped[int] = mapped_column(Integer, nullable=False)
    decision: Mapped[str] = mapped_column(String(10), nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(50), nullable=False)
    recorded_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    application = relationship("MembershipApplication")


class RollNotice(db.Model):
    __tablename__ = "roll_notice"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collective_id: Mapped[int] = mapped_column(Integer, nullable=False,
                                               index=True)
    # its collective's county, filled by the database (trigger roll_notice_parent_county,
    # migration 0041): the foreign key is (collective_id, collective_county_code)
    collective_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    assembly_id: Mapped[int] = mapped_column(ForeignKey("member_assembly.id"), nullable=False)
    posted_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    ends_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="posted")
    filed_on: Mapped[dt.date | None] = mapped_column(Date)
    filed_by: Mapped[str | None] = mapped_column(String(50))
    roll_size: Mapped[int | None] = mapped_column(Integer)
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))

    collective = relationship("Collective")
    assembly = relationship("MemberAssembly")

    __table_args__ = (
        ForeignKeyConstraint(["collective_id", "collective_county_code"],
                             ["collective.id", "collective.county_code"], match="FULL"),
    )


class RollObjection(db.Model):
    __tablename__ = "roll_objection"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("roll_notice.id"), nullable=False,
                                           index=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("membership_application.id"))
    objector: Mapped[str] = mapped_column(String(50), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    lodged_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    resolution: Mapped[str | None] = mapped_column(String(10))
    reasons: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(50))
    resolved_on: Mapped[dt.date | None] = mapped_column(Date)

    application = relationship("MembershipApplication")


class Quantification(db.Model):
    __tablename__ = "share_quantification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collective_id: Mapped[int] = mapped_column(Integer, nullable=False,
                                               index=True)
    # its collective's county, filled by the database (trigger share_quantification_parent_county,
    # migration 0041): the foreign key is (collective_id, collective_county_code)
    collective_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    base_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    asset_value_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    collective_share_bp: Mapped[int] = mapped_column(Integer, nullable=False)
    member_centi: Mapped[int] = mapped_column(BigInteger, nullable=False)
    collective_centi: Mapped[int] = mapped_column(BigInteger, nullable=False)
    management: Mapped[str] = mapped_column(String(10), nullable=False)
    created_by: Mapped[str] = mapped_column(String(50), nullable=False)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    collective = relationship("Collective")

    @property
    def total_centi(self) -> int:
        return self.member_centi + self.collective_centi

    __table_args__ = (
        ForeignKeyConstraint(["collective_id", "collective_county_code"],
                             ["collective.id", "collective.county_code"], match="FULL"),
    )


class Holding(db.Model):
    __tablename__ = "share_holding"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quantification_id: Mapped[int] = mapped_column(ForeignKey("share_quantification.id"),
                                                   nullable=False, index=True)
    person_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    # the county of the person row it names, filled by the database (trigger
    # share_holding_person_county, migration 0045): the key is (person_id, person_county_code)
    person_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    household_id: Mapped[int | None] = mapped_column(Integer)
    # its household's county, filled by the database (trigger share_holding_parent_county,
    # migration 0041): the foreign key is (household_id, household_county_code)
    household_county_code: Mapped[str | None] = mapped_column(
        String(6), server_default=FetchedValue())
    population_centi: Mapped[int] = mapped_column(BigInteger, nullable=False)
    labour_centi: Mapped[int] = mapped_column(BigInteger, nullable=False)
    shares_centi: Mapped[int] = mapped_column(BigInteger, nullable=False)
    source: Mapped[str] = mapped_column(String(10), nullable=False)
    inherited_from_id: Mapped[int | None] = mapped_column(ForeignKey("share_holding.id"), index=True)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    end_ground: Mapped[str | None] = mapped_column(String(20))

    person = relationship("Person", primaryjoin="Person.id == foreign(Holding.person_id)")
    household = relationship("Household")
    quantification = relationship("Quantification")

    __table_args__ = (
        ForeignKeyConstraint(["person_id", "person_county_code"], ["person.id", "person.county_code"],
                             match="FULL"),
        ForeignKeyConstraint(["household_id", "household_county_code"],
                             ["household.id", "household.county_code"], match="FULL"),
    )


class BankAccount(db.Model):
    __tablename__ = "member_bank_account"

    person_id: Mapped[int] = mapped_column(Integer, autoincrement=False, primary_key=True)
    # the county of the person row it names, filled by the database (trigger
    # member_bank_account_person_county, migration 0045): the key is (person_id, person_county_code)
    person_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    bank_name: Mapped[str] = mapped_column(String(60), nullable=False)
    account_no: Mapped[str] = mapped_column(String(34), nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(50), nullable=False)
    recorded_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    @property
    def account_masked(self) -> str:
        return mask_account(self.account_no)

    __table_args__ = (
        ForeignKeyConstraint(["person_id", "person_county_code"], ["person.id", "person.county_code"],
                             match="FULL"),
    )


def mask_account(no: str | None) -> str:
    if not no:
        return ""
    return no[:4] + "*" * max(len(no) - 8, 0) + no[-4:]


class Distribution(db.Model):
    __tablename__ = "distribution"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collective_id: Mapped[int] = mapped_column(Integer, nullable=False,
                                               index=True)
    # its collective's county, filled by the database (trigger distribution_parent_county,
    # migration 0041): the foreign key is (collective_id, collective_county_code)
    collective_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    quantification_id: Mapped[int] = mapped_column(ForeignKey("share_quantification.id"),
                                                   nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    paid_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    rule: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    rule_note: Mapped[str | None] = mapped_column(Text)
    total_centi: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="computed")
    created_by: Mapped[str] = mapped_column(String(50), nullable=False)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    collective = relationship("Collective")
    quantification = relationship("Quantification")

    __table_args__ = (
        ForeignKeyConstraint(["collective_id", "collective_county_code"],
                             ["collective.id", "collective.county_code"], match="FULL"),
    )


class Payout(db.Model):
    __tablename__ = "distribution_payout"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    distribution_id: Mapped[int] = mapped_column(ForeignKey("distribution.id"), nullable=False,
                                                 index=True)
    person_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # the county of the person row it names, filled by the database (trigger
    # distribution_payout_person_county, migration 0045): the key is (person_id, person_county_code)
    person_county_code: Mapped[str | None] = mapped_column(
        String(6), server_default=FetchedValue())
    household_id: Mapped[int | None] = mapped_column(Integer)
    # its household's county, filled by the database (trigger distribution_payout_parent_county,
    # migration 0041): the foreign key is (household_id, household_county_code)
    household_county_code: Mapped[str | None] = mapped_column(
        String(6), server_default=FetchedValue())
    shares_centi: Mapped[int] = mapped_column(BigInteger, nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)

    person = relationship("Person", primaryjoin="Person.id == foreign(Payout.person_id)")

    __table_args__ = (
        ForeignKeyConstraint(["person_id", "person_county_code"], ["person.id", "person.county_code"],
                             match="FULL"),
        ForeignKeyConstraint(["household_id", "household_county_code"],
                             ["household.id", "household.county_code"], match="FULL"),
    )
