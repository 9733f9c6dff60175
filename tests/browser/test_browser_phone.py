"""Phones first for bidders and the public: the live bidding page, a listing and a campaign's
public notice at 390 px with touch (and at 1280 px), with axe-core on each; the bid placed by
keyboard alone.  The auction and the notice are prepared through the operations and
committed, on a household and a group of the second village that other tests leave alone."""
import datetime as dt
import uuid

from playwright.sync_api import expect
from sqlalchemy import select, text

from app.extensions import db
from tests.browser.axe import serious

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True, "locale": "zh-CN"}
DESKTOP = {"viewport": {"width": 1280, "height": 800}, "locale": "zh-CN"}
TODAY = dt.date(2026, 12, 1)


def _valid_id(birth: dt.date, seq: str) -> str:
    from app.people.idnumber import check_digit

    first = f"140404{birth:%Y%m%d}{seq}"
    return first + check_digit(first)


def _setup(app) -> dict:
    from app.auth import operations as auth
    from app.auth.models import User
    from app.campaigns import operations as campaigns
    from app.market import operations as ops
    from app.parcels.models import Parcel
    from app.people.models import Household
    from app.rights import operations as rights
    from tests.conftest import PASSWORD

    with app.app_context():
        village2 = db.session.execute(text("""
            SELECT min(village_code) FROM collective
            WHERE village_code > (SELECT min(village_code) FROM collective)""")).scalar()
        code = db.session.execute(text("""
            SELECT h.cbfbm FROM household h WHERE h.cbfbm LIKE :v
              AND (SELECT count(*) FROM parcel p WHERE p.household_code = h.cbfbm
                   AND p.kind = 'contract' AND p.end_lifespan IS NULL) >= 1
            ORDER BY h.id OFFSET 13 LIMIT 1"""), {"v": village2 + "%"}).scalar()
        hh = db.session.scalar(select(Household).where(Household.cbfbm == code))
        fields = db.session.scalars(select(Parcel).where(
            Parcel.household_code == code, Parcel.kind == "contract",
            Parcel.end_lifespan.is_(None)).order_by(Parcel.code)).all()
        right = next((r for r in rights.current_rights(code) if r.kind == "land_contract"), None) \
            or rights.register_land_contract("bureau", code, code + "J", [(p, None) for p in fields],
                                             dt.date(1999, 1, 1), dt.date(2058, 12, 31),
                                             reason="确权")
        if db.session.scalar(select(User.id).where(User.username == "phoneseller")) is None:
            auth.create_user(None, "phoneseller", PASSWORD, "farmer", hh.head.name,
                             person_id=hh.head.id, household_code=code, reason="test")
        seller = db.session.scalar(select(User).where(User.username == "phoneseller"))
        x = ops.create_listing(seller, right, "lease", [fields[0].code], dt.date(2027, 3, 1),
                               dt.date(2036, 12, 31), "1", "900.00", "annual", today=TODAY)
        for p in ops.missing_consents(x, TODAY):
            ops.consent(seller, x, p, f"{p.name} 同意".encode(), today=TODAY)
        ops.submit(seller, x, today=TODAY)
        ops.review("exchange", x, True, today=TODAY)
        keys = []
        for i in range(2):
            a, k = ops.register_applicant(None, "person", f"手机竞买{i}", "1", "种粮",
                                          id_number=_valid_id(dt.date(1981 + i, 5, 5), f"8{i}3"))
            ap = ops.apply(None, x, a, today=TODAY)
            ops.record_payment("exchange", ap, x.deposit_fen, f"PH-{uuid.uuid4().hex[:8]}")
            keys.append(k)
        ops.close_announcement(None, x, today=x.announcement_ends_on + dt.timedelta(1))
        auction = ops.open_auction("exchange", x, step_fen=10_000, free_minutes=600,
                                   timed_minutes=30)
        group = db.session.execute(text(
            "SELECT max(fbfbm) FROM collective WHERE village_code = :v"), {"v": village2}).scalar()
        c = campaigns.open_campaign("bureau", group)
        campaigns.publish_notice("bureau", c, start=dt.date.today())
        db.session.commit()
        out = {"listing": x.id, "auction": auction.id, "keys": keys, "campaign": c.id,
               "reserve": auction.reserve_fen}
        db.session.remove()
        return out


def _fits(page, width):
    return page.evaluate("document.documentElement.scrollWidth") <= width


def test_bidding_listing_and_notice_pages_on_a_phone_and_a_desk(app, browser, live_server):
    s = _setup(app)
    art = live_server.artifacts
    auction = f"{live_server}/market/auctions/{s['auction']}?key={s['keys'][0]}"
    pages = {"bidding": auction, "listing": f"{live_server}/market/listings/{s['listing']}",
             "notice": f"{live_server}/notice/{s['campaign']}", "market": f"{live_server}/market"}
    found = {}
    for size, opts in (("390", PHONE), ("1280", DESKTOP)):
        ctx = browser.new_context(**opts)
        page = ctx.new_page()
        for name, url in pages.items():
            page.goto(url)
            page.wait_for_load_state("networkidle")
            width = int(size)
            assert _fits(page, width), (name, size, page.evaluate(
                "document.documentElement.scrollWidth"))
            v = serious(page)
            if v:
                found[f"{name}@{size}"] = v
            page.screenshot(path=str(art / f"{'phone' if size == '390' else 'desk'}-{name}-"
                                            f"{size}.png"), full_page=True)
        ctx.close()
    assert not found, found

    # A bid by touch on the phone, the next by keyboard alone on the desk.
    ctx = browser.new_context(**PHONE)
    page = ctx.new_page()
    page.goto(auction)
    expect(page.locator("#bid-amount")).to_have_value(f"{s['reserve'] / 100:.2f}")
    page.locator("#bid-button").tap()
    expect(page.locator("#rank")).to_have_text("1")
    ctx.close()
    ctx = browser.new_context(**DESKTOP)
    page = ctx.new_page()
    page.goto(f"{live_server}/market/auctions/{s['auction']}?key={s['keys'][1]}")
    page.locator("#bid-amount").focus()
    step_up = (s["reserve"] + 10_000) / 100
    page.keyboard.press("Control+A")
    page.keyboard.type(f"{step_up:.2f}")
    page.keyboard.press("Enter")
    expect(page.locator("#rank")).to_have_text("1")
    ctx.close()
