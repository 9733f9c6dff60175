"""Tender with sealed bids (only a commitment until the opening — nobody, the operator
included, can read a price before: the test looks everywhere), scoring by published weights;
agreement with a single applicant; open negotiation after failed re-announcements."""
import datetime as dt
import secrets

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.market import operations as ops
from tests.conftest import user
from tests.market_trading_fixtures import competition
from tests.test_market import TODAY, assert_refused

ACC = 6000


@pytest.fixture()
def fast(app):
    app.config["MARKET_ACCELERATOR"] = ACC
    yield
    app.config["MARKET_ACCELERATOR"] = None


def _wait(t, attr):
    import time
    t0 = time.monotonic()
    while ops.tender_now(t) < getattr(t, attr):
        assert time.monotonic() - t0 < 20
        time.sleep(0.005)


def _everything_readable(dbs) -> str:
    """Every row of every table in the public schema and the audit log, as text."""
    tables = dbs.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                              "AND tablename NOT IN ('spatial_ref_sys','parcel','division')"))
    return "\n".join(str(dbs.execute(text(f'SELECT * FROM "{t}"')).all()) for t in tables)


def test_sealed_prices_are_unreadable_before_the_opening_then_scored_by_weights(dbs, fast):
    x, apps, keys = competition(dbs, n_outsiders=4, priority_member=False, method="tender")
    p1, p2, p3, late = apps
    apps = [p1, p2, p3]
    t = ops.open_tender(user("exchange"), x, lodging_minutes=200, reveal_minutes=60,
                        weight_price=60, weight_plan=40, opening_after_minutes=100)
    r = t.reserve_fen
    # Odd prices nobody would find by chance in the database.
    bids = {p1.id: (r + 987_653, secrets.token_hex(16), "小麦玉米轮作，秸秆还田"),
            p2.id: (r + 612_347, secrets.token_hex(16), "高标准农田 + 节水灌溉 + 有机肥替代"),
            p3.id: (r - 1_379, secrets.token_hex(16), f"种植 {secrets.token_hex(6)}")}  # invalid: < reserve
    for ap in apps:
        price, nonce, plan = bids[ap.id]
        ops.lodge(f"applicant:{ap.applicant_id}", t, ap, ops.commitment(price, nonce, plan))
    # The operator tries to read the prices: every table, the audit log, as superuser.
    blob = _everything_readable(dbs)
    for price, nonce, plan in bids.values():
        assert str(price) not in blob and nonce not in blob and plan not in blob
    assert_refused("market.tender.once", ops.lodge, None, t, apps[0], "0" * 64)
    # Lodging a price in clear is refused by the database itself.
    with pytest.raises(DBAPIError, match="market.tender.sealed"), dbs.begin_nested():
        dbs.execute(text("INSERT INTO market_tender_bid (tender_id, application_id, commitment, "
                         "price_fen) VALUES (:t, :a, :c, 1)"),
                    {"t": t.id, "a": p1.id, "c": "a" * 64})
    # Nor can anyone reveal before the opening, not even with the right nonce.
    price, nonce, plan = bids[p1.id]
    assert_refused("market.tender.not_open", ops.reveal, None, t, p1, price, nonce, plan)
    _wait(t, "lodging_ends_at")
    assert_refused("market.tender.lodging_closed", ops.lodge, None, t, late, "b" * 64)
    assert_refused("market.tender.not_open", ops.reveal, None, t, p1, price, nonce, plan)
    _wait(t, "opens_at")
    assert_refused("market.tender.mismatch", ops.reveal, None, t, p1, price + 1, nonce, plan)
    assert_refused("market.tender.mismatch", ops.reveal, None, t, p1, price, nonce, plan + "。")
    for ap in apps:
        ops.reveal(None, t, ap, *bids[ap.id])
    with pytest.raises(DBAPIError, match="market.tender.history"), dbs.begin_nested():
        dbs.execute(text("UPDATE market_tender_bid SET price_fen = price_fen + 1 WHERE "
                         "tender_id = :t"), {"t": t.id})
    b1, b2, b3 = t.bids
    ops.score_plan(user("exchange"), t, b1, 40)
    ops.score_plan(user("exchange"), t, b2, 95)
    assert_refused("market.tender.running", ops.close_tender, None, t, today=TODAY)
    _wait(t, "reveal_ends_at")
    # Expected from the published weights: price share of the best × 60 + plan × 40 / 100.
    best = max(bids[p1.id][0], bids[p2.id][0])
    s1 = bids[p1.id][0] * 60 * 1000 // best + 40 * 40 * 10
    s2 = bids[p2.id][0] * 60 * 1000 // best + 95 * 40 * 10
    ranking = ops.tender_ranking(t)
    assert [x_["application_id"] for x_ in ranking] == sorted(
        [p1.id, p2.id], key=lambda i: -(s1 if i == p1.id else s2))
    assert {x_["application_id"]: x_["score"] for x_ in ranking} == {p1.id: s1, p2.id: s2}
    aw = ops.close_tender(user("exchange"), t, today=TODAY)
    winner = p1.id if s1 > s2 else p2.id
    assert aw.method == "tender" and aw.application_id == winner
    assert aw.price_fen == bids[winner][0]


def test_price_only_tender_and_an_unrevealed_bid_does_not_count(dbs, fast):
    x, apps, keys = competition(dbs, n_outsiders=2, priority_member=False, method="tender")
    p1, p2 = apps
    t = ops.open_tender(None, x, lodging_minutes=60, reveal_minutes=60)
    hi, lo = (t.reserve_fen + 900_000, "n1", "计划"), (t.reserve_fen + 100_000, "n2", "计划")
    ops.lodge(None, t, p1, ops.commitment(*hi))
    ops.lodge(None, t, p2, ops.commitment(*lo))
    _wait(t, "opens_at")
    ops.reveal(None, t, p2, *lo)  # p1 never reveals
    _wait(t, "reveal_ends_at")
    assert_refused("market.tender.not_open", ops.reveal, None, t, p1, *hi)
    aw = ops.close_tender(None, t, today=TODAY)
    assert aw.application_id == p2.id and aw.price_fen == lo[0]


def test_tender_setup_refusals(dbs, fast):
    x, apps, keys = competition(dbs, n_outsiders=2, priority_member=False, method="tender")
    assert_refused("market.tender.setup", ops.open_tender, None, x, 10, 10, 50, 40)
    assert_refused("market.tender.setup", ops.open_tender, None, x, 0, 10)
    y, *_ = competition(dbs, n_outsiders=2, priority_member=False,
                        term_start=dt.date(2040, 1, 1), term_end=dt.date(2045, 12, 31))
    assert_refused("market.state", ops.open_tender, None, y, 10, 10)  # an auction listing


def test_a_single_applicant_takes_it_by_agreement_at_or_above_the_reserve(dbs):
    x, apps, keys = competition(dbs, n_outsiders=1, priority_member=False)
    assert x.status == "agreement"
    reserve = ops.first_year_fen(x)
    assert_refused("market.agreement.price", ops.agree, None, x, reserve - 1, today=TODAY)
    aw = ops.agree(user("exchange"), x, reserve, today=TODAY)
    assert aw.method == "agreement" and aw.price_fen == reserve
    assert aw.application_id == apps[0].id


def test_open_negotiation_after_failed_reannouncements(dbs):
    x, apps, keys = competition(dbs, n_outsiders=0, priority_member=False, reannounce_max=0)
    assert x.status == "negotiation"
    a, _ = ops.register_applicant(None, "cooperative", "协商合作社", "1", "农机 10 台",
                                  credit_code="91350100M000100Y43")
    assert_refused("market.negotiation.seller", ops.negotiate, None, x, a, 100_000, "", today=TODAY)
    aw = ops.negotiate(user("exchange"), x, a, 100_000, "卖方书面同意 2026-12-20", today=TODAY)
    assert aw.method == "negotiation" and aw.price_fen == 100_000
    assert aw.seller_agreed_ref == "卖方书面同意 2026-12-20"
    assert_refused("market.state", ops.agree, None, x, 1, today=TODAY)
    assert dt.date.today()  # the award's deadlines run on the market clock


def test_sealed_bids_through_the_api_by_the_applicants_key(app, client, dbs, fast):
    x, apps, keys = competition(dbs, n_outsiders=2, priority_member=False, method="tender")
    p1, p2 = apps
    t = ops.open_tender(None, x, lodging_minutes=100, reveal_minutes=100)
    price, nonce, plan = t.reserve_fen + 10_000, secrets.token_hex(8), "节水灌溉"
    h = {"Authorization": f"Applicant {keys[p1.id]}"}
    r = client.post(f"/api/market/tenders/{t.id}/bids",
                    json={"commitment": ops.commitment(price, nonce, plan)}, headers=h)
    assert r.status_code == 201 and r.get_json()["price_fen"] is None
    r = client.post(f"/api/market/tenders/{t.id}/reveal",
                    json={"price_fen": price, "nonce": nonce, "plan": plan}, headers=h)
    assert r.status_code == 409 and r.get_json()["code"] == "market.tender.not_open"
    r = client.post(f"/api/market/tenders/{t.id}/bids", json={"commitment": "a" * 64},
                    headers={"Authorization": "Applicant not-a-key"})
    assert r.status_code == 403
    _wait(t, "opens_at")
    r = client.post(f"/api/market/tenders/{t.id}/reveal",
                    json={"price_fen": price, "nonce": nonce, "plan": plan}, headers=h)
    assert r.status_code == 200 and r.get_json()["price_fen"] == price


def test_the_tender_pages_lodge_reveal_score_and_decide(app, dbs, fast, login_as):
    from app.market.models import Tender
    from tests.conftest import csrf_from

    x, apps, keys = competition(dbs, n_outsiders=2, priority_member=False, method="tender")
    op = login_as("exchange")
    page = op.get(f"/market/listings/{x.id}").get_data(as_text=True)
    assert 'id="open-tender-form"' in page
    r = op.post(f"/market/listings/{x.id}/tender", data={
        "csrf_token": csrf_from(page), "lodging_minutes": "200", "reveal_minutes": "200",
        "opening_after_minutes": "0", "weight_price": "70", "weight_plan": "30"})
    assert r.status_code == 303
    t = dbs.scalar(select(Tender).where(Tender.listing_id == x.id))
    assert (t.weight_price, t.weight_plan) == (70, 30)
    bidder = app.test_client()
    sealed = {}
    for ap in apps:
        price, nonce, plan = t.reserve_fen + 1000 * ap.id, f"nonce{ap.id:012d}", f"方案{ap.id}"
        sealed[ap.id] = (price, nonce, plan)
        html = bidder.get(f"/market/tenders/{t.id}?key={keys[ap.id]}").get_data(as_text=True)
        assert 'id="lodge-form"' in html
        r = bidder.post(f"/market/tenders/{t.id}/lodge", data={
            "csrf_token": csrf_from(html), "key": keys[ap.id],
            "commitment": ops.commitment(price, nonce, plan)})
        assert r.status_code == 303
    public = app.test_client().get(f"/market/tenders/{t.id}").get_data(as_text=True)
    assert all(str(p) not in public and ops.fen(p) not in public for p, *_ in sealed.values())
    _wait(t, "opens_at")
    for ap in apps:
        html = bidder.get(f"/market/tenders/{t.id}?key={keys[ap.id]}").get_data(as_text=True)
        price, nonce, plan = sealed[ap.id]
        r = bidder.post(f"/market/tenders/{t.id}/reveal", data={
            "csrf_token": csrf_from(html), "key": keys[ap.id], "price_fen": str(price),
            "nonce": nonce, "plan": plan})
        assert r.status_code == 303
    dbs.refresh(t)
    assert sorted(b.price_fen for b in t.bids) == sorted(p for p, *_ in sealed.values())
    page = op.get(f"/market/tenders/{t.id}").get_data(as_text=True)
    for b, score in zip(t.bids, (90, 10), strict=True):
        op.post(f"/market/tenders/{t.id}/score/{b.id}",
                data={"csrf_token": csrf_from(page), "score": str(score)})
    _wait(t, "reveal_ends_at")
    page = op.get(f"/market/tenders/{t.id}").get_data(as_text=True)
    r = op.post(f"/market/tenders/{t.id}/close", data={"csrf_token": csrf_from(page)})
    assert r.status_code == 303 and "/market/awards/" in r.headers["Location"]
    dbs.refresh(t)
    expected = ops.tender_ranking(t)[0]
    assert t.status == "decided"
    aw = ops.standing_award(x)
    assert (aw.application_id, aw.price_fen) == (expected["application_id"],
                                                 expected["amount_fen"])
