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
    # a parcel that exists (ids come from a key trigger since 0041 and need not start at 1)
    _, first = get(live_server + "/ogc/collections/parcels/items?limit=1")
    fid = first["features"][0]["id"]
    feat = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{live_server}/ogc", "parcels",
                           "-fid", str(fid)], capture_output=True, text=True, timeout=120)
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


READ_WITH_PYOGRIO = r"""
import json, sys
import pyogrio, shapely
ds, where = sys.argv[1], sys.argv[2]
out = {"gdal": pyogrio.__gdal_version_string__, "oapif": "OAPIF" in pyogrio.list_drivers()}
if out["oapif"]:
    out["info_crs"] = pyogrio.read_info(ds, layer="parcels", CRS="EPSG:4490")["crs"]
    meta, fids, geoms, fields = pyogrio.raw.read(ds, layer="parcels", where=where,
                                                 columns=["code", "township", "kind"],
                                                 CRS="EPSG:4490")
    cols = dict(zip(meta["fields"], fields))
    out.update(crs=meta["crs"], count=len(cols["code"]), codes=[str(v) for v in cols["code"]],
               townships=sorted({str(v) for v in cols["township"]}),
               kinds=sorted({str(v) for v in cols["kind"]}),
               first=shapely.get_coordinates(shapely.from_wkb(geoms[0])).tolist()
               if len(geoms) else [])
print(json.dumps(out))
"""


def test_gdal_3_7_plus_reads_cgcs2000_and_a_cql2_filter_through_pyogrio(app, dbs):
    """The `-oo CRS=EPSG:4490` read the machine's GDAL 3.6.2 cannot do, with the newer GDAL
    that pyogrio's wheel bundles (pyogrio passes dataset open options as keyword arguments):
    the layer is read in CGCS2000, the coordinates are those of the CRS84 answer, and an
    attribute filter is sent to the server and its count equals the register's.

    GDAL runs in a child process, as any client would: the app's own process deregisters every
    GDAL driver but Shapefile, GeoPackage and GeoJSON and turns networking off
    (gis.io.harden_gdal), so OAPIF cannot be opened inside the test process itself."""
    import os
    import sys
    from urllib.parse import parse_qs, quote

    from tests.conftest import serve

    seen: list[dict] = []

    def recorded(environ, start_response):  # what GDAL asked the server
        if environ["PATH_INFO"].endswith("/items"):
            seen.append(parse_qs(environ.get("QUERY_STRING", "")))
        return app(environ, start_response)

    server = serve(recorded)
    base = next(server)
    try:
        _, one = get(base + "/ogc/collections/parcels/items?limit=1")
        township = one["features"][0]["properties"]["township"]
        seen.clear()
        where = f"township = '{township}' AND kind = 'homestead'"
        env = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
        run = subprocess.run([sys.executable, "-c", READ_WITH_PYOGRIO, f"OAPIF:{base}/ogc",
                              where], capture_output=True, text=True, timeout=300, env=env)
        assert run.returncode == 0, run.stderr[-2000:]
        got = json.loads(run.stdout.strip().splitlines()[-1])
        gdal = tuple(int(v) for v in got["gdal"].split(".")[:2])
        # requirements.txt pins pyogrio, whose wheel bundles a GDAL >= 3.7 with OAPIF: a
        # wheel without them is a failure of this check, never a silent skip
        assert gdal >= (3, 7) and got["oapif"], f"pyogrio's GDAL {got['gdal']}: no OAPIF/CRS"
        assert got["info_crs"] == "EPSG:4490" and got["crs"] == "EPSG:4490", got
        expected = _register_count(dbs, township, "homestead")
        assert got["count"] == expected > 0
        assert got["townships"] == [township] and got["kinds"] == ["homestead"]
        # the filter went to the server (GDAL found the queryables and the filter language in
        # the items parameters of the service-desc, /ogc/api), with the CRS asked for; before
        # /ogc/api existed the service-desc was the JSON API's document, GDAL paged through every
        # parcel and filtered on the client ("OAPIF: Full filter will be evaluated on client
        # side").
        pages = [q for q in seen if q.get("limit", ["0"])[0] != "20"]
        assert pages and all("4490" in q.get("crs", [""])[0] for q in pages), seen
        sent = [q for q in pages if "filter" in q or "township" in q]
        assert sent and len(sent) == len(pages), seen
        f = sent[0]
        assert township in (f.get("filter", [""])[0] + f.get("township", [""])[0]), f
        # the same parcel in CRS84 from the server: GDAL's CGCS2000 coordinates are the same
        # points (GDAL hands them over longitude first, as every OGR layer)
        _, crs84 = get(base + "/ogc/collections/parcels/items?limit=1&filter="
                       + quote(f"code = '{got['codes'][0]}'"))
        lon, lat = crs84["features"][0]["geometry"]["coordinates"][0][0][0]
        assert min(abs(x - lon) + abs(y - lat) for x, y in got["first"]) < 1e-7, \
            (got["first"][:2], lon, lat)
    finally:
        next(server, None)
