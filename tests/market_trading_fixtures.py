"""Shared setup for the trading tests: a listing in competition by auction with three
qualified applicants — two outsiders and a member of the collective registered as priority
holder — each with the deposit lodged."""
import datetime as dt
import time

from sqlalchemy import select

from app.collectives.models import Collective, Membership
from app.market import operations as ops
from app.people.models import Household, HouseholdMember, Person
from tests.conftest import user
from tests.test_market import TODAY, _consent_all, _farmer_household, _list, _valid_id


def member_of(dbs, listing, not_household):
    return dbs.execute(select(Person).join(Membership, Membership.person_id == Person.id)
                       .join(Collective, Collective.id == Membership.collective_id)
                       .join(HouseholdMember, HouseholdMember.person_id == Person.id)
                       .join(Household, Household.id == HouseholdMember.household_id)
                       .where(Collective.fbfbm == listing.fbfbm, Membership.status == "active",
                              Household.cbfbm != not_household,
                              Person.birth_date.between(dt.date(1960, 1, 1),
                                                        dt.date(2000, 1, 1)))
                       .order_by(Person.id)).scalars().first()


def competition(dbs, n_outsiders=2, priority_member=True, parcels=1, **listing):
    """(listing, [applications], {application_id: applicant key})."""
    hh, fields, right = _farmer_household(dbs)
    x = _list(right, fields[:parcels], **listing)
    _consent_all(x)
    ops.submit(user("farmer"), x, today=TODAY)
    ops.review(user("exchange"), x, True, today=TODAY)
    apps, keys = [], {}
    for i in range(n_outsiders):
        a, k = ops.register_applicant(None, "person", f"竞买{i}", "1", "种粮",
                                      id_number=_valid_id(dt.date(1975, 1, 1 + i % 28),
                                                          f"{500 + i:03d}"))
        ap = ops.apply(None, x, a, today=TODAY)
        apps.append(ap)
        keys[ap.id] = k
    if priority_member:
        m = member_of(dbs, x, hh.cbfbm)
        a, k = ops.register_applicant(None, "person", m.name, "1", "本村农户",
                                      id_number=m.id_number)
        ap = ops.apply(None, x, a, True, today=TODAY)
        apps.append(ap)
        keys[ap.id] = k
    for ap in apps:
        ops.record_payment(user("exchange"), ap, x.deposit_fen, f"BANK-{ap.id}")
    ops.close_announcement(None, x, today=x.announcement_ends_on + dt.timedelta(1))
    assert x.status == ("competition" if len(apps) >= 2 else "agreement" if apps
                        else x.status)
    return x, apps, keys


def wait_market(auction, until, step=0.005, limit=20.0):
    """Wait (real time, short) until the auction's accelerated clock reaches `until`."""
    t0 = time.monotonic()
    while ops.auction_now(auction) < until:
        assert time.monotonic() - t0 < limit, "the market clock did not advance"
        time.sleep(step)


def wait_end(dbs, auction):
    """Wait until the auction's current end (re-read: a late bid may have moved it)."""
    dbs.refresh(auction)
    wait_market(auction, auction.ends_at)


def asset_competition(session, n: int, tag: str = "并发"):
    """A collective operating asset (no parcels, so it never meets another test's listing) in
    competition with `n` qualified individual applicants; returns (listing, [(application,
    key)])."""
    from app.collectives.models import Collective
    from tests.test_market import START

    officer = user("officer")
    coll = session.scalar(select(Collective).where(
        Collective.village_code == officer.jurisdiction_code).order_by(Collective.fbfbm))
    x = ops.create_collective_listing(officer, coll.fbfbm, "asset", f"成员大会决议 {tag}", START,
                                      dt.date(2031, 12, 31), "1", "20000.00", "annual",
                                      asset_description=f"烘干房 {tag}", asset_valuation="300000")
    ops.submit(officer, x, today=TODAY)
    ops.review(user("exchange"), x, True, today=TODAY)
    out = []
    salt = abs(hash(tag)) % 400
    for i in range(n):
        birth = dt.date(1960 + i % 40, 1 + i % 12, 1 + (i + salt) % 28)
        a, k = ops.register_applicant(None, "person", f"竞买人{tag}{i}", "1", "种粮",
                                      id_number=_valid_id(birth, f"{600 + salt % 300 + i:03d}"))
        ap = ops.apply(None, x, a, today=TODAY)
        ops.record_payment(user("exchange"), ap, x.deposit_fen, f"BANK-{tag}-{i}")
        out.append((ap, k))
    ops.close_announcement(None, x, today=x.announcement_ends_on + dt.timedelta(1))
    assert x.status == "competition" and x.method == "auction"
    return x, out
