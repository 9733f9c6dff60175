"""Faults the sample does not carry: code lists, malformed codes, area, CRS and encoding."""
import json
from pathlib import Path

import pytest
import shapely

from app.errors import DomainError
from app.imports import operations as ops
from gis import io as gio


def _delivery(tmp: Path, srid: int, features: list[tuple[dict, shapely.Geometry]],
              name="DK_test.gpkg"):
    path = tmp / name
    recs = [a for a, _ in features]
    fields = sorted({k for r in recs for k in r})
    gio.write_layer(path, "DK", srid, [shapely.to_wkb(g) for _, g in features], recs, fields,
                    "GPKG")
    return path


def _dk(code, area=None, **kw):
    g = shapely.box(530000, 4100000, 530020, 4100050)
    a = {"DKBM": code, "DKMC": "试验地", "SYQXZ": "31", "DKLB": "10", "TDLYLX": "013",
         "DLDJ": "05", "TDYT": "1", "SFJBNT": "1", "SCMJ": area if area is not None else g.area}
    a.update(kw)
    return a, g


def test_code_lists_codes_and_area_are_checked(dbs, tmp_path):
    from sqlalchemy import select

    from app.collectives.models import Collective

    fb = dbs.scalar(select(Collective.fbfbm).order_by(Collective.fbfbm))
    feats = [
        _dk(fb + "99001", DLDJ="11"),                   # soil grade outside 01–10
        _dk(fb + "99002", SYQXZ="40", TDYT="9"),        # two fields outside their lists
        _dk("12345"),                                    # malformed DKBM
        _dk(fb + "99003", area=1234.0),                  # delivered area ≠ computed 1000 m²
        _dk("99999999999999" + "00001"),                 # issuing party unknown
    ]
    for i, (a, g) in enumerate(feats):  # keep them apart
        feats[i] = (a, shapely.affinity.translate(g, 100 * i, 0))
    batch = ops.run("bureau", _delivery(tmp_path, 4547, feats))
    found = {(f.rule, f.code, f.detail) for f in ops.faults(batch.id)}
    rules = sorted((r, c) for r, c, _ in found)
    assert rules == sorted([
        ("code_list", fb + "99001"), ("code_list", fb + "99002"), ("code_list", fb + "99002"),
        ("bad_code", "12345"), ("area_mismatch", fb + "99003"),
        ("unknown_issuing_party", "9999999999999900001")])
    assert any("DLDJ = 11" in d for _, _, d in found)
    assert any("1234.00" in d and "1000.00" in d for _, _, d in found)


def test_implausible_coordinates_for_the_declared_crs_are_refused(dbs, tmp_path):
    # Eastings carrying the zone prefix 38 read as EPSG:4547 (which has no prefix).
    a, g = _dk("140404101201019" + "9001")
    prefixed = shapely.affinity.translate(g, 38_000_000, 0)
    ok = ops.run("bureau", _delivery(tmp_path, 4526, [(a, prefixed)], "DK_a.gpkg"))
    assert ok.srid == 4526  # with the zone prefix, EPSG:4526 is right
    with pytest.raises(DomainError) as e:  # the same numbers declared as EPSG:4547
        ops.run("bureau", _delivery(tmp_path, 4547, [(a, prefixed)], "DK_b.gpkg"))
    assert e.value.code == "import.crs_implausible"
    raw = tmp_path / "noprj.geojson"
    raw.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"DKBM": "1404041012010199002"},
        "geometry": shapely.geometry.mapping(g)}]}))
    with pytest.raises(DomainError) as e:
        ops.run("bureau", raw)  # GeoJSON without crs means WGS 84 degrees: metres are absurd
    assert e.value.code == "import.crs_implausible"
    assert "4526" in e.value.message("en") and "4547" in e.value.message("en")


def test_a_declared_crs_that_contradicts_the_file_is_refused(dbs, tmp_path):
    path = _delivery(tmp_path, 4547, [_dk("1404041012010199003")])
    with pytest.raises(DomainError) as e:
        ops.run("bureau", path, declared_srid=4546)
    assert e.value.code == "import.crs_conflict"


def test_a_shapefile_without_cpg_needs_a_declared_encoding(dbs, tmp_path):
    a, g = _dk("1404041012010199004")
    gio.write_layer(tmp_path / "DK_x.shp", "DK_x", 4547, [shapely.to_wkb(g)], [a], list(a),
                    "ESRI Shapefile", encoding="GBK")
    (tmp_path / "DK_x.cpg").unlink()
    with pytest.raises(DomainError) as e:
        ops.run("bureau", tmp_path / "DK_x.shp")
    assert e.value.code == "import.encoding_unknown" and "GBK" in e.value.message("en")
    batch = ops.run("bureau", tmp_path / "DK_x.shp", encoding="GBK")
    f = batch.counts["features"]
    assert f == 1
