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
                 headers={"Content-Type": "application/json", "Authorization": f"Applicant {key}"})
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


# ---------------------------------------------------------------------------- setup


def prepare(session, n: int, tag: str, today=None):
    """A collective operating asset in competition by auction with `n` qualified individual
    applicants (committed by the caller); returns (listing, [(application, key)])."""
    import datetime as dt

    from sqlalchemy import select

    from app.auth.models import User
    from app.collectives.models import Collective
    from app.market import operations as ops
    from app.people.idnumber import check_digit

    today = today or dt.date(2026, 12, 1)
    officer = session.scalar(select(User).where(User.role == "collective_officer")
                             .order_by(User.id))
    exchange = session.scalar(select(User).where(User.role == "exchange_operator")
                              .order_by(User.id))
    coll = session.scalar(select(Collective).where(
        Collective.village_code == officer.jurisdiction_code).order_by(Collective.fbfbm))
    x = ops.create_collective_listing(officer, coll.fbfbm, "asset", f"成员大会决议 {tag}",
                                      dt.date(2027, 3, 1), dt.date(2031, 12, 31), "1",
                                      "20000.00", "annual", asset_description=f"烘干房 {tag}",
                                      asset_valuation="300000")
    ops.submit(officer, x, today=today)
    ops.review(exchange, x, True, today=today)
    out = []
    salt = sum(map(ord, tag)) % 300
    for i in range(n):
        birth = dt.date(1960 + i % 40, 1 + i % 12, 1 + (i + salt) % 28)
        first = f"140404{birth:%Y%m%d}{600 + (salt + i) % 300:03d}"
        a, k = ops.register_applicant(None, "person", f"竞买人{tag}{i}", "1", "种粮",
                                      id_number=first + check_digit(first))
        ap = ops.apply(None, x, a, today=today)
        ops.record_payment(exchange, ap, x.deposit_fen, f"BANK-{tag}-{i}")
        out.append((ap, k))
    ops.close_announcement(None, x, today=x.announcement_ends_on + dt.timedelta(1))
    assert x.status == "competition" and x.method == "auction"
    return x, out


# ---------------------------------------------------------------------------- raw baseline

RAW_SETUP = """
DROP TABLE IF EXISTS raw_bid; DROP TABLE IF EXISTS raw_auction;
CREATE TABLE raw_auction (id int PRIMARY KEY, price bigint, n int NOT NULL DEFAULT 0,
                          ends_at timestamptz NOT NULL, step bigint NOT NULL,
                          reserve bigint NOT NULL);
CREATE TABLE raw_bid (id bigserial PRIMARY KEY, auction_id int NOT NULL, seq int NOT NULL,
                      bidder int NOT NULL, amount bigint NOT NULL, key text NOT NULL,
                      at timestamptz NOT NULL, UNIQUE (auction_id, seq),
                      UNIQUE (auction_id, key));
INSERT INTO raw_auction VALUES (1, NULL, 0, now() + interval '1 day', 10000, 2000000);
"""


def raw_bidders(db_url: str, n: int, seconds: float, reserve=2_000_000, step=10_000):
    """Raw PostgreSQL, the same row-locked read-check-insert: lock the auction row, read the
    price and end, check the step, insert the bid with clock_timestamp(), update the auction."""
    import psycopg

    url = db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(RAW_SETUP)
    lat, ok = [], [0]
    lock = threading.Lock()
    until = time.monotonic() + seconds

    def one(no):
        rnd = random.Random(no)
        known = None
        with psycopg.connect(url) as c:
            while time.monotonic() < until:
                amount = reserve if known is None else known + step * rnd.randint(1, 20)
                t0 = time.perf_counter()
                with c.transaction():
                    price, ends = c.execute("SELECT price, ends_at FROM raw_auction WHERE id = 1 "
                                            "FOR UPDATE").fetchone()
                    t = c.execute("SELECT clock_timestamp()").fetchone()[0]
                    good = t < ends and ((price is None and amount >= reserve)
                                         or (price is not None and amount > price
                                             and (amount - price) % step == 0))
                    if good:
                        c.execute("INSERT INTO raw_bid (auction_id, seq, bidder, amount, key, at) "
                                  "SELECT 1, n + 1, %s, %s, %s, clock_timestamp() FROM "
                                  "raw_auction WHERE id = 1", (no, amount, uuid.uuid4().hex))
                        c.execute("UPDATE raw_auction SET price = %s, n = n + 1 WHERE id = 1",
                                  (amount,))
                    known = amount if good else price
                d = time.perf_counter() - t0
                with lock:
                    lat.append(d)
                    ok[0] += good

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat, ok[0]


# ---------------------------------------------------------------------------- watchers


async def _watch(host, port, auction_id, arrivals, ready, stop):
    import asyncio

    r, w = await asyncio.open_connection(host, port)
    w.write(f"GET /auctions/{auction_id}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await w.drain()
    await r.readuntil(b"\r\n\r\n")
    ready()
    buf = b""
    try:
        while not stop.is_set():
            chunk = await r.read(65536)
            if not chunk:
                break
            now = time.perf_counter()
            buf += chunk
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                for line in ev.split(b"\n"):
                    if line.startswith(b"data: "):
                        arrivals.append((json.loads(line[6:])["seq"], now))
    finally:
        w.close()


def watchers_latency(app_url, stream_url, auction_id, key, reserve, step, watchers=200,
                     bids=40, gap=0.05):
    """`watchers` SSE clients on the stream service; `bids` bids one after another through
    HTTP; each bid's latency is from its request being sent to its arrival at each watcher."""
    import asyncio

    host, port = stream_url.split("//", 1)[1].split(":")
    arrivals: list = []
    sent: dict[int, float] = {}
    n_ready = [0]

    async def main():
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_watch(host, int(port), auction_id, arrivals,
                                            lambda: n_ready.__setitem__(0, n_ready[0] + 1),
                                            stop)) for _ in range(watchers)]
        while n_ready[0] < watchers:
            await asyncio.sleep(0.05)

        def bidder():
            c = _conn(app_url)
            price = reserve - step
            for _ in range(bids):
                price += step
                t0 = time.perf_counter()
                status, body = _post(c, f"/api/market/auctions/{auction_id}/bids",
                                     {"amount_fen": price, "client_key": uuid.uuid4().hex}, key)
                assert status == 201, body
                sent[body["seq"]] = t0
                time.sleep(gap)

        await asyncio.to_thread(bidder)
        t_end = time.perf_counter() + 3
        while len(arrivals) < watchers * bids and time.perf_counter() < t_end:
            await asyncio.sleep(0.05)
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    lat = [at - sent[seq] for seq, at in arrivals if seq in sent]
    return lat, len(arrivals), watchers * bids


def start_stream(db_url: str):
    port = free_port()
    e = {**os.environ, "DATABASE_URL": db_url}
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "python"), "-m", "app.market.stream",
                             "--port", str(port)], cwd=ROOT, env=e,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------------- the bench


def bench(db_url: str, line, pct, bidders: int = 50, seconds: float = 10.0,
          watchers: int = 200) -> list:
    """The market's figures beside raw PostgreSQL (the caller has migrated the database)."""
    from app import create_app
    from app.demo import operations as demo
    from app.extensions import db
    from app.market import operations as ops
    from app.market.models import Listing

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url})
    with app.app_context():
        from sqlalchemy import text

        if not db.session.scalar(text("SELECT count(*) FROM app_user WHERE role = "
                                      "'collective_officer'")):
            demo.generate(300, seed=11)
            demo.create_demo_users()
        tag = uuid.uuid4().hex[:6]
        x, pairs = prepare(db.session, bidders, tag)
        y, solo = prepare(db.session, 2, tag + "w")
        db.session.commit()
        lid, yid, keys, wkey = x.id, y.id, [k for _, k in pairs], solo[0][1]
    proc, url = start_gunicorn(db_url)
    sproc, surl = start_stream(db_url)
    results = []
    try:
        with app.app_context():
            a = ops.open_auction("bench", db.session.get(Listing, lid), step_fen=10_000,
                                 free_minutes=120, timed_minutes=60)
            w = ops.open_auction("bench", db.session.get(Listing, yid), step_fen=10_000,
                                 free_minutes=120, timed_minutes=60)
            aid, reserve, wid = a.id, a.reserve_fen, w.id
            db.session.commit()
        print(f"\n[market] {bidders} bidders for {seconds:.0f} s through HTTP (gunicorn 2×16 "
              f"gthread), then raw PostgreSQL the same", flush=True)
        run = load_run = run_bidders(url, aid, keys, reserve, 10_000, seconds, retry_every=0)
        del load_run
        http_lat = [t.latency for t in run.attempts]
        accepted = sum(t.status == 201 for t in run.attempts)
        raw_lat, raw_ok = raw_bidders(db_url, bidders, seconds, reserve, 10_000)
        results.append(line("market: accepted bids/s (50 bidders)", accepted / seconds,
                            raw_ok / seconds, "/s"))
        results.append(line("market: bid attempts/s (50 bidders)", len(http_lat) / seconds,
                            len(raw_lat) / seconds, "/s"))
        results.append(line("market: bid latency p50", pct(http_lat, 50) * 1000,
                            pct(raw_lat, 50) * 1000, "ms"))
        results.append(line("market: bid latency p99", pct(http_lat, 99) * 1000,
                            pct(raw_lat, 99) * 1000, "ms"))
        lat, got, want = watchers_latency(url, surl, wid, wkey, reserve, 10_000, watchers)
        print(f"  bid → {watchers} watchers (SSE): {got}/{want} deliveries, p50 "
              f"{pct(lat, 50) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms, max "
              f"{max(lat) * 1000:.1f} ms (target p99 ≤ 1000 ms)", flush=True)
        results.append({"name": f"market: bid → {watchers} watchers p99", "ours":
                        pct(lat, 99) * 1000, "raw": None, "unit": "ms",
                        "delivered": got, "expected": want})
    finally:
        stop(proc)
        stop(sproc)
    return results
