"""The market's whole first half in headless Debian Chromium: a farmer lists two parcels of
their contract from their own page, a co-holder consents from their own account, the exchange
operator reviews and announces, the public market page (no login) shows the listing on the
map, two applicants register and lodge deposits, and the ledger shows both deposits.

The live server sees only committed data, so the test commits a household of the second
village that no other test touches (the third one with two contract parcels and an adult
co-holder besides the head), with its contract right and two farmer accounts."""
import datetime as dt

from playwright.sync_api import expect
from sqlalchemy import select, text

from app.extensions import db
from tests.conftest import PASSWORD


def _valid_id(birth: dt.date, seq: str) -> str:
    from app.people.idnumber import check_digit

    first = f"140404{birth:%Y%m%d}{seq}"
    return first + check_digit(first)


def _credit_code(body: str = "92140404MA0L7788K") -> str:
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    s = sum(chars.index(ch) * pow(3, i, 31) for i, ch in enumerate(body))
    return body + chars[(31 - s % 31) % 31]


def _setup(app):
    from app.auth import operations as auth
    from app.auth.models import User
    from app.parcels.models import Parcel
    from app.people.models import Household
    from app.rights import operations as rights

    with app.app_context():
        today = dt.date.today()
        codes = db.session.execute(text("""
            SELECT h.cbfbm FROM household h
            WHERE h.cbfbm LIKE (SELECT min(village_code) FROM collective
                                WHERE village_code > (SELECT min(village_code) FROM collective))
                               || '%'
              AND (SELECT count(*) FROM parcel p WHERE p.household_code = h.cbfbm
                   AND p.kind = 'contract' AND p.end_lifespan IS NULL) >= 2
              AND EXISTS (SELECT 1 FROM household_member m JOIN person pe ON pe.id = m.person_id
                          WHERE m.household_id = h.id AND m.left_on IS NULL AND m.is_coholder
                            AND pe.id <> h.head_person_id
                            AND pe.birth_date <= :adult)
            ORDER BY h.id OFFSET 2 LIMIT 1"""), {"adult": today.replace(year=today.year - 19)})
        code = codes.scalar()
        hh = db.session.scalar(select(Household).where(Household.cbfbm == code))
        right = next((r for r in rights.current_rights(code) if r.kind == "land_contract"), None)
        if right is None:
            fields = db.session.scalars(select(Parcel).where(
                Parcel.household_code == code, Parcel.kind == "contract",
                Parcel.end_lifespan.is_(None))).all()
            right = rights.register_land_contract("bureau", code, code + "J",
                                                  [(p, None) for p in fields],
                                                  dt.date(1999, 1, 1), dt.date(2058, 12, 31),
                                                  reason="确权")
        co = next(m.person for m in hh.current_members if m.is_coholder and
                  m.person_id != hh.head_person_id and
                  m.person.birth_date <= today.replace(year=today.year - 19))
        for username, person in (("mkfarmer", hh.head), ("mkcoholder", co)):
            if db.session.scalar(select(User.id).where(User.username == username)) is None:
                auth.create_user(None, username, PASSWORD, "farmer", person.name,
                                 person_id=person.id, household_code=code, reason="test")
        db.session.commit()
        info = {"code": code, "uid": right.uid, "coholder": co.id, "coholder_name": co.name}
        db.session.remove()
        return info


def _login(page, live_server, username):
    page.goto(live_server + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")


def test_list_consent_review_announce_map_apply_deposit_ledger(app, browser, live_server):
    s = _setup(app)
    term_start = dt.date.today() + dt.timedelta(days=60)

    # The farmer lists two parcels of their contract from 我的权益.
    farmer = browser.new_context(locale="zh-CN").new_page()
    _login(farmer, live_server, "mkfarmer")
    farmer.goto(live_server + "/me")
    farmer.click(f"a.list-for-transfer[href$='right_uid={s['uid']}']")
    boxes = farmer.locator("input[name=parcel]")
    assert boxes.count() >= 2
    chosen = [boxes.nth(0).get_attribute("value"), boxes.nth(1).get_attribute("value")]
    # One from the sketch (map selection), one from the code list.
    farmer.locator(f"#parcel-map svg path[data-code='{chosen[0]}']").dispatch_event("click")
    expect(boxes.nth(0)).to_be_checked()
    expect(farmer.locator("#parcel-map svg path.chosen")).to_have_count(1)
    boxes.nth(1).check()
    expect(farmer.locator("#parcel-map svg path.chosen")).to_have_count(2)
    farmer.fill("input[name=term_start]", term_start.isoformat())
    farmer.fill("input[name=term_end]", "2036-12-31")
    farmer.fill("input[name=reserve_price]", "850.00")
    farmer.click("#listing-save")
    expect(farmer.locator("#listing-status")).to_have_attribute("data-status", "draft")
    listing_url = farmer.url
    listing_id = int(listing_url.rstrip("/").split("/")[-2])
    for code in chosen:
        expect(farmer.locator("body")).to_contain_text(code)

    # The co-holder consents from their own account.
    co = browser.new_context(locale="zh-CN").new_page()
    _login(co, live_server, "mkcoholder")
    co.goto(live_server + "/me/market")
    co.click("#my-consents button.consent-button")
    expect(co.locator(".flash.success")).to_contain_text(s["coholder_name"])
    co.context.close()

    # Any other adult co-holder's signed statement is uploaded by the farmer; then submit.
    farmer.goto(listing_url)
    forms = farmer.locator("#consents form")
    while forms.count():
        forms.first.locator("input[type=file]").set_input_files(files=[{
            "name": "同意书.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 signed"}])
        forms.first.locator("button").click()
        farmer.goto(listing_url)
        forms = farmer.locator("#consents form")
    expect(farmer.locator(f"#consents tr[data-person='{s['coholder']}'] .consented")).to_have_count(1)
    farmer.click("#submit-listing")
    expect(farmer.locator("#listing-status")).to_have_attribute("data-status", "review")
    farmer.context.close()

    # The exchange operator reviews and announces.
    op = browser.new_context(locale="zh-CN").new_page()
    _login(op, live_server, "exchange")
    op.click("#menu-market summary")  # the menu group opens, then its entry
    op.click("#nav-market-review")
    op.click(f"#review-queue tr[data-listing='{listing_id}'] a")
    op.click("#review-accept")
    expect(op.locator("#listing-status")).to_have_attribute("data-status", "announced")
    window = op.locator("#listing-window").inner_text()
    assert "—" in window

    # The public market page, without login, shows the listing and its parcels on the map.
    pub = browser.new_context(locale="zh-CN").new_page()
    pub.goto(live_server + "/market")
    expect(pub.locator(f"#market-listings tr[data-listing='{listing_id}']")).to_have_count(1)
    pub.wait_for_function(
        "() => window.marketMap && window.marketMap.loaded() && window.marketMap.queryRenderedFeatures("
        "{layers: ['listed-fill']}).length > 0", timeout=30000)
    shown = pub.evaluate(
        f"() => [...new Set(window.marketMap.queryRenderedFeatures({{layers: ['listed-fill']}})"
        f".filter(f => f.properties.listing === {listing_id}).map(f => f.properties.code))]")
    assert sorted(shown) == sorted(chosen)
    pub.screenshot(path=str(live_server.artifacts / "market.png"), full_page=True)
    pub.click(f"#market-listings tr[data-listing='{listing_id}'] a")
    expect(pub.locator("#sketch svg")).to_have_count(1)
    deposit_text = pub.locator("#listing-deposit").inner_text()

    # Two applicants register during the announcement.
    applicants = [("person", "赵卫东", {"id_number": _valid_id(dt.date(1981, 3, 9), "517")}),
                  ("cooperative", "长治市上党区禾丰种植专业合作社",
                   {"credit_code": _credit_code()})]
    keys = []
    for kind, name, ident in applicants:
        pub.goto(live_server + f"/market/listings/{listing_id}")
        pub.select_option("#apply-form select[name=kind]", kind)
        pub.fill("#apply-form input[name=name]", name)
        for field, value in ident.items():
            pub.fill(f"#apply-form input[name={field}]", value)
        pub.fill("#apply-form input[name=phone]", "13800001111")
        pub.fill("#apply-form textarea[name=farming_capacity]", "种植经验十年，农机三台")
        pub.click("#apply-submit")
        expect(pub.locator("#my-applications tr[data-application]")).to_have_count(1)
        keys.append(pub.locator("#applicant-key").inner_text())
    pub.context.close()

    # The operator records both deposits as received, each with the bank's reference.
    op.goto(live_server + f"/market/listings/{listing_id}/manage")
    rows = op.locator("#applications tr[data-application]")
    expect(rows).to_have_count(2)
    refs = ["ICBC-7001", "ABC-7002"]
    for i, ref in enumerate(refs):
        row = op.locator("#applications tr[data-application]").nth(i)
        row.locator("input[name=reference]").fill(ref)
        row.locator(".payment-form button").click()
        expect(op.locator(".flash.success")).to_have_count(1)
    for i in range(2):
        expect(op.locator("#applications tr[data-application] .app-status").nth(i)) \
            .to_have_text("已具备资格")

    # The ledger shows both deposits and reconciles.
    op.goto(live_server + "/market/ledger")
    expect(op.locator("#reconciliation")).to_have_attribute("data-ok", "yes")
    lodged = op.locator("#ledger tr.ledger-row[data-kind=deposit_lodged]")
    texts = " ".join(lodged.all_inner_texts())
    for ref in refs:
        assert ref in texts
    amount = deposit_text.split()[0]
    assert texts.count(amount) >= 4  # each deposit: the bank's debit and the account's credit
    op.screenshot(path=str(live_server.artifacts / "market-ledger.png"), full_page=True)

    # Each applicant's own page shows the deposit held.
    page = browser.new_context(locale="zh-CN").new_page()
    for key in keys:
        page.goto(live_server + f"/market/applicant/{key}")
        expect(page.locator("#my-applications")).to_contain_text(amount)
    page.context.close()
    op.context.close()
