"""After the award: the contract (art 40) as a PDF confirmed by both parties on its SHA-256,
filed with the issuing party; the management right for 5 years or more (art 41) beside the
household's contract right, ending by itself at term end; the transaction certificate verified
by its QR code; the rent schedule reconciling to zero; ending a transfer only on an art 42
ground with evidence — in the operation and in the database."""
import datetime as dt
import hashlib
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.market import operations as ops
from app.rights import operations as rights
from app.rights.models import Right
from tests.conftest import user
from tests.market_trading_fixtures import competition, wait_end
from tests.test_market import TODAY, assert_refused

ACC = 6000


@pytest.fixture()
def fast(app):
    app.config["MARKET_ACCELERATOR"] = ACC
    yield
    app.config["MARKET_ACCELERATOR"] = None


def _award(dbs):
    x, apps, keys = competition(dbs, priority_member=False)
    p1, p2 = apps
    a = ops.open_auction(None, x, step_fen=10_000, free_minutes=0, timed_minutes=30)
    ops.place_bid(a.id, p1.id, a.reserve_fen, uuid.uuid4().hex)
    ops.place_bid(a.id, p2.id, a.reserve_fen + 10_000, uuid.uuid4().hex)
    wait_end(dbs, a)
    aw = ops.close_auction(None, a, today=TODAY)
    ops.pay_price(user("exchange"), aw, aw.price_fen - x.deposit_fen, "BANK-P", today=TODAY)
    return x, aw, p2


def _filed(dbs):
    x, aw, winner = _award(dbs)
    c = ops.draw_contract(user("exchange"), aw, today=TODAY)
    ops.confirm_contract(user("farmer"), c, "transferor", c.pdf_sha256)
    ops.confirm_contract(None, c, "transferee", c.pdf_sha256, applicant=winner.applicant)
    ops.file_contract(user("officer"), c, today=TODAY)
    return x, aw, winner, c


def test_contract_confirmed_by_both_on_its_digest_then_filed_registers_the_right(dbs, fast):
    x, aw, winner = _award(dbs)
    c = ops.draw_contract(user("exchange"), aw, today=TODAY)
    assert c.pdf.startswith(b"%PDF") and c.pdf_sha256 == hashlib.sha256(c.pdf).hexdigest()
    assert c.model == "GF—2021—2606" and c.annual_rent_fen == aw.price_fen
    # All eight clauses of art 40 are in the content and the parcel schedule lists the parcels.
    assert [p["code"] for p in c.content["parcels"]] == [lp.parcel_code for lp in x.parcels]
    assert c.content["map_svg"].startswith("<svg")
    assert_refused("market.contract.digest", ops.confirm_contract, user("farmer"), c, "transferor",
             "0" * 64)
    assert_refused("market.contract.party", ops.confirm_contract, user("officer2"), c, "transferor",
             c.pdf_sha256)
    other = [a for a in x.applications if a.id != winner.id][0]
    assert_refused("market.contract.party", ops.confirm_contract, None, c, "transferee",
             c.pdf_sha256, applicant=other.applicant)
    ops.confirm_contract(user("farmer"), c, "transferor", c.pdf_sha256)
    assert_refused("market.contract.state", ops.file_contract, user("officer"), c, today=TODAY)
    # The database: no confirmed status without both confirmations on this PDF.
    with pytest.raises(DBAPIError, match="market.contract.state"), dbs.begin_nested():
        dbs.execute(text("UPDATE market_contract SET status = 'confirmed' WHERE id = :c"),
                    {"c": c.id})
    ops.confirm_contract(None, c, "transferee", c.pdf_sha256, applicant=winner.applicant)
    assert c.status == "confirmed"
    assert {(k.party, k.pdf_sha256) for k in c.confirmations} == {
        ("transferor", c.pdf_sha256), ("transferee", c.pdf_sha256)}
    assert_refused("market.contract.filer", ops.file_contract, user("officer2"), c, today=TODAY)
    ops.file_contract(user("officer"), c, today=TODAY)
    assert c.status == "filed" and c in ops.transfers_ledger(x.fbfbm)
    r = dbs.scalar(select(Right).where(Right.uid == c.management_right_uid,
                                       Right.end_lifespan.is_(None)))
    assert r.kind == "management" and r.holder_name == winner.applicant.name
    assert (r.term_start, r.term_end) == (x.term_start, x.term_end)
    # Beside the household's contract right, which is untouched.
    for lp in x.parcels:
        assert [m.uid for m in rights.current_management(lp.parcel_uid, x.term_start)] == [r.uid]
        assert rights.current_management(lp.parcel_uid, x.term_end + dt.timedelta(1)) == []
    # The PDF and terms are fixed.
    with pytest.raises(DBAPIError, match="market.contract.fixed"), dbs.begin_nested():
        dbs.execute(text("UPDATE market_contract SET annual_rent_fen = 1 WHERE id = :c"),
                    {"c": c.id})
    tc = dbs.execute(text("SELECT token, status FROM market_trade_certificate WHERE "
                          "contract_id = :c"), {"c": c.id}).one()
    assert tc.status == "valid"
    # The management right ends by itself at term end — and not a day before on the server's
    # own clock: the database refuses an expiry whose term has not run out in real time
    # (0012's proof), so a fast-forwarded app clock cannot end it early.
    assert ops.expire_management(None, today=x.term_end) == 0
    with pytest.raises(IntegrityError, match="right.end.not_expired"):
        with dbs.begin_nested():
            ops.expire_management(None, today=x.term_end + dt.timedelta(1))
    dbs.refresh(r)
    assert r.status == "current" and r.end_lifespan is None


def test_whole_years_of_a_term_decide_registration():
    assert ops._years(dt.date(2027, 3, 1), dt.date(2032, 2, 29)) == 5
    assert ops._years(dt.date(2027, 3, 1), dt.date(2032, 2, 28)) == 4
    assert ops._years(dt.date(2027, 1, 1), dt.date(2031, 12, 31)) == 5


def test_the_transaction_certificate_verifies_by_its_qr_code(dbs, fast, client):
    x, aw, winner, c = _filed(dbs)
    from app.market.models import TradeCertificate

    tc = dbs.scalar(select(TradeCertificate).where(TradeCertificate.contract_id == c.id))
    pdf = ops.trade_certificate_pdf(tc)
    assert pdf.startswith(b"%PDF")
    assert tc.content["verify_url"].endswith("/verify/" + tc.token)
    page = client.get("/verify/" + tc.token).get_data(as_text=True)
    assert tc.number in page and c.number in page
    assert winner.applicant.name not in page  # masked
    assert client.get("/verify/" + "x" * 24).status_code == 404


@pytest.mark.parametrize("ground", sorted(ops.ART42_GROUNDS))
def test_a_transfer_ends_on_each_art_42_ground_and_the_right_with_it(dbs, fast, ground):
    x, aw, winner, c = _filed(dbs)
    ops.terminate(user("farmer"), c, ground, "村委会现场核查记录", b"photo+minutes", today=TODAY)
    assert c.status == "terminated" and c.termination_ground == ground
    r = dbs.scalar(select(Right).where(Right.uid == c.management_right_uid,
                                       Right.end_lifespan.is_(None)))
    assert r.status == "ended" and r.end_ground == "transfer_terminated"
    st = dbs.scalar(text("SELECT status FROM market_trade_certificate WHERE contract_id = :c"),
                    {"c": c.id})
    assert st == "cancelled"
    with pytest.raises(DBAPIError, match="market.contract"), dbs.begin_nested():
        dbs.execute(text("UPDATE market_contract SET status = 'filed' WHERE id = :c"),
                    {"c": c.id})


def test_ending_a_transfer_is_refused_on_any_other_ground_without_evidence_or_by_others(
        dbs, fast):
    x, aw, winner, c = _filed(dbs)
    for g in ("settled_in_town", "better_offer", "price_too_low", ""):
        e = assert_refused("market.end.ground", ops.terminate, user("farmer"), c, g, "x", b"x",
                     today=TODAY)
        assert "art 42" in e.source("en")
    assert_refused("market.end.evidence", ops.terminate, user("farmer"), c, "abandoned", "", b"x",
             today=TODAY)
    assert_refused("market.end.evidence", ops.terminate, user("farmer"), c, "abandoned", "撂荒",
             None, today=TODAY)
    assert_refused("market.end.who", ops.terminate, user("officer2"), c, "abandoned", "撂荒", b"x",
             today=TODAY)
    # The database: a terminated status needs a ground of the list and evidence …
    for sql in ("UPDATE market_contract SET status = 'terminated', terminated_on = now(), "
                "termination_ground = 'settled', termination_evidence = 'x', "
                "termination_evidence_sha256 = 'x', terminated_by = 'x' WHERE id = :c",
                "UPDATE market_contract SET status = 'terminated', terminated_on = now(), "
                "termination_ground = 'abandoned', terminated_by = 'x' WHERE id = :c"):
        with pytest.raises(DBAPIError), dbs.begin_nested():
            dbs.execute(text(sql), {"c": c.id})
    # … and a management right does not end "with its transfer" while the transfer stands.
    with pytest.raises(DBAPIError, match="right.end.forbidden_ground"), dbs.begin_nested():
        dbs.execute(text("UPDATE land_right SET status = 'ended', ended_on = now(), "
                         "end_ground = 'transfer_terminated' WHERE uid = :u AND "
                         "end_lifespan IS NULL"), {"u": c.management_right_uid})
    # A household's contract right can never end that way.
    with pytest.raises(DBAPIError), dbs.begin_nested():
        dbs.execute(text("UPDATE land_right SET status = 'ended', ended_on = now(), "
                         "end_ground = 'transfer_terminated' WHERE kind = 'land_contract' "
                         "AND status = 'current' AND end_lifespan IS NULL AND "
                         "holder_household_code = :h"), {"h": x.household_code})
    assert c.status == "filed"


def test_rent_schedule_arrears_and_a_ledger_that_reconciles_to_zero_per_contract(dbs, fast):
    x, aw, winner, c = _filed(dbs)
    years = ops._years(c.term_start, c.term_end)
    inst = c.instalments
    # Year 1 was paid with the award; one instalment for each further year (the last pro rata).
    assert [i.no for i in inst][0] == 2 and len(inst) == years - 1 + (
        0 if ops._add_years(c.term_start, years) > c.term_end else 1)
    assert inst[0].due_on == ops._add_years(c.term_start, 1)
    assert all(i.amount_fen == c.annual_rent_fen for i in inst[:-1])
    st = ops.rent_status(c, today=inst[1].due_on)
    assert [r["no"] for r in st["arrears"]] == [2, 3]
    ops.record_rent(user("exchange"), c, inst[0].amount_fen, "RENT-2")
    st = ops.rent_status(c, today=inst[1].due_on)
    assert [r["no"] for r in st["arrears"]] == [3]
    assert_refused("market.rent.payment", ops.record_rent, user("exchange"), c, st["due_fen"], "X")
    assert_refused("market.rent.payout", ops.pay_out, user("exchange"), c, inst[0].amount_fen + 1, "X")
    ops.pay_out(user("exchange"), c, inst[0].amount_fen, "PAY-2")
    ops.pay_out(user("exchange"), c, aw.price_fen, "PAY-1", what="price")
    st = ops.rent_status(c, today=inst[1].due_on)
    assert st["held_fen"] == 0 and st["paid_out_fen"] == st["received_fen"] == inst[0].amount_fen
    for acc in (f"rent:contract:{c.id}", f"price:award:{aw.id}"):
        assert dbs.scalar(text("SELECT sum(amount_fen) FROM market_ledger_entry WHERE "
                               "account = :a"), {"a": acc}) == 0
    assert ops.reconciliation()["ok"]


def test_the_transferee_renews_on_equal_terms_at_term_end(dbs, fast):
    """2021 办法 art 10: at term end the transferee may renew on equal terms — the same
    priority mechanism as a member's (art 38)."""
    from tests.test_market import _consent_all, _list, _valid_id

    x, aw, winner, c = _filed(dbs)
    right = dbs.scalar(select(Right).where(Right.holder_household_code == x.household_code,
                                           Right.kind == "land_contract",
                                           Right.end_lifespan.is_(None)))
    parcels = [lp.parcel_code for lp in x.parcels]
    from app.parcels.models import Parcel

    y = _list(right, dbs.scalars(select(Parcel).where(Parcel.code.in_(parcels),
                                                      Parcel.end_lifespan.is_(None))).all(),
              term_start=c.term_end + dt.timedelta(days=1), term_end=dt.date(2046, 12, 31))
    _consent_all(y)
    ops.submit(user("farmer"), y, today=TODAY)
    ops.review(user("exchange"), y, True, today=TODAY)
    renew = ops.apply(None, y, winner.applicant, True, today=TODAY)
    assert renew.priority_holder and renew.renewal_contract_id == c.id
    assert renew.member_person_id is None
    outsider, _ = ops.register_applicant(None, "person", "外人", "1", "会种地",
                                         id_number=_valid_id(dt.date(1985, 2, 2), "919"))
    assert_refused("market.priority.not_member", ops.apply, None, y, outsider, True, today=TODAY)
    # The database holds the rule too: priority needs membership or a renewed contract.
    with pytest.raises(DBAPIError), dbs.begin_nested():
        dbs.execute(text("UPDATE market_application SET renewal_contract_id = NULL "
                         "WHERE id = :a"), {"a": renew.id})
