"""The stored-geometry rule, defined once: a parcel is stored with its repeated vertices (within
1 mm, or 1e-8 degree for geographic input) dropped, in CGCS2000 geographic (EPSG:4490).

Python (`gis.io.to_cgcs2000`) and SQL (`STORED`, used by app.imports and app.parcels) both read the
constants here. The database's own copy is the SQL function `stored_geometry(geometry)` of
migration 0021_house (a migration holds its own SQL); tests/test_layers.py proves the three agree."""

STORED_SRID = 4490
GEOGRAPHIC_SRIDS = (4326, 4490)
TOLERANCE_DEGREES = 1e-8
TOLERANCE_METRES = 0.001


def repeat_tolerance(srid: int) -> float:
    return TOLERANCE_DEGREES if srid in GEOGRAPHIC_SRIDS else TOLERANCE_METRES


# SQL text of the same rule for an expression {g} (any SRID).
CLEAN = (f"ST_RemoveRepeatedPoints({{g}}, CASE WHEN ST_SRID({{g}}) IN {GEOGRAPHIC_SRIDS} "
         f"THEN {TOLERANCE_DEGREES} ELSE {TOLERANCE_METRES} END)")
STORED = f"ST_Transform({CLEAN}, {STORED_SRID})"
