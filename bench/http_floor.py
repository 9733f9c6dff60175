"""The HTTP floor of the tile benchmark: a WSGI app that answers each tile path with bytes the
bare statement made before the timing (BENCH_FLOOR_TILES: a pickle of {path: bytes}), under
the same gunicorn as the app.  What serving a tile over HTTP costs when the app does no work at
all — beside the app and the bare statement, it shows how much of the app's time beyond the
statement is the HTTP exchange itself.  Not a baseline: the target stays the bare statement."""
import os
import pickle

with open(os.environ["BENCH_FLOOR_TILES"], "rb") as f:
    TILES = pickle.load(f)
HEADERS = [("Content-Type", "application/vnd.mapbox-vector-tile")]


def app(environ, start_response):
    body = TILES.get(environ.get("PATH_INFO", ""))
    if body is None:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", HEADERS + [("Content-Length", str(len(body)))])
    return [body]
