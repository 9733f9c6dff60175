"""The live-bidding stream service: a bid committed in PostgreSQL reaches an SSE watcher within
a second through LISTEN/NOTIFY, and through Redis pub/sub when REDIS_URL is set (a real
redis-server on a private socket)."""
import asyncio
import json
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from app.extensions import db
from app.market import operations as ops
from app.market import stream
from bench import market as load


def _serve(url, redis_url=None):
    port = load.free_port()
    ready = threading.Event()
    threading.Thread(target=lambda: asyncio.run(stream.serve(
        "127.0.0.1", port, url, redis_url, ready=ready.set)), daemon=True).start()
    assert ready.wait(10)
    return port


def _watch(port, auction_id):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"GET /auctions/{auction_id}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = b""
    while b": connected" not in head:
        head += s.recv(4096)
    assert b"text/event-stream" in head
    return s


def _next_event(s, timeout=2.0):
    s.settimeout(timeout)
    buf = b""
    while True:
        buf += s.recv(4096)
        for ev in buf.split(b"\n\n"):
            if ev.startswith(b"event: bid"):
                return json.loads(ev.split(b"data: ", 1)[1])


@pytest.fixture()
def auction(app):
    with app.app_context():
        x, pairs = load.prepare(db.session, 2, "流" + uuid.uuid4().hex[:4])
        a = ops.open_auction("test", x, step_fen=10_000, free_minutes=60, timed_minutes=60)
        db.session.commit()
        out = (a.id, a.reserve_fen, [(ap.id, k) for ap, k in pairs])
        db.session.remove()
    return out


def test_a_committed_bid_reaches_the_watcher_through_listen_notify(app, auction):
    auction_id, reserve, pairs = auction
    port = _serve(app.config["SQLALCHEMY_DATABASE_URI"])
    s = _watch(port, auction_id)
    other = _watch(port, auction_id + 10_000)  # another auction's watcher gets nothing
    with app.app_context():
        t0 = time.perf_counter()
        row, _ = ops.place_bid(auction_id, pairs[0][0], reserve, uuid.uuid4().hex)
        db.session.commit()
        db.session.remove()
    ev = _next_event(s)
    assert time.perf_counter() - t0 < 1.0
    assert (ev["auction"], ev["seq"], ev["amount_fen"]) == (auction_id, row["seq"], reserve)
    with pytest.raises(socket.timeout):
        _next_event(other, timeout=0.5)
    # A bid that is refused (or rolled back) is never announced.
    with app.app_context():
        with pytest.raises(ops.DomainError):
            ops.place_bid(auction_id, pairs[1][0], reserve, uuid.uuid4().hex)
        db.session.rollback()
        db.session.remove()
    with pytest.raises(socket.timeout):
        _next_event(s, timeout=0.5)
    s.close()
    other.close()


def test_with_redis_the_bid_endpoint_publishes_and_the_stream_relays(app, auction):
    auction_id, reserve, pairs = auction
    with tempfile.TemporaryDirectory() as d:
        sock = str(Path(d) / "redis.sock")
        r = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock,
                              "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if Path(sock).exists():
                    break
                time.sleep(0.05)
            url = "unix://" + sock
            port = _serve(app.config["SQLALCHEMY_DATABASE_URI"], url)
            s = _watch(port, auction_id)
            app.config["REDIS_URL"] = url
            try:
                c = app.test_client()
                res = c.post(f"/api/market/auctions/{auction_id}/bids",
                             json={"amount_fen": reserve, "client_key": uuid.uuid4().hex},
                             headers={"Authorization": f"Applicant {pairs[1][1]}"})
                assert res.status_code == 201, res.get_json()
            finally:
                app.config["REDIS_URL"] = None
            ev = _next_event(s)
            assert (ev["auction"], ev["seq"], ev["amount_fen"]) == (auction_id, 1, reserve)
            s.close()
        finally:
            r.terminate()
            r.wait(5)
