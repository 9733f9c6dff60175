"""The transfer-trading market II: the online auction (every refusal, by the database, on the
accelerated market clock), the hash chain, the extension rule, priority on equal terms, the
award with its refunds, the winner's payment and forfeiture."""
import datetime as dt
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.market import operations as ops
from app.market import workdays
from app.market.models import Award
from tests.conftest import user
from tests.market_trading_fixtures import competition, wait_end, wait_market
from tests.test_market import TODAY, assert_refused

ACC = 6000  # one real second is 100 market minutes


@pytest.fixture()
def fast(app):
    old = app.config.get("MARKET_ACCELERATOR")
    app.config["MARKET_ACCELERATOR"] = ACC
    yield ACC
    app.config["MARKET_ACCELERATOR"] = old


def k():
    return uuid.uuid4().hex


def test_every_bid_rule_is_the_databases_and_a_retry_never_bids_twice(dbs, fast):
    x, apps, keys = competition(dbs)
    a = ops.open_auction(user("exchange"), x, step_fen=50_000, free_minutes=60,
                         timed_minutes=60, start_in_minutes=20)
    reserve, step = ops.first_year_fen(x), 50_000
    assert a.reserve_fen == reserve and float(a.accelerator) == ACC
    p1, p2, member = apps
    assert_refused("market.bid.not_started", ops.place_bid, a.id, p1.id, reserve, k())
    wait_market(a, a.starts_at)
    assert_refused("market.bid.first", ops.place_bid, a.id, p1.id, reserve - step, k())
    assert_refused("market.bid.first", ops.place_bid, a.id, p1.id, reserve + 1, k())
    key1 = k()
    b1, new = ops.place_bid(a.id, p1.id, reserve, key1)
    assert new and b1["seq"] == 1 and b1["amount_fen"] == reserve
    again, new = ops.place_bid(a.id, p1.id, reserve, key1)  # a retried request
    assert not new and again["seq"] == 1 and again["hash"] == b1["hash"]
    assert_refused("market.bid.key", ops.place_bid, a.id, p2.id, reserve + step, key1)
    assert_refused("market.bid.step", ops.place_bid, a.id, p2.id, reserve, k())  # equal: refused
    assert_refused("market.bid.step", ops.place_bid, a.id, p2.id, reserve + step // 2, k())
    b2, _ = ops.place_bid(a.id, p2.id, reserve + 3 * step, k())  # several steps at once
    assert b2["seq"] == 2
    assert_refused("market.bid.not_admitted", ops.place_bid, a.id, 10 ** 8, reserve + 4 * step, k())
    # Pseudonyms: numbers 1..3, a permutation, not the application ids.
    assert sorted(b.bidder_no for b in a.bidders) == [1, 2, 3]
    # The database refuses to rewrite a bid or the auction's price, whatever the writer.
    for sql in ("UPDATE market_bid SET amount_fen = amount_fen + 1 WHERE auction_id = :a",
                "DELETE FROM market_bid WHERE auction_id = :a",
                "UPDATE market_auction SET current_price_fen = 1 WHERE id = :a",
                "UPDATE market_auction SET ends_at = ends_at + interval '1 day' WHERE id = :a",
                "UPDATE market_auction SET status = 'closed' WHERE id = :a"):
        with pytest.raises(DBAPIError), dbs.begin_nested():
            dbs.execute(text(sql), {"a": a.id})
    # A direct INSERT meets the same trigger: below the current price by the database alone.
    with pytest.raises(DBAPIError, match="market.bid.step"), dbs.begin_nested():
        dbs.execute(text("INSERT INTO market_bid (auction_id, application_id, client_key, "
                         "amount_fen) VALUES (:a, :p, :k, :m)"),
                    {"a": a.id, "p": member.id, "k": k(), "m": reserve})
    assert ops.verify_chain(a) == []
    assert_refused("market.auction.running", ops.close_auction, None, a, today=TODAY)


def test_a_late_bid_moves_the_end_and_none_is_accepted_after_it(dbs, fast):
    x, apps, keys = competition(dbs, priority_member=False)
    a = ops.open_auction(user("exchange"), x, step_fen=10_000, free_minutes=30,
                         timed_minutes=30, extension_minutes=5)
    reserve = a.reserve_fen
    p1, p2 = apps
    b, _ = ops.place_bid(a.id, p1.id, reserve, k())  # in the free period: no extension
    first_end = a.timed_from + dt.timedelta(minutes=30)
    assert b["ends_after"] == first_end
    wait_market(a, first_end - dt.timedelta(minutes=4))
    b2, _ = ops.place_bid(a.id, p2.id, reserve + 10_000, k())  # in the last 5 minutes
    assert b2["ends_after"] == b2["market_at"] + dt.timedelta(minutes=5) > first_end
    dbs.refresh(a)
    assert a.ends_at == b2["ends_after"]
    wait_end(dbs, a)
    assert_refused("market.bid.ended", ops.place_bid, a.id, p1.id, reserve + 20_000, k())
    aw = ops.close_auction(user("exchange"), a, today=TODAY)
    assert isinstance(aw, Award) and aw.application_id == p2.id
    assert aw.price_fen == reserve + 10_000 and aw.method == "auction"
    # The loser is the next-ranked: its deposit is kept until the winner pays.
    assert ops.held(p1) == x.deposit_fen
    ops.pay_price(user("exchange"), aw, aw.price_fen - x.deposit_fen, "BANK-PRICE", today=TODAY)
    assert aw.status == "paid" and ops.held(p2) == 0 and ops.held(p1) == 0
    owed = dbs.scalar(text("SELECT -sum(amount_fen) FROM market_ledger_entry WHERE account = "
                           ":acc"), {"acc": f"price:award:{aw.id}"})
    assert owed == aw.price_fen  # the deposit applied plus the balance, owed to the contractor
    assert ops.reconciliation()["ok"]


def test_priority_holder_takes_the_deal_at_the_final_price_earliest_exercise_wins(dbs, fast):
    x, apps, keys = competition(dbs)
    p1, p2, member = apps
    a = ops.open_auction(user("exchange"), x, step_fen=10_000, free_minutes=0,
                         timed_minutes=30, priority_minutes=60)
    ops.place_bid(a.id, p1.id, a.reserve_fen, k())
    top, _ = ops.place_bid(a.id, p2.id, a.reserve_fen + 20_000, k())
    assert_refused("market.priority.window", ops.exercise_priority, None, a, member)
    wait_end(dbs, a)
    ops.close_auction(None, a, today=TODAY)
    assert a.status == "priority" and a.priority_until == a.closed_at + dt.timedelta(minutes=60)
    assert_refused("market.priority.not_holder", ops.exercise_priority, None, a, p1)
    assert_refused("market.priority.window", ops.close_priority, None, a, today=TODAY)
    ops.exercise_priority(None, a, member)
    wait_market(a, a.priority_until)
    assert_refused("market.priority.window", ops.exercise_priority, None, a, member)
    aw = ops.close_priority(None, a, today=TODAY)
    assert a.priority_outcome == "exercised"
    assert aw.application_id == member.id and aw.price_fen == top["amount_fen"]
    assert aw.method == "priority"
    # Losers refunded except the next-ranked (the top bidder, kept until the winner pays).
    assert ops.held(p2) == x.deposit_fen and ops.held(p1) == 0
    assert ops.reconciliation()["ok"]


def test_priority_lapses_and_the_top_bidder_wins(dbs, fast):
    x, apps, keys = competition(dbs)
    p1, p2, member = apps
    a = ops.open_auction(None, x, step_fen=10_000, free_minutes=0, timed_minutes=30,
                         priority_minutes=60)
    ops.place_bid(a.id, p1.id, a.reserve_fen + 10_000, k())
    wait_end(dbs, a)
    ops.close_auction(None, a, today=TODAY)
    wait_market(a, a.priority_until)
    aw = ops.close_priority(None, a, today=TODAY)
    assert a.priority_outcome == "lapsed" and aw.application_id == p1.id


def test_no_bid_means_no_deal_and_the_listing_is_announced_again(dbs, fast):
    x, apps, keys = competition(dbs, priority_member=False)
    a = ops.open_auction(None, x, step_fen=10_000, free_minutes=0, timed_minutes=30)
    wait_end(dbs, a)
    before = x.reannounce_count
    ops.close_auction(None, a, today=TODAY)
    assert a.status == "no_deal" and x.status == "announced"
    assert x.reannounce_count == before + 1


def _won(dbs):
    x, apps, keys = competition(dbs, n_outsiders=3, priority_member=False)
    p1, p2, p3 = apps
    a = ops.open_auction(None, x, step_fen=10_000, free_minutes=0, timed_minutes=30)
    ops.place_bid(a.id, p3.id, a.reserve_fen, k())
    ops.place_bid(a.id, p1.id, a.reserve_fen + 10_000, k())
    ops.place_bid(a.id, p2.id, a.reserve_fen + 30_000, k())
    wait_end(dbs, a)
    return x, apps, a, ops.close_auction(None, a, today=TODAY)


def test_a_winner_who_does_not_pay_forfeits_and_the_next_ranked_takes_it_at_their_price(
        dbs, fast):
    x, (p1, p2, p3), a, aw = _won(dbs)
    assert aw.application_id == p2.id
    # 3 working days to pay, 7 days to sign; the loser's refund due within 5 working days.
    assert aw.pay_by == workdays.announcement_window(TODAY + dt.timedelta(1), 3).end
    assert aw.sign_by == TODAY + dt.timedelta(7)
    due = workdays.announcement_window(TODAY + dt.timedelta(1), 5).end
    ref = dbs.scalar(text("SELECT reference FROM market_ledger_txn WHERE application_id = :a "
                          "AND kind = 'deposit_refunded'"), {"a": p3.id})
    assert ref.endswith(f"paid back by {due}")
    assert ops.held(p3) == 0 and ops.held(p1) == x.deposit_fen  # p1 is next-ranked
    assert_refused("market.award.not_due", ops.forfeit, None, aw, "卖方同意", today=aw.pay_by)
    nxt = ops.forfeit(None, aw, "卖方同意书 2026-12", today=aw.pay_by + dt.timedelta(1))
    assert aw.status == "forfeited" and ops.held(p2) == 0
    forfeited = dbs.scalar(text("SELECT -sum(amount_fen) FROM market_ledger_entry WHERE "
                                "account = :acc"), {"acc": f"forfeit:listing:{x.id}"})
    assert forfeited == x.deposit_fen
    assert nxt.application_id == p1.id and nxt.price_fen == a.reserve_fen + 10_000
    assert nxt.method == "next_ranked" and nxt.rank == 2
    assert ops.reconciliation()["ok"]


def test_without_the_sellers_agreement_a_forfeit_means_a_new_announcement(dbs, fast):
    x, (p1, p2, p3), a, aw = _won(dbs)
    assert_refused("market.award.payment", ops.pay_price, None, aw, 1, "B", today=TODAY)
    assert ops.forfeit(None, aw, None, today=aw.pay_by + dt.timedelta(1)) is None
    assert x.status == "announced" and ops.held(p1) == 0
    assert ops.reconciliation()["ok"]
