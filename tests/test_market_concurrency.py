"""The auction under load, against a live gunicorn server: 50 bidders bidding as fast as they
can through HTTP for a minute of accelerated market time (a few real seconds).  Every accepted
bid is recorded exactly once, the sequence is gapless and hash-chained, the final price is the
highest valid bid, the extension rule held for every late bid, and no bid is accepted after
the end."""
import datetime as dt
import json
import socket
import threading
import time

from sqlalchemy import text

from app.extensions import db
from app.market import operations as ops
from bench import market as load
from tests.conftest import user
from tests.market_trading_fixtures import asset_competition

ACC = 30


class _Watcher:
    """An SSE client in a thread: the sequence numbers of the bids it is pushed."""

    def __init__(self, base, auction_id):
        host, port = base.split("//", 1)[1].split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.sendall(f"GET /auctions/{auction_id}/events HTTP/1.1\r\n\r\n".encode())
        self.seqs = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        buf = b""
        try:
            while chunk := self.sock.recv(65536):
                buf += chunk
                *events, buf = buf.split(b"\n\n")
                for ev in events:
                    if ev.startswith(b"event: bid"):
                        self.seqs.append(json.loads(ev.split(b"data: ", 1)[1])["seq"])
        except OSError:
            pass

    def close(self):
        self.sock.close()  # one market minute = two real seconds
BIDDERS = 50


def test_fifty_bidders_against_gunicorn(app):
    # the database this test's app is on (under xdist the worker's copy, not TEST_DATABASE_URL)
    url_db = app.config["SQLALCHEMY_DATABASE_URI"]
    with app.app_context():
        x, bidders = asset_competition(db.session, BIDDERS)
        db.session.commit()
        listing_id, keys = x.id, [k for _, k in bidders]
    proc, url = load.start_gunicorn(url_db)
    sproc, surl = load.start_stream(url_db)
    watchers = []
    try:
        # Opened once the server is up: the market clock runs from now, 30× real time.
        app.config["MARKET_ACCELERATOR"] = ACC
        try:
            with app.app_context():
                from app.market.models import Listing
                a = ops.open_auction(user("exchange"), db.session.get(Listing, listing_id),
                                     step_fen=10_000, free_minutes=0.25, timed_minutes=1.5,
                                     extension_minutes=1)
                auction_id, reserve, step = a.id, a.reserve_fen, a.step_fen
                timed_from = a.timed_from
                db.session.commit()
        finally:
            app.config["MARKET_ACCELERATOR"] = None
        # 20 watchers on the live stream (SSE fed by LISTEN/NOTIFY) during the race.
        watchers = [_Watcher(surl, auction_id) for _ in range(20)]
        # A minute of market time, as fast as they can.
        run = load.run_bidders(url, auction_id, keys, reserve, step, seconds=60 / ACC,
                               retry_every=1)
        # Then wait (real time, short: accelerated) for the end the bids left, and fire again.
        give_up = time.monotonic() + 120
        while True:
            st = load.state(url, auction_id)
            # an answer without the clock (a refusal under load) is asked again, for a while
            assert time.monotonic() < give_up, st  # never an endless wait
            if "now" in st and st["now"] >= st["ends_at"]:
                break
        wave = load.final_wave(url, auction_id, keys, st["current_price_fen"] + step)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
                len(w.seqs) < st["bid_count"] for w in watchers):
            time.sleep(0.05)
    finally:
        for w in watchers:
            w.close()
        load.stop(proc)
        load.stop(sproc)
    assert all(s == 409 and c == "market.bid.ended" for s, c in wave), wave
    first = [t for t in run.attempts if not t.retry]
    ok = [t for t in first if t.status == 201]
    # they really raced: several bids accepted, and some refused for a price another bidder
    # had just moved (how many of each depends on the machine's load, so no fixed count)
    assert len(ok) >= 2, len(ok)
    assert any(t.code == "market.bid.step" for t in first), {t.code for t in first}
    assert all(t.status in (201, 409) for t in first), {t.status for t in first}
    with app.app_context():
        rows = db.session.execute(text("""
            SELECT seq, client_key, amount_fen, hash, market_at, ends_before, ends_after
            FROM market_bid WHERE auction_id = :a ORDER BY seq"""), {"a": auction_id}).all()
        final = db.session.execute(text("SELECT current_price_fen, ends_at, bid_count FROM "
                                        "market_auction WHERE id = :a"),
                                   {"a": auction_id}).one()
        from app.market.models import Auction
        chain = ops.verify_chain(db.session.get(Auction, auction_id))
    # Every accepted bid recorded exactly once, and nothing recorded that was not accepted.
    by_key = {r.client_key: r for r in rows}
    assert len(by_key) == len(rows) == len(ok) == final.bid_count
    assert {t.key for t in ok} == set(by_key)
    for t in ok:
        r = by_key[t.key]
        assert (r.seq, r.amount_fen, r.hash) == (t.seq, t.amount, t.hash)
    # Retries returned the bid already made, never a second one.
    retries = [t for t in run.attempts if t.retry]
    assert retries and all(t.status == 200 and t.seq == by_key[t.key].seq for t in retries)
    # Gapless, chained, strictly rising by whole steps; the final price is the highest bid.
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert chain == []
    assert rows[0].amount_fen >= reserve and (rows[0].amount_fen - reserve) % step == 0
    for p, q in zip(rows, rows[1:], strict=False):
        assert q.amount_fen > p.amount_fen and (q.amount_fen - p.amount_fen) % step == 0
        assert q.ends_before == p.ends_after and q.market_at >= p.market_at
    assert final.current_price_fen == max(r.amount_fen for r in rows) == rows[-1].amount_fen
    # The extension rule, for every bid; none at or after the end it met.
    n = dt.timedelta(minutes=1)
    late = 0
    for r in rows:
        assert r.market_at < r.ends_before
        if r.market_at >= timed_from and r.market_at > r.ends_before - n:
            late += 1
            assert r.ends_after == r.market_at + n
        else:
            assert r.ends_after == r.ends_before
    assert late > 0 and late < len(rows)  # both cases happened
    assert final.ends_at == rows[-1].ends_after
    # Every watcher saw every accepted bid, once, in sequence order.
    for w in watchers:
        assert w.seqs == list(range(1, len(rows) + 1))
    # The refusals were the rules' (a price overtaken by another bid), not errors.
    assert {t.code for t in first if t.status == 409} <= {"market.bid.step", "market.bid.ended",
                                                          "market.bid.first"}
