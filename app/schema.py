"""What Alembic compares: our tables, not PostGIS's own (spatial_ref_sys, tiger, topology)."""
from geoalchemy2 import alembic_helpers

POSTGIS_TABLES = {"spatial_ref_sys", "geometry_columns", "geography_columns",
                  "raster_columns", "raster_overviews", "layer", "topology"}
POSTGIS_SCHEMAS = {"tiger", "tiger_data", "topology"}


def include_object(obj, name, type_, reflected, compare_to):
    schema = getattr(obj, "schema", None) or getattr(getattr(obj, "table", None), "schema", None)
    if schema in POSTGIS_SCHEMAS:
        return False
    if type_ == "table" and name in POSTGIS_TABLES:
        return False
    if type_ == "table" and reflected and compare_to is None and name.startswith("_"):
        return False  # temporary/staging tables
    if type_ == "index" and reflected and name and name.startswith("import_feature_geom_b"):
        return False  # per-batch staging indexes, made by the import (app/imports/validation)
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)
