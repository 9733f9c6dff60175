"""Holes found by a fresh attacker on the transfer-trading market, each pinned by a test: the
market's free text through the rights guard (a land-for-hukou trade written as a condition on the
transferee, an applicant's capacity, a company review note, a tender plan), and an amount beyond
the database's bigint refused by rule rather than by a fault."""
import datetime as dt
import uuid

import pytest

from app.errors import DomainError
from app.market import operations as ops
from tests.conftest import user
from tests.market_trading_fixtures import competition, wait_market
from tests.test_market import _list, _valid_id, assert_refused, holder  # noqa: F401
from tests.test_market_trading import fast  # noqa: F401

TRADE = "受让方须以承包地换城镇户口"  # a land-for-hukou trade (condition group)


def test_listing_conditions_carrying_a_land_for_hukou_trade_are_refused(dbs, holder):  # noqa: F811
    _, fields, right = holder
    e = assert_refused("guard.text", _list, right, fields[:1], transferee_conditions=TRADE)
    assert "受让方条件" in e.message("zh")
    assert_refused("guard.text", _list, right, fields[:1], use_description="种粮，拿地换户口")
    assert_refused("guard.text", _list, right, fields[:1], payment_schedule="以地换房")
    ok = _list(right, fields[:1], transferee_conditions="有农机，懂种粮")
    assert ok.transferee_conditions == "有农机，懂种粮"


def test_collective_listing_text_goes_through_the_guard(dbs):
    from sqlalchemy import select

    from app.collectives.models import Collective

    c = dbs.scalars(select(Collective).order_by(Collective.fbfbm)).first()
    assert_refused("guard.text", ops.create_collective_listing, user("admin"), c.fbfbm, "asset",
             "决议 1 号", dt.date(2027, 3, 1), dt.date(2030, 12, 31), "1", "1000.00", "annual",
             asset_description="仓库一座", asset_valuation="5000.00", transferee_conditions=TRADE)


def test_an_applicants_capacity_carrying_a_trade_is_refused(dbs):
    assert_refused("guard.text", ops.register_applicant, None, "person", "丁", "1",
             "会种地，愿以宅基地换楼房", id_number=_valid_id(dt.date(1980, 5, 1), "777"))
    a, key = ops.register_applicant(None, "person", "丁", "1", "会种地",
                                    id_number=_valid_id(dt.date(1980, 5, 1), "778"))
    assert a.id and key


def test_a_bid_beyond_bigint_is_refused_by_rule_not_a_fault(dbs, fast):  # noqa: F811
    x, apps, _ = competition(dbs)
    a = ops.open_auction(user("exchange"), x, step_fen=50_000, free_minutes=60,
                         timed_minutes=60, start_in_minutes=1)
    wait_market(a, a.starts_at)
    for huge in (2 ** 63, 2 ** 64 + 5, 10 ** 30):
        with pytest.raises(DomainError):
            ops.place_bid(a.id, apps[0].id, huge, uuid.uuid4().hex)
    with pytest.raises(DomainError):
        ops.place_bid(a.id, apps[0].id, 1.5, uuid.uuid4().hex)
    with pytest.raises(DomainError):
        ops.place_bid(a.id, apps[0].id, "100000", uuid.uuid4().hex)


def test_a_temp_trigger_cannot_move_the_auction_price_from_depth_two(dbs, fast):  # noqa: F811
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    x, apps, _ = competition(dbs)
    a = ops.open_auction(user("exchange"), x, step_fen=50_000, free_minutes=60,
                         timed_minutes=60, start_in_minutes=1)
    dbs.execute(text("CREATE TEMP TABLE poke (x int)"))
    dbs.execute(text(f"""CREATE FUNCTION pg_temp.poke() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE public.market_auction SET current_price_fen = 1, ends_at = ends_at
              + interval '30 days', step_fen = 1 WHERE id = {a.id}; RETURN NEW; END $$"""))
    dbs.execute(text("CREATE TRIGGER poke AFTER INSERT ON poke FOR EACH ROW "
                     "EXECUTE FUNCTION pg_temp.poke()"))
    with pytest.raises(DBAPIError, match="market.auction.fixed"), dbs.begin_nested():
        dbs.execute(text("INSERT INTO poke VALUES (1)"))


def _two_paid(dbs, holder):  # noqa: F811
    from tests.test_market import _consent_all

    _, fields, right = holder
    x = _list(right, fields[:1])
    _consent_all(x)
    ops.submit(user("farmer"), x, today=dt.date(2026, 12, 1))
    ops.review(user("exchange"), x, True, today=dt.date(2026, 12, 1))
    out = []
    for seq in ("881", "882"):
        a, _ = ops.register_applicant(None, "person", "戊", "1", "会种地",
                                      id_number=_valid_id(dt.date(1975, 3, 3), seq))
        ap = ops.apply(None, x, a, today=dt.date(2026, 12, 1))
        ops.record_payment(None, ap, x.deposit_fen, f"BANK-{seq}")
        out.append(ap)
    return x, out


@pytest.mark.parametrize("attack", ["wrong_applicant", "refunded_twice"])
def test_the_ledger_refuses_a_refund_to_the_wrong_applicant_or_beyond_the_deposit(
        dbs, holder, attack):  # noqa: F811
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    x, (a1, a2) = _two_paid(dbs, holder)
    d = x.deposit_fen
    # the account moved and the transaction's applicant: a1's deposit paid to a2, or a1's
    # deposit refunded twice (what it holds plus the same again)
    owner, times = (a2.id, 1) if attack == "wrong_applicant" else (a1.id, 2)
    with pytest.raises(DBAPIError, match="market.ledger"), dbs.begin_nested():
        for _ in range(times):
            t = dbs.execute(text(
                "INSERT INTO market_ledger_txn (kind, listing_id, application_id, reference, "
                "recorded_by) VALUES ('deposit_refunded', :l, :o, 'REF-X', 'x') RETURNING id"),
                {"l": x.id, "o": owner}).scalar()
            dbs.execute(text("INSERT INTO market_ledger_entry (txn_id, account, amount_fen) "
                             "VALUES (:t, :acc, :d), (:t, 'bank', :m)"),
                        {"t": t, "acc": f"deposit:application:{a1.id}", "d": d, "m": -d})
        dbs.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    ops.refund(None, a1, "REFUND-1")
    assert ops.refund(None, a1, "REFUND-2") is None and ops.held(a1) == 0


@pytest.mark.parametrize("field,value", [("step_fen", 2 ** 70), ("start_in_minutes", 10 ** 12),
                                         ("timed_minutes", 2 ** 40), ("extension_minutes", 2 ** 35),
                                         ("priority_minutes", 2 ** 33), ("step_fen", 1.5)])
def test_auction_terms_beyond_any_real_auction_are_refused_by_rule(dbs, field, value):
    x, _, _ = competition(dbs)
    terms = {"step_fen": 50_000, "free_minutes": 60, "timed_minutes": 60,
             "start_in_minutes": 1, field: value}
    assert_refused("market.auction.setup", ops.open_auction, user("exchange"), x, **terms)


@pytest.mark.parametrize("field", ["payment_schedule", "issuing_party_consent_ref"])
def test_a_text_longer_than_its_column_is_refused_by_rule_not_a_fault(dbs, holder, field):  # noqa: F811
    _, fields, right = holder
    assert_refused("market.text.too_long", _list, right, fields[:1], **{field: "年付" * 101})
