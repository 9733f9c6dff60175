"""A small local load on the OGC API (not part of `make test`): requests/s of items pages,
filtered and reprojected, with 4 client threads against the threaded test server.
Run: TEST_DATABASE_URL=... .venv/bin/python -m pytest -q -s bench/test_ogc_load.py -p tests.conftest"""
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

N = 200


def _rate(url):
    def one(_):
        with urllib.request.urlopen(url) as r:
            r.read()
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(one, range(10)))  # warm up
        t = time.perf_counter()
        list(ex.map(one, range(N)))
    return N / (time.perf_counter() - t)


def test_ogc_load(live_server):
    base = live_server + "/ogc/collections/parcels/items?limit=100"
    f = urllib.parse.quote("township = '140404101' AND class = 'contract'")
    for name, url in (("items limit=100 CRS84", base),
                      ("items limit=100 crs=EPSG:4490", base + "&crs=http://www.opengis.net/"
                       "def/crs/EPSG/0/4490"),
                      ("items limit=100 CQL2 filter", base + "&filter=" + f),
                      ("one item", live_server + "/ogc/collections/parcels/items/1")):
        print(f"{name}: {_rate(url):.1f} req/s")
