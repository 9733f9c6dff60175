"""Read-only queries of the import's staging tables for its pages (views hold no SQL)."""
from __future__ import annotations

from sqlalchemy import exists, or_, select, text

from app.extensions import db

from .models import ImportBatch, ImportFeature, ImportRecord


def division_codes(batch_id: int) -> list[str]:
    """The village codes (12 digits) a batch's features and issuing parties name."""
    codes = db.session.scalars(text("""
        SELECT DISTINCT substr(code, 1, 12) FROM import_feature WHERE batch_id = :b
          AND code ~ '^[0-9]{12}'
        UNION SELECT DISTINCT substr(attrs->>'FBFBM', 1, 12) FROM import_record
        WHERE batch_id = :b AND tbl = 'FBF'"""), {"b": batch_id}).all()
    return [c for c in codes if c]


def batch_of_job(job_id: int) -> ImportBatch | None:
    return db.session.scalar(select(ImportBatch).where(ImportBatch.job_id == job_id))


def in_jurisdiction(stmt, like: str | None, username: str | None):
    """Batches inside a jurisdiction (`like` on the codes its features and issuing parties
    name, as the batch's own scope) or uploaded by `username`; `like` None is everywhere."""
    if like is None:
        return stmt
    return stmt.where(or_(
        exists().where(ImportFeature.batch_id == ImportBatch.id, ImportFeature.code.like(like)),
        exists().where(ImportRecord.batch_id == ImportBatch.id, ImportRecord.tbl == "FBF",
                       ImportRecord.attrs["FBFBM"].astext.like(like)),
        ImportBatch.created_by == (username or "")))


def recent_batches(limit: int = 50, like: str | None = None,
                   username: str | None = None) -> list[ImportBatch]:
    return list(db.session.scalars(in_jurisdiction(
        select(ImportBatch).order_by(ImportBatch.id.desc()), like, username).limit(limit)))


def open_fault_locations(batch_id: int) -> list:
    """Open faults of a batch that have a location, with it as GeoJSON."""
    return db.session.execute(text("""
        SELECT x.id, x.rule, x.code, x.detail, x.feature_id, ST_AsGeoJSON(x.location)::json AS g
        FROM import_fault x WHERE x.batch_id = :b AND x.location IS NOT NULL
          AND x.resolved_at IS NULL"""), {"b": batch_id}).all()


def feature_wkt(feature_id: int) -> str | None:
    """A staged feature's geometry as WKT, in the delivery's CRS."""
    return db.session.execute(text("SELECT ST_AsText(geom) FROM import_feature WHERE id = :i"),
                              {"i": feature_id}).scalar()


def batch_ids() -> list[int]:
    return list(db.session.scalars(select(ImportBatch.id)))
