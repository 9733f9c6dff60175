"""The market's second half in headless Debian Chromium, on an accelerated market clock (one
real second is one market minute) and with the live stream service (SSE fed by LISTEN/NOTIFY):
two bidders bid, a late bid extends the auction, a member of the collective exercises priority
on equal terms, the contract PDF is confirmed by both parties and filed, the management right
appears on the parcel page and the map's 流转 layer, and the transaction certificate verifies
by its QR code (decoded from the rendered PDF, as a phone would).

The listing itself is prepared through the operations (the first half has its own browser
test) and committed: a household of the second village that no other test touches."""
import asyncio
import datetime as dt
import re
import subprocess
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import expect
from sqlalchemy import select, text

from app.extensions import db
from bench.market import free_port
from tests.conftest import PASSWORD

# 30×: a late bid has 5 market minutes = 10 real seconds to land (60× left 5 s, too few for a
# page under load: the bid reached a closed auction)
ACC = 30
TODAY = dt.date(2026, 12, 1)


def _valid_id(birth: dt.date, seq: str) -> str:
    from app.people.idnumber import check_digit

    first = f"140404{birth:%Y%m%d}{seq}"
    return first + check_digit(first)


def _setup(app):
    from app.auth import operations as auth
    from app.auth.models import User
    from app.market import operations as ops
    from app.parcels.models import Parcel
    from app.people.models import Household
    from app.rights import operations as rights
    from tests.market_trading_fixtures import member_of

    with app.app_context():
        code = db.session.execute(text("""
            SELECT h.cbfbm FROM household h
            WHERE h.cbfbm LIKE (SELECT min(village_code) FROM collective
                                WHERE village_code > (SELECT min(village_code) FROM collective))
                               || '%'
              AND (SELECT count(*) FROM parcel p WHERE p.household_code = h.cbfbm
                   AND p.kind = 'contract' AND p.end_lifespan IS NULL) >= 1
            ORDER BY h.id OFFSET 7 LIMIT 1""")).scalar()
        hh = db.session.scalar(select(Household).where(Household.cbfbm == code))
        right = next((r for r in rights.current_rights(code) if r.kind == "land_contract"), None)
        fields = db.session.scalars(select(Parcel).where(
            Parcel.household_code == code, Parcel.kind == "contract",
            Parcel.end_lifespan.is_(None)).order_by(Parcel.code)).all()
        if right is None:
            right = rights.register_land_contract("bureau", code, code + "J",
                                                  [(p, None) for p in fields],
                                                  dt.date(1999, 1, 1), dt.date(2058, 12, 31),
                                                  reason="确权")
        if db.session.scalar(select(User.id).where(User.username == "mkseller")) is None:
            auth.create_user(None, "mkseller", PASSWORD, "farmer", hh.head.name,
                             person_id=hh.head.id, household_code=code, reason="test")
        seller = db.session.scalar(select(User).where(User.username == "mkseller"))
        x = ops.create_listing(seller, right, "lease", [fields[0].code],
                               term_start=dt.date(2027, 3, 1), term_end=dt.date(2036, 12, 31),
                               land_use="1", reserve_price="850.00", payment_schedule="annual",
                               today=TODAY)
        for p in ops.missing_consents(x, TODAY):
            ops.consent(seller, x, p, f"{p.name} 同意".encode(), today=TODAY)
        ops.submit(seller, x, today=TODAY)
        ops.review("exchange", x, True, today=TODAY)
        keys = {}
        for i, name in enumerate(("甲合作社代表", "乙种植户")):
            a, k = ops.register_applicant(None, "person", name, "1", "种粮多年",
                                          id_number=_valid_id(dt.date(1978 + i, 3, 3), f"7{i}1"))
            ap = ops.apply(None, x, a, today=TODAY)
            ops.record_payment("exchange", ap, x.deposit_fen, f"BR-{i}")
            keys[name] = k
        m = member_of(db.session, x, code)
        a, k = ops.register_applicant(None, "person", m.name, "1", "本村农户",
                                      id_number=m.id_number)
        ap = ops.apply(None, x, a, True, today=TODAY)
        ops.record_payment("exchange", ap, x.deposit_fen, "BR-M")
        keys["member"] = k
        ops.close_announcement(None, x, today=x.announcement_ends_on + dt.timedelta(1))
        assert x.status == "competition"
        db.session.commit()
        out = {"listing": x.id, "parcel_code": fields[0].code, "parcel_id": fields[0].id,
               "keys": keys, "member": m.name, "reserve": ops.first_year_fen(x)}
        db.session.remove()
        return out


def _stream(app):
    """The stream service on a free port, in a thread of this process (its own loop)."""
    from app.market import stream

    port = free_port()
    ready = threading.Event()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    t = threading.Thread(target=lambda: asyncio.run(stream.serve("127.0.0.1", port, url,
                                                                 ready=ready.set)), daemon=True)
    t.start()
    assert ready.wait(10)
    return f"http://127.0.0.1:{port}"


def _login(page, live_server, username):
    page.goto(live_server + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")


def _qr_urls(data: bytes) -> list[str]:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "c.pdf").write_bytes(data)
        subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1",
                        str(Path(d) / "c.pdf"), str(Path(d) / "page")], check=True)
        out = subprocess.run(["zbarimg", "--quiet", "--raw", *map(str, Path(d).glob("page*"))],
                             capture_output=True)
    return out.stdout.decode().split()


def _left_seconds(page) -> int:
    t = page.locator("#countdown").inner_text()
    m = re.match(r"(\d+):(\d+):(\d+)", t)
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3)) if m else 0


def test_auction_priority_contract_filing_right_and_certificate(app, browser, live_server):
    s = _setup(app)
    app.config["MARKET_STREAM_URL"] = _stream(app)
    app.config["MARKET_ACCELERATOR"] = ACC
    app.config["PUBLIC_BASE_URL"] = live_server
    try:
        assert_auction_to_certificate(app, browser, live_server, s)
    finally:
        app.config["MARKET_ACCELERATOR"] = None
        app.config["MARKET_STREAM_URL"] = None
        app.config["PUBLIC_BASE_URL"] = None


def assert_auction_to_certificate(app, browser, live_server, s):
    keys = s["keys"]
    # The exchange operator opens the auction: no free period, 8 minutes timed, 5 extension,
    # a priority window of 5 minutes (market time: 10 real seconds here).
    op = browser.new_context(locale="zh-CN").new_page()
    _login(op, live_server, "exchange")
    op.goto(f"{live_server}/market/listings/{s['listing']}")
    op.fill("input[name=step_fen]", "50000")
    op.fill("input[name=free_minutes]", "0")
    op.fill("input[name=timed_minutes]", "8")
    op.fill("input[name=extension_minutes]", "5")
    op.fill("input[name=priority_minutes]", "5")
    op.click("#open-auction-button")
    auction_url = op.url.split("?")[0]
    assert "/market/auctions/" in auction_url

    # Two bidders on their own pages (by their keys).
    a = browser.new_context(locale="zh-CN").new_page()
    b = browser.new_context(locale="zh-CN").new_page()
    a.goto(f"{auction_url}?key={keys['甲合作社代表']}")
    b.goto(f"{auction_url}?key={keys['乙种植户']}")
    expect(a.locator("#bid-amount")).to_have_value(f"{s['reserve'] / 100:.2f}")
    a.click("#bid-button")
    expect(a.locator("#bid-result")).to_contain_text("1")
    expect(a.locator("#rank")).to_have_text("1")
    # B sees it pushed (SSE) — price and history — without reloading.
    expect(b.locator("#history tbody tr")).to_have_count(1, timeout=3000)
    expect(b.locator("#price")).to_contain_text(f"{s['reserve'] // 100:,}")
    ends_before = b.locator("#ends-at").inner_text()
    # A late bid: inside the last 5 (market) minutes, B bids one step up; the end moves.
    b.wait_for_function("() => /^00:0[0-4]:/.test(document.querySelector('#countdown')"
                        ".textContent)", timeout=30000)
    b.click("#bid-button")
    expect(b.locator("#rank")).to_have_text("1")
    expect(b.locator("#ends-at")).not_to_have_text(ends_before)
    expect(a.locator("#rank")).to_have_text("2", timeout=3000)  # pushed to A
    with app.app_context():
        rows = db.session.execute(text("""
            SELECT b.seq, b.market_at, b.ends_before, b.ends_after, a.extension_minutes
            FROM market_bid b JOIN market_auction a ON a.id = b.auction_id
            WHERE a.listing_id = :l ORDER BY b.seq"""), {"l": s["listing"]}).all()
        db.session.remove()
    late = rows[-1]
    assert len(rows) == 2 and late.ends_after == late.market_at + dt.timedelta(minutes=5)
    assert late.ends_after > late.ends_before
    # The end comes; bidding is closed; the operator closes → the priority window opens.
    expect(op.locator("#countdown")).to_have_text(re.compile("已结束|ended"), timeout=40000)
    op.goto(auction_url)
    op.click("#close-button")
    expect(op.locator("#auction-status")).to_contain_text("priority")
    # The member exercises priority at the final price.
    m = browser.new_context(locale="zh-CN").new_page()
    m.goto(f"{auction_url}?key={keys['member']}")
    m.click("#priority-button")
    expect(m.locator(".flash.success")).to_have_count(1)
    # After the window, the operator closes it: the member wins at B's price.
    op.wait_for_timeout(1000)
    with app.app_context():
        until = db.session.scalar(text("SELECT priority_until - market_auction_now(a) FROM "
                                       "market_auction a WHERE listing_id = :l"),
                                  {"l": s["listing"]})
        db.session.remove()
    op.wait_for_timeout(max(0, until.total_seconds() / ACC * 1000) + 300)
    op.goto(auction_url)
    op.click("#close-button")
    expect(op.locator("#auction-status")).to_contain_text("exercised")
    op.click("#award-link")
    expect(op.locator("#award-method")).to_have_text("priority")
    expect(op.locator("#award-winner")).not_to_have_text(s["member"])  # masked
    price = s["reserve"] + 50000
    expect(op.locator("#award-price")).to_contain_text(f"{price // 100:,}")
    op.fill("#pay-form input[name=reference]", "BANK-PRICE-1")
    op.click("#pay-button")
    expect(op.locator("#award-status")).to_have_text("paid")
    op.click("#draw-button")
    contract_url = op.url
    sha = op.locator("#contract-sha").inner_text().strip()
    pdf = op.request.get(live_server + op.locator("#contract-pdf").get_attribute("href")).body()
    import hashlib

    assert pdf.startswith(b"%PDF") and hashlib.sha256(pdf).hexdigest() == sha

    # Both parties confirm: the farmer (logged in) and the member (by key).
    f = browser.new_context(locale="zh-CN").new_page()
    _login(f, live_server, "mkseller")
    f.goto(contract_url)
    f.click("#confirm-transferor-button")
    expect(f.locator("#confirmations li")).to_have_count(1)
    m.goto(f"{contract_url}?key={keys['member']}")
    m.click("#confirm-transferee-button")
    expect(m.locator("#contract-status")).to_contain_text(re.compile("双方|both"))
    # The issuing party files it.
    o = browser.new_context(locale="zh-CN").new_page()
    _login(o, live_server, "officer2")
    o.goto(contract_url)
    o.click("#file-button")
    expect(o.locator("#management-right")).to_have_count(1)
    cert_number = o.locator("#trade-cert-number").inner_text()
    # The management right on the parcel page and on the map's 流转 layer.
    o.goto(f"{live_server}/parcels/{s['parcel_id']}")
    expect(o.locator("#rights tr.right-management")).to_contain_text(s["member"])
    expect(o.locator("#rights tr.right-land_contract")).to_have_count(1)
    o.goto(f"{live_server}/map")
    o.wait_for_function("() => window.sanquanTransfers !== undefined", timeout=15000)
    codes = o.evaluate("() => window.sanquanTransfers.features.map(f => f.properties.code)")
    assert s["parcel_code"] in codes
    # The farmer's page shows the land transferred out.
    f.goto(live_server + "/me")
    expect(f.locator("#my-transfers")).to_contain_text(s["parcel_code"])
    # The transaction certificate verifies by its QR code.
    o.goto(contract_url)
    cert_pdf = o.request.get(live_server + o.locator("#trade-cert-pdf").get_attribute("href"))
    urls = _qr_urls(cert_pdf.body())
    assert len(urls) == 1 and urls[0].startswith(live_server + "/verify/")
    anon = browser.new_context(locale="zh-CN").new_page()
    anon.goto(urls[0])
    expect(anon.locator("#verify-number")).to_have_text(cert_number)
    expect(anon.locator("#verify-status")).to_contain_text("✔")
    for p in (op, a, b, m, f, o, anon):
        p.context.close()
