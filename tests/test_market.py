"""The transfer-trading market I: who may list, every legal check (rule code and article), the
database's guards (exclusion constraint under two connections, append-only records, a ledger
that balances), the working-day announcement, applicants and deposits, the end states, and a
settled-in-town household that lists like any other."""
import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.audit.models import AuditLog
from app.errors import DomainError
from app.market import clock, workdays
from app.market import operations as ops
from app.market.models import Listing
from app.parcels.models import Parcel
from app.people.idnumber import check_digit
from app.people.models import Household, HouseholdMember, Person
from app.rights.models import Right, RightParcel
from tests.conftest import user
from tests.test_rights import _contract

TODAY = dt.date(2026, 12, 1)  # a Tuesday; the market's operations take the day explicitly
START = dt.date(2027, 3, 1)
CONTRACT_END = dt.date(2058, 12, 31)


def _farmer_household(dbs) -> tuple[Household, list[Parcel], Right]:
    hh = dbs.scalar(select(Household).where(Household.cbfbm == user("farmer").household_code))
    fields = dbs.scalars(select(Parcel).where(Parcel.household_code == hh.cbfbm,
                                              Parcel.kind == "contract",
                                              Parcel.end_lifespan.is_(None))
                         .order_by(Parcel.code)).all()
    assert len(fields) >= 2
    return hh, fields, _contract(dbs, hh, fields, end=CONTRACT_END)


@pytest.fixture()
def holder(dbs):
    return _farmer_household(dbs)


def _list(right, parcels, actor=None, **kw):
    fields = {"kind": "lease", "term_start": START, "term_end": dt.date(2036, 12, 31),
              "land_use": "1", "reserve_price": "850.00", "payment_schedule": "annual",
              "today": TODAY}
    fields.update(kw)
    return ops.create_listing(actor or user("farmer"), right, parcel_codes=[p.code for p in parcels],
                              **fields)


def _consent_all(listing):
    for p in ops.missing_consents(listing, TODAY):
        ops.consent(user("farmer"), listing, p, f"{p.name} 签字同意".encode(), today=TODAY)


def assert_refused(code, fn, *args, **kw):
    with pytest.raises(DomainError) as e:
        fn(*args, **kw)
    assert e.value.code == code, (e.value.code, e.value.message("en"))
    return e.value


def _valid_id(birth: dt.date, seq="123") -> str:
    first = f"140404{birth:%Y%m%d}{seq}"
    return first + check_digit(first)


CREDIT_OK = "91350100M000100Y43"  # a published valid example of GB 32100


# ------------------------------------------------------------------ calendar


def test_announcement_skips_the_national_day_holiday_and_counts_the_adjusted_saturday():
    # 2026: 1–7 October are the National Day holiday; Saturday 10 October is worked (调休).
    start = dt.date(2026, 9, 30)
    assert dt.date(2026, 10, 10).weekday() == 5
    w = workdays.announcement_window(start, 10)
    counted = [d for d in (start + dt.timedelta(days=i) for i in range((w.end - start).days + 1))
               if workdays.is_working_day(d)[0]]
    assert len(counted) == 10 and counted[-1] == w.end
    assert dt.date(2026, 10, 10) in counted  # the adjusted working Saturday counts
    assert not any(dt.date(2026, 10, d) in counted for d in range(1, 8))  # the holiday does not
    # Independently: Mon–Fri minus the holiday plus the worked Saturday.
    assert w.start == start and w.end == dt.date(2026, 10, 19)
    assert not w.estimated


def test_a_window_into_an_unpublished_year_uses_the_stated_fallback_and_says_so():
    w = workdays.announcement_window(dt.date(2026, 12, 28), 10)
    assert w.estimated and w.estimated_years == [2027]
    assert dt.date(2027, 1, 1) > w.start  # New Year's Day falls inside and is not counted
    assert workdays.is_working_day(dt.date(2027, 1, 1)) == (False, True)
    assert workdays.working_days_between(w.start, w.end) == 10


# ------------------------------------------------------------------ the whole flow


def test_list_consent_review_announce_apply_deposit_and_end(dbs, holder):
    hh, fields, right = holder
    listing = _list(right, fields[:2])
    assert listing.status == "draft" and listing.listed_via == "own"
    assert listing.area_mu == fields[0].scmjm + fields[1].scmjm
    # Default deposit: 10% of the first year's price at the reserve, in fen.
    expected = int(Decimal("850.00") * listing.area_mu * 100) * 10 // 100
    assert listing.deposit_fen == expected
    _consent_all(listing)
    assert ops.missing_consents(listing, TODAY) == []
    ops.submit(user("farmer"), listing, today=TODAY)
    assert listing.status == "review"
    ops.review(user("exchange"), listing, True, today=TODAY)
    assert listing.status == "announced"
    assert listing.announcement_ends_on == workdays.announcement_window(TODAY, 10).end
    a1, _ = ops.register_applicant(None, "person", "王大", "13800000000", "种粮十年",
                                   id_number=_valid_id(dt.date(1980, 5, 1)))
    a2, _ = ops.register_applicant(None, "cooperative", "合作社", "13900000000", "农机 20 台",
                                   credit_code=CREDIT_OK)
    ap1 = ops.apply(None, listing, a1, today=TODAY)
    ap2 = ops.apply(None, listing, a2, today=TODAY)
    assert ap1.status == ap2.status == "registered"
    before = ops.reconciliation()  # test_market_concurrency's gunicorn race commits entries
    ops.record_payment(user("exchange"), ap1, listing.deposit_fen, "BANK-001")
    half = listing.deposit_fen // 2
    ops.record_payment(user("exchange"), ap2, half, "BANK-002")
    assert ap1.status == "qualified" and ap2.status == "registered"
    ops.record_payment(user("exchange"), ap2, listing.deposit_fen - half, "BANK-003")
    assert ap2.status == "qualified"
    assert_refused("market.payment.exceeds", ops.record_payment, user("exchange"), ap2, 1, "X")
    rec = ops.reconciliation()
    assert rec["ok"] and rec["bank"] == rec["owed"]
    assert rec["bank"] - before["bank"] == 2 * listing.deposit_fen == rec["owed"] - before["owed"]
    assert_refused("market.announcement.running", ops.close_announcement, None, listing,
             today=listing.announcement_ends_on)
    ops.close_announcement(None, listing, today=listing.announcement_ends_on + dt.timedelta(1))
    assert listing.status == "competition" and listing.method == "auction"
    actions = set(dbs.scalars(select(AuditLog.action).where(AuditLog.action.like("market.%"))))
    assert {"market.list", "market.consent", "market.submit", "market.announce", "market.apply",
            "market.ledger.deposit_lodged", "market.announcement_end"} <= actions


def test_end_states_none_reannounces_then_negotiation_one_agreement(dbs, holder):
    hh, fields, right = holder
    a = _list(right, fields[:1], reannounce_max=1)
    b = _list(right, fields[1:2])
    for x in (a, b):
        _consent_all(x)
        ops.submit(user("farmer"), x, today=TODAY)
        ops.review(user("exchange"), x, True, today=TODAY)
    after = a.announcement_ends_on + dt.timedelta(days=1)
    ops.close_announcement(None, a, today=after)
    assert a.status == "announced" and a.reannounce_count == 1 and a.announced_on >= after
    ops.close_announcement(None, a, today=a.announcement_ends_on + dt.timedelta(days=1))
    assert a.status == "negotiation"
    ap, _ = ops.register_applicant(None, "person", "李四", "1", "会种地",
                                   id_number=_valid_id(dt.date(1975, 1, 1), "321"))
    app_ = ops.apply(None, b, ap, today=TODAY)
    ops.record_payment(None, app_, b.deposit_fen, "R-1")
    ops.close_announcement(None, b, today=b.announcement_ends_on + dt.timedelta(days=1))
    assert b.status == "agreement"


# ------------------------------------------------------------------ legal checks


def test_term_beyond_the_contract_is_refused_art_38(dbs, holder):
    _, fields, right = holder
    x = _list(right, fields[:1], term_end=right.term_end + dt.timedelta(days=1))
    _consent_all(x)
    e = assert_refused("market.term.exceeds_contract", ops.submit, user("farmer"), x, today=TODAY)
    assert "art 38" in e.source("en") and str(right.term_end) in e.message("en")


def test_non_agricultural_use_is_refused_art_38(dbs, holder):
    _, fields, right = holder
    e = assert_refused("market.use.non_agricultural", _list, right, fields[:1], land_use="5")
    assert "art 38" in e.source("en")
    x = _list(right, fields[:1])
    with pytest.raises(IntegrityError), dbs.begin_nested():  # the database refuses it too
        dbs.execute(text("UPDATE market_listing SET land_use = '5' WHERE id = :i"), {"i": x.id})


def test_parcel_under_a_current_management_right_is_refused(dbs, holder):
    _, fields, right = holder
    m = Right(kind="management", holder_name="某农业公司", fbfbm=right.fbfbm,
              term_start=dt.date(2025, 1, 1), term_end=dt.date(2030, 12, 31))
    dbs.add(m)
    dbs.flush()
    dbs.add(RightParcel(right_id=m.id, parcel_uid=fields[0].uid, parcel_code=fields[0].code))
    dbs.flush()
    x = _list(right, fields[:1])
    _consent_all(x)
    e = assert_refused("market.parcel.under_management", ops.submit, user("farmer"), x, today=TODAY)
    assert fields[0].code in e.message("en") and "arts 36, 41" in e.source("en")
    with pytest.raises(IntegrityError) as exc, dbs.begin_nested():  # the database refuses too
        dbs.execute(text("UPDATE market_listing SET status = 'review' WHERE id = :i"),
                    {"i": x.id})
    assert "management right" in str(exc.value)
    # Not overlapping in time: allowed.
    y = _list(right, fields[:1], term_start=dt.date(2031, 1, 1), term_end=dt.date(2035, 12, 31))
    _consent_all(y)
    ops.submit(user("farmer"), y, today=TODAY)
    assert y.status == "review"


def test_parcel_in_another_live_listing_is_refused_and_the_database_agrees(dbs, holder):
    _, fields, right = holder
    a = _list(right, fields[:2])
    _consent_all(a)
    ops.submit(user("farmer"), a, today=TODAY)
    b = _list(right, fields[1:3] if len(fields) > 2 else fields[1:2],
              term_start=dt.date(2030, 1, 1), term_end=dt.date(2040, 12, 31))
    _consent_all(b)
    e = assert_refused("market.parcel.listed", ops.submit, user("farmer"), b, today=TODAY)
    assert fields[1].code in e.message("en") and "41" in e.source("en")
    # The database refuses it too, whatever the operation checks.
    with pytest.raises(IntegrityError) as exc, dbs.begin_nested():
        dbs.execute(text("UPDATE market_listing SET status = 'review' WHERE id = :i"),
                    {"i": b.id})
    assert "market_listing_parcel_no_overlap" in str(exc.value)
    # Returned listings free their parcels; then b goes through.
    ops.review(user("exchange"), a, False, "四至不清，请补充", today=TODAY)
    ops.submit(user("farmer"), b, today=TODAY)
    assert b.status == "review"


def test_swap_and_transfer_only_within_the_collective_with_consent_art_33_34(dbs, holder):
    hh, fields, right = holder
    e = assert_refused("market.swap.issuing_party_consent", _list, right, fields[:1], kind="swap",
                 swap_household_code=None)
    assert "art 34" in e.source("en")
    outsider = dbs.scalar(select(Household).where(
        Household.cbfbm.notlike(hh.cbfbm[:14] + "%")).order_by(Household.id))
    x = _list(right, fields[:1], kind="swap", swap_household_code=outsider.cbfbm,
              issuing_party_consent_ref="发包方同意书 2026-12")
    _consent_all(x)
    e = assert_refused("market.swap.outside_collective", ops.submit, user("farmer"), x, today=TODAY)
    assert "art 33" in e.source("en")
    neighbour = dbs.scalar(select(Household).where(
        Household.cbfbm.like(hh.cbfbm[:14] + "%"), Household.cbfbm != hh.cbfbm))
    y = _list(right, fields[1:2], kind="transfer", swap_household_code=neighbour.cbfbm,
              issuing_party_consent_ref="发包方同意书 2026-13")
    _consent_all(y)
    ops.submit(user("farmer"), y, today=TODAY)
    assert y.status == "review"
    with pytest.raises(IntegrityError), dbs.begin_nested():  # the database asks for consent too
        dbs.execute(text("UPDATE market_listing SET issuing_party_consent_ref = NULL "
                         "WHERE id = :i"), {"i": y.id})


def test_only_the_holder_or_an_agent_with_a_valid_mandate_lists(dbs, holder):
    hh, fields, right = holder
    e = assert_refused("market.lister.not_holder", _list, right, fields[:1], actor=user("officer"))
    assert "art 8" in e.source("en")
    assert_refused("market.lister.not_holder", _list, right, fields[:1], actor=user("bureau"))
    expired = ops.upload_mandate(user("officer"), hh.cbfbm, "collective", "村集体", "出租",
                                 dt.date(2025, 1, 1), dt.date(2025, 12, 31), "委托书.pdf",
                                 b"%PDF-1.4 signed")
    assert_refused("market.lister.mandate", _list, right, fields[:1], actor=user("officer"),
             mandate=expired)
    wrong_agent = ops.upload_mandate(user("exchange"), hh.cbfbm, "exchange", "交易中心", "出租",
                                     TODAY, dt.date(2027, 12, 31), "委托书.pdf", b"%PDF sig")
    assert_refused("market.lister.mandate", _list, right, fields[:1], actor=user("officer"),
             mandate=wrong_agent)
    good = ops.upload_mandate(user("officer"), hh.cbfbm, "collective", "村集体", "出租",
                              TODAY, dt.date(2027, 12, 31), "委托书.pdf", b"%PDF-1.4 good")
    x = _list(right, fields[:1], actor=user("officer"), mandate=good)
    assert x.listed_via == "collective" and x.mandate_id == good.id
    stored = dbs.execute(text("SELECT content, sha256 FROM market_mandate WHERE id = :i"),
                         {"i": good.id}).one()
    assert stored.content == b"%PDF-1.4 good"  # the file itself is kept
    # Listed by an agent, no consent is presumed: every adult co-holder must consent.
    missing = ops.missing_consents(x, TODAY)
    assert missing
    e = assert_refused("market.consent.missing", ops.submit, user("officer"), x, today=TODAY)
    assert missing[0].name in e.message("en")
    with pytest.raises(IntegrityError), dbs.begin_nested():  # the database: agents need mandates
        dbs.execute(text("UPDATE market_listing SET mandate_id = NULL WHERE id = :i"),
                    {"i": x.id})
    with pytest.raises(DBAPIError), dbs.begin_nested():  # and the mandate cannot be rewritten
        dbs.execute(text("UPDATE market_mandate SET content = 'x' WHERE id = :i"), {"i": good.id})


def test_every_adult_coholder_consents(dbs, holder):
    hh, fields, right = holder
    x = _list(right, fields[:1])
    adults = ops.adult_coholders(x, TODAY)
    others = [p for p in adults if p.id != user("farmer").person_id]
    if not others:  # give the household an adult co-holder (the demo may have none)
        first = "14040419900101" + "123"
        p = Person(id_number=first + check_digit(first), name="配偶", sex="2",
                   birth_date=dt.date(1990, 1, 1))
        dbs.add(p)
        dbs.flush()
        dbs.add(HouseholdMember(household_id=hh.id, person_id=p.id, relation="10"))
        dbs.flush()
        dbs.refresh(hh)
        others = [p]
    e = assert_refused("market.consent.missing", ops.submit, user("farmer"), x, today=TODAY)
    assert others[0].name in e.message("zh") and "art 16" in e.source("en")
    assert_refused("market.consent.document", ops.consent, user("farmer"), x, others[0], None,
             today=TODAY)
    stranger = dbs.scalar(select(Person).where(Person.id.notin_([p.id for p in adults])))
    assert_refused("market.consent.not_coholder", ops.consent, user("farmer"), x, stranger, b"doc",
             today=TODAY)
    _consent_all(x)
    ops.submit(user("farmer"), x, today=TODAY)
    c = x.consents[0]
    with pytest.raises(DBAPIError), dbs.begin_nested():  # consents are append-only
        dbs.execute(text("DELETE FROM market_consent WHERE id = :i"), {"i": c.id})


def test_encumbered_parcels_are_flagged_and_need_the_creditors_consent(dbs, holder):
    _, fields, right = holder
    e = ops.record_encumbrance(user("bureau"), right, "mortgage", "长治农商行",
                               "抵押登记 2026-088", "经营权抵押贷款")
    x = _list(right, fields[:1])
    _consent_all(x)
    err = assert_refused("market.encumbrance.undeclared", ops.submit, user("farmer"), x, today=TODAY)
    assert "art 47" in err.source("en")
    y = _list(right, fields[1:2], mortgaged=True)
    _consent_all(y)
    ops.submit(user("farmer"), y, today=TODAY)
    err = assert_refused("market.encumbered", ops.review, user("exchange"), y, True, today=TODAY)
    assert "长治农商行" in err.message("en") and "art 47" in err.source("en")
    ops.record_encumbrance_consent(user("exchange"), y, e, "农商行同意函 2026-12-01")
    ops.review(user("exchange"), y, True, today=TODAY)
    assert y.status == "announced"
    with pytest.raises(DBAPIError), dbs.begin_nested():  # encumbrances are never deleted
        dbs.execute(text("DELETE FROM right_encumbrance WHERE id = :i"), {"i": e.id})


def test_return_needs_reasons_and_review_only_from_the_queue(dbs, holder):
    _, fields, right = holder
    x = _list(right, fields[:1])
    assert_refused("market.state", ops.review, user("exchange"), x, True, today=TODAY)
    _consent_all(x)
    ops.submit(user("farmer"), x, today=TODAY)
    assert_refused("market.review.reason", ops.review, user("exchange"), x, False, "  ", today=TODAY)


def test_price_is_exact_to_the_fen_never_a_float(dbs, holder):
    _, fields, right = holder
    assert_refused("market.price", _list, right, fields[:1], reserve_price=850.5)
    assert_refused("market.price", _list, right, fields[:1], reserve_price="850.555")
    x = _list(right, fields[:1], reserve_price="850.55")
    assert x.reserve_price == Decimal("850.55")


def test_collective_items_need_the_members_resolution(dbs):
    officer = user("officer")
    from app.collectives.models import Collective

    coll = dbs.scalar(select(Collective).where(Collective.village_code == officer.jurisdiction_code)
                      .order_by(Collective.fbfbm))
    e = assert_refused("market.collective.resolution", ops.create_collective_listing, officer,
                 coll.fbfbm, "asset", "", START, dt.date(2031, 12, 31), "1", "20000.00", "annual",
                 asset_description="烘干房一座", asset_valuation="300000")
    assert "art 52" in e.source("en")
    assert_refused("market.collective.officer", ops.create_collective_listing, user("farmer"),
             coll.fbfbm, "asset", "成员大会决议 2026-3", START, dt.date(2031, 12, 31), "1",
             "20000.00", "annual", asset_description="烘干房", asset_valuation="300000")
    x = ops.create_collective_listing(officer, coll.fbfbm, "asset", "成员大会决议 2026-3", START,
                                      dt.date(2031, 12, 31), "1", "20000.00", "annual",
                                      asset_description="烘干房一座", asset_valuation="300000")
    ops.submit(officer, x, today=TODAY)
    ops.review(user("exchange"), x, True, today=TODAY)
    assert x.status == "announced" and x.item_class == "collective" and not x.parcels


# ------------------------------------------------------------------ applicants


def test_applicants_identity_age_priority_and_company_review(dbs, holder):
    hh, fields, right = holder
    x = _list(right, fields[:2])
    _consent_all(x)
    ops.submit(user("farmer"), x, today=TODAY)
    ops.review(user("exchange"), x, True, today=TODAY)
    good = _valid_id(dt.date(1980, 5, 1), "123")
    assert_refused("market.applicant.id_number", ops.register_applicant, None, "person", "甲", "1",
             "会种地", id_number=good[:-1] + ("0" if good[-1] != "0" else "1"))
    bad = CREDIT_OK[:-1] + ("4" if CREDIT_OK[-1] != "4" else "5")
    e = assert_refused("market.applicant.credit_code", ops.register_applicant, None, "company", "公司",
                 "1", "有农机", credit_code=bad)
    assert "GB 32100" in e.source("en")
    young = TODAY.replace(year=TODAY.year - 18) + dt.timedelta(days=1)  # 17 until tomorrow
    old = TODAY.replace(year=TODAY.year - 71)
    for birth, seq in ((young, "111"), (old, "222")):
        a, _ = ops.register_applicant(None, "person", "乙", "1", "会种地",
                                      id_number=_valid_id(birth, seq))
        e = assert_refused("market.applicant.age", ops.apply, None, x, a, today=TODAY)
        assert "art 38" in e.source("en")
    # A member of the collective may register as priority holder; a non-member may not.
    outsider, _ = ops.register_applicant(None, "person", "丙", "1", "会种地",
                                         id_number=_valid_id(dt.date(1985, 1, 1), "333"))
    assert_refused("market.priority.not_member", ops.apply, None, x, outsider, True, today=TODAY)
    from app.collectives.models import Collective, Membership

    member = dbs.execute(select(Person).join(Membership, Membership.person_id == Person.id)
                         .join(Collective, Collective.id == Membership.collective_id)
                         .join(HouseholdMember, HouseholdMember.person_id == Person.id)
                         .join(Household, Household.id == HouseholdMember.household_id)
                         .where(Collective.fbfbm == x.fbfbm, Membership.status == "active",
                                Household.cbfbm != hh.cbfbm,
                                Person.birth_date.between(dt.date(1960, 1, 1),
                                                          dt.date(2000, 1, 1)))).scalars().first()
    m, _ = ops.register_applicant(None, "person", member.name, "1", "本村农户",
                                  id_number=member.id_number)
    pa = ops.apply(None, x, m, True, today=TODAY)
    assert pa.priority_holder and pa.member_person_id == member.id
    # A company above the county's area threshold: qualification review and a risk deposit.
    ops.set_setting(user("bureau"), "company_review_mu", x.county_code, 0)
    co, _ = ops.register_applicant(None, "company", "农业公司", "1", "规模经营",
                                   credit_code=CREDIT_OK)
    ca = ops.apply(None, x, co, today=TODAY)
    assert ca.status == "qualification" and ca.needs_review
    assert ca.risk_deposit_fen == ops.first_year_fen(x)  # at most one year's rent, by default
    ops.record_payment(None, ca, x.deposit_fen, "D-1")
    assert ca.status == "qualification"
    ops.qualify(user("bureau"), ca, True, "县级资格审查通过")
    assert ca.status == "registered"  # the risk deposit is still due
    ops.record_payment(None, ca, ca.risk_deposit_fen, "R-1", what="risk")
    assert ca.status == "qualified"
    assert ops.reconciliation()["ok"]
    # Outside the window nobody applies.
    late, _ = ops.register_applicant(None, "person", "丁", "1", "会种地",
                                     id_number=_valid_id(dt.date(1986, 1, 1), "444"))
    assert_refused("market.apply.window", ops.apply, None, x, late,
             today=x.announcement_ends_on + dt.timedelta(days=1))


def test_the_ledger_is_append_only_and_every_transaction_balances(dbs, holder):
    _, fields, right = holder
    x = _list(right, fields[:1])
    _consent_all(x)
    ops.submit(user("farmer"), x, today=TODAY)
    ops.review(user("exchange"), x, True, today=TODAY)
    a, _ = ops.register_applicant(None, "person", "王五", "1", "会种地",
                                  id_number=_valid_id(dt.date(1979, 1, 1), "555"))
    ap = ops.apply(None, x, a, today=TODAY)
    txn = ops.record_payment(None, ap, x.deposit_fen, "BANK-9")
    assert sum(e.amount_fen for e in txn.entries) == 0
    with pytest.raises(DBAPIError), dbs.begin_nested():
        dbs.execute(text("UPDATE market_ledger_entry SET amount_fen = 1 WHERE txn_id = :t"),
                    {"t": txn.id})
    with pytest.raises(DBAPIError), dbs.begin_nested():
        dbs.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
        dbs.execute(text("INSERT INTO market_ledger_entry (txn_id, account, amount_fen) "
                         "VALUES (:t, 'bank', 5)"), {"t": txn.id})
    ops.refund(None, ap, "REFUND-1")
    assert ops.held(ap) == 0 and ops.reconciliation()["ok"]


# ------------------------------------------------------------------ settled in town


def _settle(dbs, person):
    app_id = dbs.execute(text("""
        INSERT INTO settlement_application (applicant_id, town_id, basis,
            property_certificate_no, living_there, residence_address, destination,
            destination_address, status, created_by, decided_by, decided_at)
        SELECT :p, min(id), 'owned_house', 'X', true, 'addr', 'house_address', 'addr',
               'approved', 'hukou', 'hukou', now() FROM settlement_town RETURNING id"""),
        {"p": person.id}).scalar()
    dbs.execute(text("""INSERT INTO hukou_move (person_id, application_id, to_division_code,
        to_address, moved_on, moved_by, txid) VALUES (:p, :a, '140403', '城区某小区', :d,
        'hukou', 0)"""), {"p": person.id, "a": app_id, "d": TODAY - dt.timedelta(days=100)})
    dbs.execute(text("UPDATE person SET hukou_division_code = '140403' WHERE id = :p"),
                {"p": person.id})


def _journey(dbs, right, fields):
    x = _list(right, fields[:1])
    _consent_all(x)
    ops.submit(user("farmer"), x, today=TODAY)
    ops.review(user("exchange"), x, True, today=TODAY)
    return (x.status, x.listed_via, x.announced_on, x.announcement_ends_on, x.deposit_fen,
            x.area_mu == fields[0].scmjm)


def test_a_settled_household_lists_and_is_announced_exactly_like_any_other(dbs, holder):
    hh, fields, right = holder
    with dbs.begin_nested() as sp:
        before = _journey(dbs, right, fields)
        sp.rollback()
    for m in hh.current_members:
        _settle(dbs, m.person)
    dbs.expire_all()
    after = _journey(dbs, right, fields)
    assert after == before and after[0] == "announced"


SETTLEMENT_WORDS = ("settle", "hukou", "落户", "户口", "户籍", "进城", "residence_permit", "居住证")


def test_no_market_form_or_api_field_asks_about_settlement(app, login_as, dbs, holder):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    templates = sorted((root / "templates" / "market").glob("*.html"))
    assert templates
    for t in templates:
        src = t.read_text().lower()
        for w in SETTLEMENT_WORDS:
            assert w not in src, (t.name, w)
    spec = login_as("exchange").get("/api/openapi.json").get_json()
    market = {p: v for p, v in spec["paths"].items() if p.startswith("/api/market")}
    assert market
    import json

    blob = json.dumps(market, ensure_ascii=False).lower()
    schemas = json.dumps({k: v for k, v in spec["components"]["schemas"].items()
                          if k.startswith("Market")}, ensure_ascii=False).lower()
    assert schemas != "{}"
    for w in SETTLEMENT_WORDS:
        assert w not in blob and w not in schemas, w
    # The rendered forms too.
    _, fields, right = holder
    c = login_as("farmer")
    for url in (f"/market/listings/new?right_uid={right.uid}", "/me/market"):
        html = c.get(url).get_data(as_text=True).lower()
        body = html.split("<main", 1)[-1].split("</main>", 1)[0]  # not the site's footer
        assert "<form" in body
        for w in ("落户", "户口", "settle", "进城"):
            assert w not in body, (url, w)


# ------------------------------------------------------------------ concurrency


def test_two_connections_listing_one_parcel_at_once_the_database_lets_one_through(app):
    """Two live listings of one parcel for overlapping periods, written at the same time by two
    connections: the exclusion constraint makes the second wait for the first and refuses it."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    engine = create_engine(url)
    uid = 990000000 + (dt.datetime.now().microsecond % 1000)
    ids = []
    try:
        with engine.begin() as c:
            for start in (dt.date(2027, 1, 1), dt.date(2029, 1, 1)):
                lid = c.execute(text("""
                    INSERT INTO market_listing (kind, item_class, title, right_uid,
                      household_code, fbfbm, county_code, township_code, listed_by, listed_via,
                      term_start, term_end, land_use, reserve_price, payment_schedule,
                      retransfer_allowed, deposit_fen, method, announcement_days,
                      reannounce_max, status)
                    VALUES ('lease', 'household', 'race', 1, '140404101201010001',
                      '14040410120101', '140404', '140404101', 'test', 'own', :s, :e, '1', 800,
                      'annual', false, 0, 'auction', 10, 1, 'draft') RETURNING id"""),
                    {"s": start, "e": start.replace(year=start.year + 5)}).scalar()
                c.execute(text("""INSERT INTO market_listing_parcel (listing_id, parcel_uid,
                    parcel_code, area_mu, term_start, term_end)
                    VALUES (:l, :u, 'X', 1, '2000-01-01', '2000-01-02')"""), {"l": lid, "u": uid})
                ids.append(lid)
        c1, c2 = engine.connect(), engine.connect()
        t1, t2 = c1.begin(), c2.begin()
        c1.execute(text("UPDATE market_listing SET status = 'review' WHERE id = :i"),
                   {"i": ids[0]})
        outcome = {}

        def second():
            try:
                c2.execute(text("UPDATE market_listing SET status = 'review' WHERE id = :i"),
                           {"i": ids[1]})
                t2.commit()
                outcome["second"] = "committed"
            except IntegrityError as exc:
                t2.rollback()
                outcome["second"] = str(exc.orig)

        th = threading.Thread(target=second)
        th.start()
        th.join(timeout=1.0)
        assert th.is_alive(), "the second writer must wait for the first"
        t1.commit()
        th.join(timeout=10)
        c1.close()
        c2.close()
        assert "market_listing_parcel_no_overlap" in outcome["second"]
        with engine.connect() as c:
            live = c.execute(text("SELECT listing_id FROM market_listing_parcel "
                                  "WHERE parcel_uid = :u AND live"), {"u": uid}).scalars().all()
        assert live == [ids[0]]
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM market_listing_parcel WHERE listing_id = ANY(:i)"),
                      {"i": ids})
            c.execute(text("DELETE FROM market_listing WHERE id = ANY(:i)"), {"i": ids})
        engine.dispose()


def test_listing_model_and_status_labels_cover_every_status():
    from app.market.models import STATUSES

    assert set(STATUSES) == set(ops.STATUS_LABELS)
    assert Listing.__tablename__ == "market_listing"


def test_term_in_the_past_and_parcels_outside_the_right_are_refused(dbs, holder):
    hh, fields, right = holder
    x = _list(right, fields[:1], term_start=TODAY - dt.timedelta(days=1))
    _consent_all(x)
    e = assert_refused("market.term.start", ops.submit, user("farmer"), x, today=TODAY)
    assert str(TODAY) in e.message("en")
    stranger = dbs.scalar(select(Parcel).where(Parcel.kind == "contract",
                                               Parcel.household_code != hh.cbfbm,
                                               Parcel.end_lifespan.is_(None)))
    e = assert_refused("market.parcel.not_in_right", _list, right, [stranger])
    assert stranger.code in e.message("en") and "art 36" in e.source("en")


def test_close_due_runs_on_the_markets_clock(app, dbs, holder):
    """`flask market close-due` on a clock set past the window (no sleeping): the listing
    without applicants is announced again from that day."""
    _, fields, right = holder
    x = _list(right, fields[:1], reannounce_max=1)
    _consent_all(x)
    ops.submit(user("farmer"), x, today=TODAY)
    ops.review(user("exchange"), x, True, today=TODAY)
    later = x.announcement_ends_on + dt.timedelta(days=3)
    app.config["MARKET_CLOCK"] = lambda: dt.datetime.combine(later, dt.time(9), clock.CHINA)
    try:
        assert clock.today() == later
        out = app.test_cli_runner().invoke(args=["market", "close-due"])
        assert out.exit_code == 0, out.output
        assert f"listing {x.id}: announced" in out.output
    finally:
        app.config.pop("MARKET_CLOCK")
    dbs.refresh(x)
    assert x.reannounce_count == 1 and x.announced_on >= later
