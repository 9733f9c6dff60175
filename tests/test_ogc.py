"""OGC API – Features: GDAL's OAPIF driver reads the register through HTTP."""
import json
import subprocess
import urllib.request


def get(url):
    with urllib.request.urlopen(url) as r:
        return r.headers.get_content_type(), json.loads(r.read().decode())


def test_landing_conformance_collections(live_server):
    t, landing = get(live_server + "/ogc")
    assert t == "application/json"
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "conformance", "data", "service-desc"} <= rels
    _, conf = get(live_server + "/ogc/conformance")
    assert any(c.endswith("/conf/core") for c in conf["conformsTo"])
    _, cols = get(live_server + "/ogc/collections")
    assert cols["collections"][0]["id"] == "parcels"


def test_items_bbox_limit_paging_and_no_personal_data(live_server):
    t, page1 = get(live_server + "/ogc/collections/parcels/items?limit=5")
    assert t == "application/geo+json" and page1["numberReturned"] == 5
    nxt = next(link["href"] for link in page1["links"] if link["rel"] == "next")
    _, page2 = get(nxt)
    assert {f["id"] for f in page1["features"]}.isdisjoint({f["id"] for f in page2["features"]})
    props = page1["features"][0]["properties"]
    assert "household_code" not in props and not any("id_number" in k for k in props)
    lon, lat = page1["features"][0]["geometry"]["coordinates"][0][0][0]
    bbox = f"{lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}"
    _, near = get(live_server + f"/ogc/collections/parcels/items?bbox={bbox}&limit=1000")
    # counted under a filter only (no count of the whole register): tests/test_search_scale.py
    assert "numberMatched" not in page1
    assert 0 < near["numberMatched"] == near["numberReturned"] == len(near["features"])
    assert page1["features"][0]["id"] in {f["id"] for f in near["features"]}
    fid = page1["features"][0]["id"]
    _, one = get(live_server + f"/ogc/collections/parcels/items/{fid}")
    assert one["id"] == fid and one["properties"]["code"] == props["code"]
    try:
        urllib.request.urlopen(live_server + "/ogc/collections/parcels/items?bbox=1,2,3")
        raise AssertionError("a bad bbox must be refused")
    except urllib.error.HTTPError as e:
        assert e.code == 400


def test_gdal_reads_the_service(live_server):
    out = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{live_server}/ogc", "parcels"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Feature Count" in out.stdout and "code: String" in out.stdout
    assert "WGS 84" in out.stdout or "CRS84" in out.stdout or "4326" in out.stdout
    feat = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{live_server}/ogc", "parcels",
                           "-fid", "1"], capture_output=True, text=True, timeout=120)
    assert feat.returncode == 0 and "MULTIPOLYGON" in feat.stdout
    assert "fbfbm (String)" in feat.stdout
    import re

    assert re.search(r"name \(String\) = [\u4e00-\u9fff]", feat.stdout)  # Chinese intact


# ---------------------------------------------------------------------------------------------
# Issue 19: Part 2 (CRS) and Part 3 (CQL2 filters), read by GDAL and counted against the register

def _register_count(dbs, township: str, kind: str) -> int:
    from sqlalchemy import text

    return dbs.execute(text("""SELECT count(*) FROM parcel p JOIN collective c
        ON c.id = p.collective_id WHERE p.end_lifespan IS NULL AND c.fbfbm LIKE :t
        AND p.kind = :k"""), {"t": township + "%", "k": kind}).scalar()


def test_conformance_crs_and_content_crs(live_server):
    _, conf = get(live_server + "/ogc/conformance")
    assert any("ogcapi-features-2/1.0/conf/crs" in c for c in conf["conformsTo"])
    assert any("ogcapi-features-3/1.0/conf/filter" in c for c in conf["conformsTo"])
    _, col = get(live_server + "/ogc/collections/parcels")
    assert "http://www.opengis.net/def/crs/EPSG/0/4490" in col["crs"]
    _, crs84 = get(live_server + "/ogc/collections/parcels/items?limit=1")
    fid = crs84["features"][0]["id"]
    lon, lat = crs84["features"][0]["geometry"]["coordinates"][0][0][0]
    with urllib.request.urlopen(live_server + f"/ogc/collections/parcels/items/{fid}?crs="
                                "http://www.opengis.net/def/crs/EPSG/0/4490") as r:
        assert r.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4490>"
        lat2, lon2 = json.loads(r.read())["geometry"]["coordinates"][0][0][0]
    assert abs(lat2 - lat) < 1e-7 and abs(lon2 - lon) < 1e-7  # latitude first in EPSG:4490
    srid = crs84["features"][0]["properties"]["survey_srid"]
    _, gk = get(live_server + f"/ogc/collections/parcels/items/{fid}?crs="
                f"http://www.opengis.net/def/crs/EPSG/0/{srid}")
    north, east = gk["geometry"]["coordinates"][0][0][0]
    assert 3e6 < north < 6e6 and 3e5 < east % 1e6 < 7e5  # northing, easting in metres
    bbox = f"{lat - 0.0005},{lon - 0.0005},{lat + 0.0005},{lon + 0.0005}"
    _, near = get(live_server + "/ogc/collections/parcels/items?limit=1000&bbox-crs="
                  f"http://www.opengis.net/def/crs/EPSG/0/4490&bbox={bbox}")
    assert fid in {f["id"] for f in near["features"]}


def test_cql2_filters_counted_against_the_register(live_server, dbs):
    from urllib.parse import quote

    _, one = get(live_server + "/ogc/collections/parcels/items?limit=1")
    township = one["features"][0]["properties"]["township"]
    for kind in ("contract", "homestead"):
        f = quote(f"township = '{township}' AND class = '{kind}'")
        _, page = get(live_server + f"/ogc/collections/parcels/items?limit=1&filter={f}")
        assert page["numberMatched"] == _register_count(dbs, township, kind)
    for bad in ("code = ", "nosuch = 1", "code = 'x'; DROP TABLE parcel"):
        try:
            urllib.request.urlopen(live_server + "/ogc/collections/parcels/items?filter="
                                   + quote(bad))
            raise AssertionError(bad)
        except urllib.error.HTTPError as e:
            assert e.code == 400
    # an injection attempt is a literal, never SQL (or refused by the parser)
    try:
        _, none = get(live_server + "/ogc/collections/parcels/items?filter="
                      + quote("code = 'x'' OR ''1''=''1'"))
        assert none["numberMatched"] == 0
    except urllib.error.HTTPError as e:
        assert e.code == 400


def test_gdal_reads_in_cgcs2000_and_with_a_cql2_filter(live_server, dbs):
    """GDAL's OAPIF driver: `-oo CRS=EPSG:4490` is an open option of GDAL >= 3.7; this machine's
    ogrinfo is 3.6.2, which reads CRS84 — then the CRS is checked on the HTTP answers
    (test_conformance_crs_and_content_crs).  The attribute filter goes through ogrinfo."""
    import re

    _, one = get(live_server + "/ogc/collections/parcels/items?limit=1")
    township = one["features"][0]["properties"]["township"]
    version = subprocess.run(["ogrinfo", "--version"], capture_output=True, text=True).stdout
    major, minor = (int(v) for v in re.search(r"GDAL (\d+)\.(\d+)", version).groups())
    crs_opt = ["-oo", "CRS=EPSG:4490"] if (major, minor) >= (3, 7) else []
    out = subprocess.run(["ogrinfo", "-ro", "-so", *crs_opt, f"OAPIF:{live_server}/ogc",
                          "parcels"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if crs_opt:
        assert "CGCS2000" in out.stdout or '"EPSG",4490' in out.stdout
    filt = subprocess.run(["ogrinfo", "-ro", "-so", *crs_opt,
                           "-where", f"township = '{township}' AND kind = 'homestead'",
                           f"OAPIF:{live_server}/ogc", "parcels"],
                          capture_output=True, text=True, timeout=120)
    assert filt.returncode == 0, filt.stderr
    n = int(re.search(r"Feature Count: (\d+)", filt.stdout).group(1))
    assert n == _register_count(dbs, township, "homestead") > 0
