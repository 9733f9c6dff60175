"""Read-only queries of the import's staging tables for its pages (views hold no SQL)."""
from __future__ import annotations

from sqlalchemy import select, text

from app.extensions import db

from .models import ImportBatch


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


def recent_batches(limit: int = 50) -> list[ImportBatch]:
    return list(db.session.scalars(select(ImportBatch).order_by(ImportBatch.id.desc())
                                   .limit(limit)))


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
