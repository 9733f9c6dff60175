"""Demo: the market beyond its own demo listings (app/market/cli.py: draft, review, announced,
competition, negotiation) — a listing returned, one withdrawn, an auction running on the
accelerated clock, and a finished one with its contract filed and the management right."""
from __future__ import annotations

import datetime as dt
import time
import uuid

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.market import operations as ops
from app.market.cli import _valid_id, load_demo
from app.market.models import Listing
from app.rights import operations as rights

from .common import done, fields_of, groups, households, mark, today, user, villages

RUNNING_ACCELERATOR = 10  # market minutes per real minute for the running auction
RUNNING_MINUTES = 60 * 24 * RUNNING_ACCELERATOR  # free bidding: a real day
FINISHED_ACCELERATOR = 6000  # the finished one runs its 30 market minutes in 0.3 s


def _applicants(x: Listing, day: dt.date, tag: str, names=("韩志刚", "牛秀英")) -> list:
    out = []
    for i, name in enumerate(names):
        a, _ = ops.register_applicant(user("exchange"), "person", name, f"1390355{tag}{i:02d}",
                                      "家庭农场经营", id_number=_valid_id(dt.date(1970 + i, 3, 9),
                                                                        f"{tag}{i}"))
        ap = ops.apply(user("exchange"), x, a, today=day)
        ops.record_payment(user("exchange"), ap, x.deposit_fen, f"BOC-{tag}{i:03d}")
        out.append(ap)
    return out


def _with_accelerator(acc, fn, *args, **kw):
    old = current_app.config.get("MARKET_ACCELERATOR")
    current_app.config["MARKET_ACCELERATOR"] = acc
    try:
        return fn(*args, **kw)
    finally:
        current_app.config["MARKET_ACCELERATOR"] = old


def finished_auction() -> dict:
    """The farmer's second field leased by auction: contract confirmed by both, filed by the
    collective officer; the transferee's management right sits beside the farmer's right."""
    farmer, exchange = user("farmer"), user("exchange")
    right = next(r for r in rights.current_rights(farmer.household_code)
                 if r.kind == "land_contract")
    codes = [rp.parcel_code for rp in right.parcels]
    if len(codes) < 2:
        return {"finished": "the farmer's household has one field only"}
    day, past = today(), today() - dt.timedelta(days=60)
    x = ops.create_listing(farmer, right, "lease", codes[-1:], past + dt.timedelta(days=75),
                           dt.date(past.year + 10, 12, 31), "1", "800.00", "每年12月31日前付清",
                           today=past)
    for p in ops.missing_consents(x, past):
        ops.consent(exchange, x, p, f"{p.name} 同意流转签字书（演示）".encode(), today=past)
    ops.submit(farmer, x, today=past)
    ops.review(exchange, x, True, "材料齐全，同意挂牌", today=past)
    a1, a2 = _applicants(x, past, "07")
    ops.close_announcement(exchange, x, today=past + dt.timedelta(days=30))
    a = _with_accelerator(FINISHED_ACCELERATOR, ops.open_auction, exchange, x, step_fen=10_000,
                          free_minutes=0, timed_minutes=30)
    ops.place_bid(a.id, a1.id, a.reserve_fen, uuid.uuid4().hex)
    ops.place_bid(a.id, a2.id, a.reserve_fen + 10_000, uuid.uuid4().hex)
    ops.place_bid(a.id, a1.id, a.reserve_fen + 20_000, uuid.uuid4().hex)
    for _ in range(400):  # at most a few real seconds: the accelerated clock runs out
        db.session.refresh(a)
        if ops.auction_now(a) >= a.ends_at:
            break
        time.sleep(0.01)
    aw = ops.close_auction(exchange, a, today=day)
    ops.pay_price(exchange, aw, aw.price_fen - x.deposit_fen, "BOC-PRICE-0001", today=day)
    c = ops.draw_contract(exchange, aw, today=day)
    ops.confirm_contract(farmer, c, "transferor", c.pdf_sha256)
    winner = next(p for p in (a1, a2) if p.id == aw.application_id)
    ops.confirm_contract(None, c, "transferee", c.pdf_sha256, applicant=winner.applicant)
    ops.file_contract(user("officer"), c, today=day)
    return {"finished_listing": x.id, "contract": c.number,
            "management_right": c.management_right_uid}


def running_auction() -> dict:
    """The market demo's listing in competition goes to auction: running now, on a clock
    RUNNING_ACCELERATOR times faster than real time, with a first bid."""
    x = db.session.scalar(select(Listing).where(Listing.status == "competition",
                                                Listing.method == "auction")
                          .order_by(Listing.id))
    if x is None or ops.auction_of(x) is not None:
        return {}
    a = _with_accelerator(RUNNING_ACCELERATOR, ops.open_auction, user("exchange"), x,
                          step_fen=5_000, free_minutes=RUNNING_MINUTES, timed_minutes=30)
    first = next(b for b in a.bidders)
    ops.place_bid(a.id, first.application_id, a.reserve_fen, uuid.uuid4().hex)
    return {"running_auction": a.id}


def returned_and_withdrawn() -> dict:
    """Two more households' listings by mandate: one returned by review, one withdrawn."""
    exchange, day = user("exchange"), today()

    made = {}
    pool = households(groups(villages()[0])[0])[10:]
    for hh in pool:
        if len(made) == 2:
            break
        right = next((r for r in rights.current_rights(hh.cbfbm) if r.kind == "land_contract"),
                     None)
        if right is None or not fields_of(hh.cbfbm):
            continue
        m = ops.upload_mandate(exchange, hh.cbfbm, "exchange", "长治市农村产权交易中心",
                               "委托挂牌出租土地经营权", day, day + dt.timedelta(days=365),
                               "委托书.txt", f"{hh.name} 委托书（演示）".encode())
        x = ops.create_listing(exchange, right, "lease", [rp.parcel_code for rp in right.parcels],
                               day + dt.timedelta(days=90), dt.date(day.year + 6, 12, 31), "1",
                               "760.00", "每年一付", mandate=m, today=day)
        for p in ops.missing_consents(x, day):
            ops.consent(exchange, x, p, f"{p.name} 同意流转签字书（演示）".encode(), today=day)
        if "returned" not in made:
            ops.submit(exchange, x, today=day)
            ops.review(exchange, x, False, "请补充发包方备案的承包合同复印件", today=day)
            made["returned"] = x.id
        else:
            ops.withdraw(exchange, x)
            made["withdrawn"] = x.id
    return made


def load() -> dict:
    if done("market"):
        return {}
    made = {"core": load_demo()}
    made.update(finished_auction())
    made.update(running_auction())
    made.update(returned_and_withdrawn())
    mark("market", {k: v for k, v in made.items()})
    db.session.commit()
    return made
