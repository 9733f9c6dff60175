"""Area as surveyors compute it: planar, in the Gauss-Krüger 3-degree zone of the parcel."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

M2_PER_MU = 10000 / 15  # 1 mu = 666.67 m²


CENT = Decimal("0.01")


def m2(area: float) -> Decimal:
    """Surveyed area SCMJ in m², to the cent, rounded half up as PostgreSQL's round() does."""
    return Decimal(repr(float(area))).quantize(CENT, ROUND_HALF_UP)


def mu(area_m2) -> Decimal:
    """SCMJM = round(SCMJ × 0.0015, 2), from the SCMJ as recorded (to the cent)."""
    return (m2(area_m2) * Decimal("0.0015")).quantize(CENT, ROUND_HALF_UP)


def gk3_zone_srid(longitude: float, prefixed: bool = False) -> int:
    """CGCS2000 3-degree Gauss-Krüger zone for a longitude (EPSG:4534–4554 without the zone
    prefix in eastings, EPSG:4513–4533 with it), covering 75°E–135°E."""
    zone = int((longitude + 1.5) // 3)  # zone 25 = CM 75°E … zone 45 = CM 135°E
    if not 25 <= zone <= 45:
        raise ValueError(f"longitude {longitude} is outside China's 3-degree zones")
    return (4513 if prefixed else 4534) + (zone - 25)


def overlap_m2(a, b) -> float:
    """The overlap area of two polygons in a metric CRS (m²): a snap-rounded overlay on a 0.1 mm
    grid. The same rule as the database's overlap_area_m2() (migration 0021_house); the parcel
    split checks its parts with it. tests/test_rules_once.py proves the two agree."""
    import shapely

    if not a.intersects(b):
        return 0.0
    return shapely.intersection(a, b, grid_size=1e-4).area
