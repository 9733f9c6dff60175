from decimal import Decimal

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    FetchedValue,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import func
from sqlalchemy.types import DateTime

from app.extensions import db

STORED_SRID = 4490  # CGCS2000 geographic; areas are computed in the survey's GK zone


class Parcel(db.Model):
    """A spatial unit: a contract-land parcel (地块, 19-digit DKBM) or a homestead parcel
    (宅基地宗地, 28-character 不动产单元代码).  Never updated in place: a change ends this
    version's lifespan and starts a new one."""

    __tablename__ = "parcel"

    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    # The spatial unit's identity across its versions (LADM: a versioned object).
    uid: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True,
                                     server_default=text("nextval('parcel_uid_seq')"))
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    code: Mapped[str] = mapped_column(String(28), nullable=False)
    # The county (first six digits of the code): the distribution column of a later Citus
    # cluster (migration 0026, docs/scaling.md); generated, never written.
    county_code: Mapped[str] = mapped_column(String(6), Computed("left(code, 6)", persisted=True),
                                             nullable=False)
    collective_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    household_code: Mapped[str | None] = mapped_column(String(18), index=True)
    name: Mapped[str | None] = mapped_column(String(50))
    syqxz: Mapped[str | None] = mapped_column(String(2))
    dklb: Mapped[str | None] = mapped_column(String(2))
    tdlylx: Mapped[str | None] = mapped_column(String(3))
    dldj: Mapped[str | None] = mapped_column(String(2))
    tdyt: Mapped[str | None] = mapped_column(String(1))
    sfjbnt: Mapped[str | None] = mapped_column(String(1))
    scmj: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)
    scmjm: Mapped[Decimal] = mapped_column(Numeric(12, 2), nullable=False)
    east: Mapped[str | None] = mapped_column(String(50))
    south: Mapped[str | None] = mapped_column(String(50))
    west: Mapped[str | None] = mapped_column(String(50))
    north: Mapped[str | None] = mapped_column(String(50))
    witness: Mapped[str | None] = mapped_column(String(50))
    remarks: Mapped[str | None] = mapped_column(String(254))
    survey_srid: Mapped[int] = mapped_column(Integer, nullable=False)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=STORED_SRID, spatial_index=True),
                         nullable=False)
    # Web Mercator copy for vector tiles, kept by the database.  The stored CGCS2000
    # coordinates are read as WGS 84: the same result bit for bit (PROJ's only CGCS2000 -> WGS 84
    # operation is the identity), without PROJ's datum search on every insert (migration 0056).
    geom_web = mapped_column(Geometry("MULTIPOLYGON", srid=3857, spatial_index=True),
                             Computed("ST_Transform(ST_SetSRID(geom, 4326), 3857)",
                                      persisted=True))
    attrs = mapped_column(JSONB, nullable=False, server_default="{}")
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"))
    change_kind: Mapped[str] = mapped_column(String(20), nullable=False,
                                             server_default="register")
    change_reason: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str | None] = mapped_column(String(50))
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    begin_lifespan = mapped_column(DateTime(timezone=True), nullable=False,
                                   server_default=func.now())
    end_lifespan = mapped_column(DateTime(timezone=True))

    # read only: the collective is named by collective_id (its county is the parcel's: the
    # composite foreign key; county_code is generated and never written)
    collective = relationship("Collective", viewonly=True)

    # The table's key is (id, county_code) (Citus-ready, migration 0041); the mapper's is `id`.
    __mapper_args__ = {"primary_key": [id]}
    __table_args__ = (
        PrimaryKeyConstraint("id", "county_code"),
        ForeignKeyConstraint(["collective_id", "county_code"],
                             ["collective.id", "collective.county_code"]),
        CheckConstraint("kind IN ('contract','homestead')", name="kind"),
        CheckConstraint(
            "(kind = 'contract' AND code ~ '^[0-9]{19}$')"
            " OR (kind = 'homestead' AND code ~ '^[0-9]{12}[GJZ][A-Z][0-9]{5}[FLQW][0-9]{8}$')",
            name="code_format"),
        CheckConstraint("scmj > 0", name="area_positive"),
        CheckConstraint("end_lifespan IS NULL OR end_lifespan > begin_lifespan",
                        name="lifespan"),
        # the zone the overlap and the area are measured in: a CGCS2000 3-degree zone, never
        # a geographic CRS (square degrees) (migration 0043_atk_db2)
        CheckConstraint("survey_srid BETWEEN 4513 AND 4554", name="survey_srid_gk_zone"),
        # no NaN or infinite coordinate: its box would slip past the overlap checks' && (0043)
        CheckConstraint("ST_Area(geom) < 'Infinity'::float8 AND ST_XMin(geom) >= -180 "
                        "AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 "
                        "AND ST_YMax(geom) <= 90", name="geom_finite"),
        db.Index("uq_parcel_current_code", "code", "county_code", unique=True,
                 postgresql_where=text("end_lifespan IS NULL")),
        # Also ix_parcel_current_code_c and ix_parcel_current_household_code_c (0035_search):
        # the staff search's prefixes as ranges in byte order, under any collation; an index
        # column with a collation of its own has no SQLAlchemy form (app/schema.py).
    )


class Mutation(db.Model):
    """A change of the register's geometry: split, merge or correction, with lineage."""

    __tablename__ = "parcel_mutation"

    # The table's key is (id, county_code) (Citus-ready, migration 0041); the mapper's is `id`.
    id: Mapped[int] = mapped_column(Integer, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    by: Mapped[str] = mapped_column(String(50), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    # the county of the parcels it changes, named by the operation; parcel_lineage's composite
    # foreign keys keep a mutation, its parents and its children in one county
    county_code: Mapped[str] = mapped_column(String(6), nullable=False)

    __mapper_args__ = {"primary_key": [id]}
    __table_args__ = (
        PrimaryKeyConstraint("id", "county_code"),
        CheckConstraint("kind IN ('split','merge','correction','attribute')", name="kind"),
        CheckConstraint("county_code ~ '^[0-9]{6}$'", name="county_code_format"),
    )


class Lineage(db.Model):
    """Parent version → child version, through a mutation."""

    __tablename__ = "parcel_lineage"

    parent_id: Mapped[int] = mapped_column(Integer, nullable=False)
    child_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    mutation_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    # the child version's county, copied by the database (trigger parcel_lineage_county_code;
    # Citus-ready, migration 0036): part of the table's key, not of the mapper's
    county_code: Mapped[str] = mapped_column(String(6), nullable=False,
                                             server_default=FetchedValue())

    __mapper_args__ = {"primary_key": [parent_id, child_id]}
    __table_args__ = (
        PrimaryKeyConstraint("parent_id", "child_id", "county_code"),
        # parent, child and mutation in one county (migration 0041)
        ForeignKeyConstraint(["parent_id", "county_code"], ["parcel.id", "parcel.county_code"]),
        ForeignKeyConstraint(["child_id", "county_code"], ["parcel.id", "parcel.county_code"]),
        ForeignKeyConstraint(["mutation_id", "county_code"],
                             ["parcel_mutation.id", "parcel_mutation.county_code"]),
    )


class RegistrySetting(db.Model):
    """Rules that vary by place, kept as data (LADM).  Read by the operations and triggers."""

    __tablename__ = "registry_setting"
    # the overlap tolerance within the settings catalogue's bounds, 0–10 m² (0043_atk_db2)
    __table_args__ = (CheckConstraint(
        "CASE WHEN key <> 'overlap_tolerance_m2' THEN true "
        "WHEN value ~ '^[0-9]{1,6}(\\.[0-9]{0,12})?([eE][-+]?[0-9]{1,3})?$' "
        "THEN value::numeric BETWEEN 0 AND 10 ELSE false END", name="overlap_tolerance"),)

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)


class RegistrySettingVersion(db.Model):
    """Every value a setting has had (migration 0028): appended by a trigger on
    `registry_setting`, whoever wrote it; the app role only reads it."""

    __tablename__ = "registry_setting_version"
    __table_args__ = (Index("ix_registry_setting_version_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    key: Mapped[str] = mapped_column(String(50), nullable=False)
    value: Mapped[str | None] = mapped_column(String(200))
    at = mapped_column(DateTime(timezone=True), nullable=False,
                       server_default=text("clock_timestamp()"))
    db_user: Mapped[str] = mapped_column(Text, nullable=False)
    actor: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)


class RegisterVersion(db.Model):
    """One row; its counter moves (by trigger, migration 0023) with every change of `parcel`.
    Vector tiles carry it as their ETag."""

    __tablename__ = "register_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="1")
    changed_at = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)
