import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    FetchedValue,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import func
from sqlalchemy.types import DateTime

from app.extensions import db

# The closed lists of a settlement case.  None of them has, or may ever get, an entry about
# giving up a right (农村土地承包法 art 27; 乡村振兴促进法 art 55): the database holds the same
# lists as CHECK constraints (migration 0009).
BASES = ("owned_house", "rental", "dormitory")
RELATIONS = ("self", "spouse", "child", "parent")
DESTINATIONS = ("house_address", "employer_collective", "community_collective")
DOCUMENT_TYPES = ("id_card", "household_register", "property_certificate", "purchase_contract",
                  "rental_registration", "residence_permit", "employment_proof",
                  "dormitory_proof", "marriage_certificate", "birth_certificate", "other_identity")
CONDITIONS = ("present_originals", "register_residence_within_30_days",
              "collect_new_household_booklet")
# The lawful reasons to refuse a settlement (source document items 1 and 6): about the residence,
# the permit, the persons moving and the papers — never about a right.  Migration 0013 holds the
# same list as a CHECK.
REFUSAL_REASONS = ("no_lawful_stable_residence", "residence_not_verified", "not_living_there",
                   "rental_not_registered", "permit_missing_or_invalid", "permit_other_town",
                   "persons_not_eligible", "documents_incomplete", "identity_not_verified",
                   "town_not_open", "duplicate_application")
TOWN_KINDS = ("urban_district", "high_tech_zone", "county_seat", "designated_town")


class SettlementTown(db.Model):
    """A town where people may settle (source document item 1): the city's urban districts, the
    high-tech zone, county seats and other designated towns — a list the city keeps."""

    __tablename__ = "settlement_town"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    division_code: Mapped[str] = mapped_column(String(12), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))

    __table_args__ = (CheckConstraint(
        "kind IN ('urban_district','high_tech_zone','county_seat','designated_town')",
        name="kind"),)


class ResidencePermit(db.Model):
    """居住证: issued after six months' residence away from the hukou place (item 6)."""

    __tablename__ = "residence_permit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    # the county of the person row it names, filled by the database (trigger
    # residence_permit_person_county, migration 0045): the key is (person_id, person_county_code)
    person_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    number: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    town_id: Mapped[int] = mapped_column(ForeignKey("settlement_town.id"), nullable=False)
    address: Mapped[str] = mapped_column(String(200), nullable=False)
    resident_since: Mapped[dt.date] = mapped_column(Date, nullable=False)
    issued_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(50), nullable=False)

    person = relationship("Person", primaryjoin="Person.id == foreign(ResidencePermit.person_id)")
    town = relationship("SettlementTown")

    __table_args__ = (
        ForeignKeyConstraint(["person_id", "person_county_code"], ["person.id", "person.county_code"],
                             match="FULL"),
        CheckConstraint("issued_on >= resident_since + interval '6 months'",
                        name="six_months_residence"),
        CheckConstraint("valid_until IS NULL OR valid_until > issued_on", name="validity"),
    )


class SettlementApplication(db.Model):
    """An application to settle in town (进城落户).  Approval changes the hukou place of the
    persons in it — and nothing else."""

    __tablename__ = "settlement_application"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    applicant_id: Mapped[int] = mapped_column(Integer, nullable=False,
                                              index=True)
    # the county of the person row it names, filled by the database (trigger
    # settlement_application_person_county, migration 0045): the key is (applicant_id, applicant_county_code)
    applicant_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    town_id: Mapped[int] = mapped_column(ForeignKey("settlement_town.id"), nullable=False)
    basis: Mapped[str] = mapped_column(String(20), nullable=False)
    # (a) owned housing: a property certificate, or a purchase contract filed with the housing
    # authority, and actually living there
    property_certificate_no: Mapped[str | None] = mapped_column(String(60))
    purchase_contract_no: Mapped[str | None] = mapped_column(String(60))
    living_there: Mapped[bool] = mapped_column(Boolean, nullable=False,
                                               server_default=text("false"))
    # (b) a rental registered with the housing authority; (c) an employer's dormitory
    rental_registration_no: Mapped[str | None] = mapped_column(String(60))
    employer_name: Mapped[str | None] = mapped_column(String(200))
    residence_permit_id: Mapped[int | None] = mapped_column(ForeignKey("residence_permit.id"))
    residence_address: Mapped[str] = mapped_column(String(200), nullable=False)
    police_station: Mapped[str | None] = mapped_column(String(100))
    destination: Mapped[str] = mapped_column(String(25), nullable=False)
    destination_address: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="submitted")
    created_by: Mapped[str] = mapped_column(String(50), nullable=False)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    decided_by: Mapped[str | None] = mapped_column(String(50))
    decided_at = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str | None] = mapped_column(Text)
    conditions: Mapped[list | None] = mapped_column(db.ARRAY(String(40)))
    refusal_reasons: Mapped[list | None] = mapped_column(db.ARRAY(String(40)))

    applicant = relationship("Person", primaryjoin="Person.id == foreign(SettlementApplication.applicant_id)")
    town = relationship("SettlementTown")
    permit = relationship("ResidencePermit")
    members = relationship("SettlementMember", back_populates="application",
                           order_by="SettlementMember.id")
    documents = relationship("SettlementDocument", back_populates="application",
                             order_by="SettlementDocument.id")

    __table_args__ = (
        ForeignKeyConstraint(["applicant_id", "applicant_county_code"], ["person.id", "person.county_code"],
                             match="FULL"),
        CheckConstraint("basis IN ('owned_house','rental','dormitory')", name="basis"),
        CheckConstraint(
            "destination IN ('house_address','employer_collective','community_collective')",
            name="destination"),
        CheckConstraint("status IN ('submitted','approved','rejected')", name="status"),
        CheckConstraint(
            "(basis = 'owned_house' AND living_there AND destination = 'house_address' AND "
            " (property_certificate_no IS NOT NULL OR purchase_contract_no IS NOT NULL))"
            " OR (basis = 'rental' AND rental_registration_no IS NOT NULL AND "
            "     residence_permit_id IS NOT NULL AND "
            "     destination IN ('employer_collective','community_collective'))"
            " OR (basis = 'dormitory' AND employer_name IS NOT NULL AND "
            "     residence_permit_id IS NOT NULL AND "
            "     destination IN ('employer_collective','community_collective'))",
            name="lawful_stable_residence"),
        CheckConstraint(
            "conditions IS NULL OR conditions <@ ARRAY['present_originals',"
            "'register_residence_within_30_days','collect_new_household_booklet']"
            "::varchar(40)[]", name="conditions_closed_list"),
        CheckConstraint("status = 'submitted' OR (decided_by IS NOT NULL AND decided_at IS NOT "
                        "NULL)", name="decided"),
    )


class SettlementMember(db.Model):
    """A person moving with the application: the applicant, spouse, unmarried children,
    parents."""

    __tablename__ = "settlement_member"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("settlement_application.id"),
                                                nullable=False, index=True)
    person_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    # the county of the person row it names, filled by the database (trigger
    # settlement_member_person_county, migration 0045): the key is (person_id, person_county_code)
    person_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    relation: Mapped[str] = mapped_column(String(10), nullable=False)
    unmarried: Mapped[bool | None] = mapped_column(Boolean)
    lives_with_applicant: Mapped[bool] = mapped_column(Boolean, nullable=False,
                                                       server_default=text("true"))
    from_division_code: Mapped[str | None] = mapped_column(String(12))
    from_address: Mapped[str | None] = mapped_column(String(200))

    application = relationship("SettlementApplication", back_populates="members")
    person = relationship("Person", primaryjoin="Person.id == foreign(SettlementMember.person_id)")

    __table_args__ = (
        ForeignKeyConstraint(["person_id", "person_county_code"], ["person.id", "person.county_code"],
                             match="FULL"),
        CheckConstraint("relation IN ('self','spouse','child','parent')", name="relation"),
        CheckConstraint("relation <> 'child' OR unmarried", name="children_unmarried"),
        db.UniqueConstraint("application_id", "person_id", name="uq_settlement_member"),
    )


class SettlementDocument(db.Model):
    """A document filed with an application: identity and residence evidence only."""

    __tablename__ = "settlement_document"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("settlement_application.id"),
                                                nullable=False, index=True)
    doc_type: Mapped[str] = mapped_column(String(30), nullable=False)
    filename: Mapped[str] = mapped_column(String(200), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    uploaded_by: Mapped[str] = mapped_column(String(50), nullable=False)
    uploaded_at = mapped_column(DateTime(timezone=True), nullable=False,
                                server_default=func.now())

    application = relationship("SettlementApplication", back_populates="documents")

    __table_args__ = (CheckConstraint(
        "doc_type IN ('id_card','household_register','property_certificate',"
        "'purchase_contract','rental_registration','residence_permit','employment_proof',"
        "'dormitory_proof','marriage_certificate','birth_certificate','other_identity')",
        name="doc_type_closed_list"),)


class HukouMove(db.Model):
    """The history of a person's hukou place: one row per move, never changed.  `txid` lets
    the database refuse any change to a right or membership in the transaction of a move."""

    __tablename__ = "hukou_move"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    # the county of the person row it names, filled by the database (trigger
    # hukou_move_person_county, migration 0045): the key is (person_id, person_county_code)
    person_county_code: Mapped[str] = mapped_column(
        String(6), nullable=False, server_default=FetchedValue())
    application_id: Mapped[int | None] = mapped_column(ForeignKey("settlement_application.id"))
    from_division_code: Mapped[str | None] = mapped_column(String(12))
    from_address: Mapped[str | None] = mapped_column(String(200))
    to_division_code: Mapped[str] = mapped_column(String(12), nullable=False)
    to_address: Mapped[str] = mapped_column(String(200), nullable=False)
    moved_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    moved_by: Mapped[str] = mapped_column(String(50), nullable=False)
    txid: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True,
                                      server_default=text("txid_current()"))

    __table_args__ = (
        ForeignKeyConstraint(["person_id", "person_county_code"], ["person.id", "person.county_code"],
                             match="FULL"),
    )

