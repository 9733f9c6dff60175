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
    assert 0 < near["numberMatched"] < page1["numberMatched"]
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
