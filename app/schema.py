"""What Alembic compares: our tables, not PostGIS's own (spatial_ref_sys, tiger, topology)."""
from geoalchemy2 import alembic_helpers

POSTGIS_TABLES = {"spatial_ref_sys", "geometry_columns", "geography_columns",
                  "raster_columns", "raster_overviews", "layer", "topology"}
POSTGIS_SCHEMAS = {"tiger", "tiger_data", "topology"}


# Index columns with a collation of their own (`code COLLATE "C"`): SQLAlchemy can declare them
# only as an expression, PostgreSQL keeps them as a column with `indcollation`, so the two never
# compare equal.  Made by migrations 0035_search and 0041_search2; tests/test_search_scale.py
# checks them on the catalog.
COLLATED_INDEXES = {"ix_parcel_current_code_c", "ix_parcel_current_household_code_c",
                    "ix_household_name_code_c"}


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
    if type_ == "index" and reflected and name in COLLATED_INDEXES:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)
