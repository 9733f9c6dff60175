"""The market under load: a gunicorn server of the app, 50 bidders bidding as fast as they can
through HTTP, and the raw-PostgreSQL baseline of the same row-locked read-check-insert.  Used by
`make bench` (`--only market`) and by tests/test_market_concurrency.py."""
from __future__ import annotations

import http.client as http_client
import json
import os
import random
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(db_url: str, workers: int = 2, threads: int = 16, env: dict | None = None):
    """The app under gunicorn (gthread) on a free port; returns (process, base url)."""
    port = free_port()
    e = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": "bench-secret",
         "FLASK_ENV": "production", **(env or {})}
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
         "--keep-alive", "30", "--log-level", "warning", "wsgi:app"],
        cwd=ROOT, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while True:
        try:
            c = http_client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/api/openapi.json")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() - t0 > 60:
            proc.kill()
            raise RuntimeError("gunicorn did not start: " + proc.stderr.read().decode()[-2000:])
        time.sleep(0.2)
    return proc, url


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@dataclass
class Attempt:
    bidder: int
    key: str
    amount: int
    status: int
    code: str | None
    seq: int | None
    hash: str | None
    sent: float
    latency: float
    retry: bool = False


@dataclass
class Load:
    attempts: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _conn(url):
    host, port = url.split("//", 1)[1].split(":")
    return http_client.HTTPConnection(host, int(port), timeout=30)


def _post(conn, path, body, key):
    conn.request("POST", path, body=json.dumps(body),
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"{}")


def state(url, auction_id, conn=None) -> dict:
    c = conn or _conn(url)
    c.request("GET", f"/api/market/auctions/{auction_id}?since=999999999")
    r = c.getresponse()
    return json.loads(r.read())


def bidder(url, auction_id, no, key, reserve, step, until, load: Load, retry_every=10,
           seed=0):
    """Bid as fast as possible until the real-time `until` or the end: 1 to 20 steps above
    the last price seen; a refusal for the step re-reads the price; every `retry_every`-th
    accepted bid is sent again with the same client key (a retried request)."""
    rnd = random.Random(seed)
    conn = _conn(url)
    known = None
    path = f"/api/market/auctions/{auction_id}/bids"
    accepted = 0
    while time.monotonic() < until:
        amount = reserve if known is None or known < reserve else known + step * rnd.randint(1, 20)
        ck = uuid.uuid4().hex
        t0 = time.perf_counter()
        status, body = _post(conn, path, {"amount_fen": amount, "client_key": ck}, key)
        lat = time.perf_counter() - t0
        code = body.get("code") if status >= 400 else None
        if status == 422 and not str(code).startswith("market."):
            raise RuntimeError(f"{status}: {body}")
        if status >= 400 and code is None:
            raise RuntimeError(f"{status}: {body}")
        a = Attempt(no, ck, amount, status, code, body.get("seq"), body.get("hash"), t0, lat)
        with load.lock:
            load.attempts.append(a)
        if status == 201:
            known = amount
            accepted += 1
            if retry_every and accepted % retry_every == 0:
                s2, b2 = _post(conn, path, {"amount_fen": amount, "client_key": ck}, key)
                with load.lock:
                    load.attempts.append(Attempt(no, ck, amount, s2, b2.get("code"),
                                                 b2.get("seq"), b2.get("hash"), t0, 0, True))
        elif code in ("market.bid.step", "market.bid.first"):
            known = body.get("current_price_fen")
            if not isinstance(known, int):
                known = state(url, auction_id, conn)["current_price_fen"]
        elif code == "market.bid.ended":
            break
        elif status >= 500:
            raise RuntimeError(f"server error {status}: {body}")
    conn.close()


def run_bidders(url, auction_id, keys, reserve, step, seconds, retry_every=10) -> Load:
    load = Load()
    until = time.monotonic() + seconds
    ts = [threading.Thread(target=bidder, args=(url, auction_id, i, k, reserve, step, until,
                                                load, retry_every, i))
          for i, k in enumerate(keys)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return load


def final_wave(url, auction_id, keys, amount) -> list:
    """Every bidder at once, after the end: each must be refused."""
    out = []
    lock = threading.Lock()

    def one(k):
        c = _conn(url)
        s, b = _post(c, f"/api/market/auctions/{auction_id}/bids",
                     {"amount_fen": amount, "client_key": uuid.uuid4().hex}, k)
        with lock:
            out.append((s, b.get("code")))

    ts = [threading.Thread(target=one, args=(k,)) for k in keys]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out
