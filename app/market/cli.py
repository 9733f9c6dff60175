"""`flask market …`: close the announcements that are due, set a county default, load the
market's demo data (`flask demo load` calls `load_demo` through app/demo/market.py;
idempotent: a registry setting marks it loaded)."""
from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.auth.models import User
from app.collectives.models import Collective
from app.errors import DomainError
from app.extensions import db
from app.parcels.models import Parcel, RegistrySetting
from app.people.idnumber import check_digit
from app.people.models import Household
from app.rights import operations as rights

from . import clock
from . import operations as ops

market_cli = AppGroup("market", help="The transfer-trading market.")


@market_cli.command("close-due")
def close_due():
    """End every announcement whose last working day has passed."""
    done = ops.close_due("market-cli")
    db.session.commit()
    for x in done:
        click.echo(f"listing {x.id}: {x.status}")
    click.echo(f"{len(done)} announcement(s) closed")


@market_cli.command("expire-management")
def expire_management():
    """End the land management rights whose term has run out (they end by themselves)."""
    n = ops.expire_management("market-cli")
    db.session.commit()
    click.echo(f"{n} management right(s) ended at term end")


@market_cli.command("setting")
@click.argument("name", type=click.Choice(sorted(ops.DEFAULTS)))
@click.argument("county")
@click.argument("value")
def set_setting(name: str, county: str, value: str):
    """Set a county's default (e.g. `announcement_days 140404 7`)."""
    try:
        ops.set_setting("market-cli", name, county, value, "flask market setting")
    except DomainError as e:
        raise click.ClickException(e.message("en")) from None
    db.session.commit()
    click.echo(f"market_{name}:{county} = {value}")


@market_cli.command("demo")
def demo():
    """Listings in each state: draft, under review, announced with applicants, ended."""
    click.echo(load_demo())


def _valid_id(birth: dt.date, seq: str) -> str:
    first = f"140404{birth:%Y%m%d}{seq}"
    return first + check_digit(first)


def load_demo() -> str:
    if db.session.get(RegistrySetting, "market_demo") is not None:
        return "market demo already present"
    farmer = db.session.scalar(select(User).where(User.username == "farmer"))
    exchange = db.session.scalar(select(User).where(User.username == "exchange"))
    officer = db.session.scalar(select(User).where(User.username == "officer"))
    if farmer is None or exchange is None or not farmer.household_code:
        return "market demo skipped: demo accounts missing"
    today = clock.today()
    first = db.session.scalar(select(Collective).where(
        Collective.fbfbm == farmer.household_code[:14]))
    households = db.session.scalars(select(Household).where(
        Household.collective_id == first.id).order_by(Household.cbfbm)).all()

    def contract(hh):
        have = [r for r in rights.current_rights(hh.cbfbm) if r.kind == "land_contract"]
        if have:
            return have[0]
        fields = db.session.scalars(select(Parcel).where(
            Parcel.household_code == hh.cbfbm, Parcel.kind == "contract",
            Parcel.end_lifespan.is_(None)).order_by(Parcel.code)).all()
        if len(fields) < 2:
            return None
        return rights.register_land_contract("bureau", hh.cbfbm, hh.cbfbm + "J",
                                             [(p, p.scmj) for p in fields],
                                             dt.date(1999, 1, 1), dt.date(2058, 12, 31),
                                             reason="确权登记（演示）")

    def consents(x, day):
        for p in ops.missing_consents(x, day):
            ops.consent(exchange, x, p, f"{p.name} 同意流转签字书（演示）".encode(), today=day)

    def by_mandate(hh, right, codes, day, **kw):
        m = ops.upload_mandate(exchange, hh.cbfbm, "exchange", "长治市农村产权交易中心",
                               "委托挂牌出租土地经营权", day, day + dt.timedelta(days=365),
                               "委托书.txt", f"{hh.name} 委托书（演示）".encode())
        fields = {"term_start": day + dt.timedelta(days=90),
                  "term_end": dt.date(day.year + 10, 12, 31), "land_use": "1",
                  "reserve_price": "820.00", "payment_schedule": "每年12月31日前付清下一年租金",
                  "today": day}
        fields.update(kw)
        x = ops.create_listing(exchange, right, "lease", codes, mandate=m, **fields)
        consents(x, day)
        return x

    made = []
    own = next(h for h in households if h.cbfbm == farmer.household_code)
    r0 = contract(own)
    codes0 = [rp.parcel_code for rp in r0.parcels]
    # Draft, by the farmer.
    d = ops.create_listing(farmer, r0, "lease", codes0[:1], today + dt.timedelta(days=60),
                           dt.date(today.year + 8, 12, 31), "1", "780.50", "每年一付",
                           today=today)
    made.append(d)
    # Under review.
    others = [h for h in households if h.cbfbm != own.cbfbm]
    pool = [(h, contract(h)) for h in others[:8]]
    pool = [(h, r) for h, r in pool if r is not None]
    h1, r1 = pool[0]
    rv = by_mandate(h1, r1, [rp.parcel_code for rp in r1.parcels][:2], today)
    ops.submit(exchange, rv, today=today)
    made.append(rv)
    # Announced, with applicants and deposits.
    h2, r2 = pool[1]
    an = by_mandate(h2, r2, [rp.parcel_code for rp in r2.parcels], today, method="tender")
    ops.submit(exchange, an, today=today)
    ops.review(exchange, an, True, "材料齐全，同意挂牌", today=today)
    a1, _ = ops.register_applicant(exchange, "person", "郭建国", "13903551234", "种植玉米十五年",
                                   id_number=_valid_id(dt.date(1978, 4, 12), "031"))
    a2, _ = ops.register_applicant(exchange, "cooperative", "上党区丰收农机专业合作社",
                                   "03552101234", "农机 12 台，社员 40 户",
                                   credit_code=_make_credit())
    p1 = ops.apply(exchange, an, a1, today=today)
    p2 = ops.apply(exchange, an, a2, today=today)
    ops.record_payment(exchange, p1, an.deposit_fen, "ICBC-20260001")
    ops.record_payment(exchange, p2, an.deposit_fen // 2, "ABC-20260002")
    made.append(an)
    # Ended: two applicants (competition), none (negotiation), announced weeks ago.
    past = today - dt.timedelta(days=45)
    h3, r3 = pool[2]
    co = by_mandate(h3, r3, [rp.parcel_code for rp in r3.parcels], past)
    ops.submit(exchange, co, today=past)
    ops.review(exchange, co, True, today=past)
    for i, (name, birth) in enumerate((("韩志强", dt.date(1982, 7, 1)),
                                       ("牛丽娟", dt.date(1975, 2, 3)))):
        ap, _ = ops.register_applicant(exchange, "person", name, "1390355000" + str(i),
                                       "家庭农场经营", id_number=_valid_id(birth, f"04{i}"))
        app_ = ops.apply(exchange, co, ap, today=past)
        ops.record_payment(exchange, app_, co.deposit_fen, f"CCB-2026{i:04d}")
    ops.close_announcement(exchange, co, today=today)
    made.append(co)
    if len(pool) > 3:
        h4, r4 = pool[3]
        ng = by_mandate(h4, r4, [rp.parcel_code for rp in r4.parcels], past, reannounce_max=0)
        ops.submit(exchange, ng, today=past)
        ops.review(exchange, ng, True, today=past)
        ops.close_announcement(exchange, ng, today=today)
        made.append(ng)
    if officer is not None:
        asset = ops.create_collective_listing(
            officer, first.fbfbm, "asset", "村民代表会议决议〔2026〕3号", today + dt.timedelta(days=60),
            dt.date(today.year + 5, 12, 31), "1", "30000.00", "每年一付",
            asset_description="集体粮食烘干房一座（800 m²）及设备", asset_valuation="450000.00",
            title=f"{first.name} 集体粮食烘干房出租")
        ops.submit(officer, asset, today=today)
        ops.review(exchange, asset, True, today=today)
        made.append(asset)
    db.session.add(RegistrySetting(key="market_demo", value="loaded",
                                   note="the market's demo listings were loaded"))
    db.session.commit()
    return "market demo: " + ", ".join(f"{x.id} {x.status}" for x in made)


def _make_credit() -> str:
    """A well-formed unified social credit code for the demo (check character computed)."""
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "93140404MA0K1234X"
    s = sum(chars.index(ch) * pow(3, i, 31) for i, ch in enumerate(body))
    return body + chars[(31 - s % 31) % 31]
