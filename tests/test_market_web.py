"""Market pages and API: the public market without login (filters, the map layer, masked
personal data), drafts hidden from the public, the JSON API with problem JSON naming the rule
and its article, and the demo data in every state, loaded once."""
import datetime as dt

from sqlalchemy import func, select

from app.auth.operations import issue_api_token
from app.market import clock
from app.market import operations as ops
from app.market.models import Listing
from app.people.idnumber import check_digit
from tests.conftest import csrf_from, user
from tests.test_market import _farmer_household

START = clock.today() + dt.timedelta(days=60)


def _announced(holder, parcels, **kw):
    hh, fields, right = holder
    x = ops.create_listing(user("farmer"), right, "lease", [p.code for p in parcels], START,
                           dt.date(2036, 12, 31), kw.pop("land_use", "1"),
                           kw.pop("reserve_price", "850.00"), "annual", **kw)
    for p in ops.missing_consents(x):
        ops.consent(user("farmer"), x, p, b"signed")
    ops.submit(user("farmer"), x)
    ops.review(user("exchange"), x, True)
    return x


def _id(birth, seq):
    first = f"140404{birth:%Y%m%d}{seq}"
    return first + check_digit(first)


def test_public_market_lists_maps_and_masks(client, dbs):
    holder = _farmer_household(dbs)
    _, fields, right = holder
    shown = _announced(holder, fields[:1], land_use="1", reserve_price="900.00")
    other = _announced(holder, fields[1:2], land_use="3", reserve_price="500.00")
    draft = ops.create_listing(user("farmer"), right, "lease", [fields[2].code if len(fields) > 2
                                                               else fields[0].code],
                               dt.date(2040, 1, 1), dt.date(2045, 12, 31), "1", "700", "annual")
    applicant, _ = ops.register_applicant(None, "person", "欧阳建国", "13812345678", "会种地",
                                          id_number=_id(dt.date(1980, 1, 2), "123"))
    ops.apply(None, shown, applicant)
    r = client.get("/market")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert f'data-listing="{shown.id}"' in html and f'data-listing="{other.id}"' in html
    assert f'data-listing="{draft.id}"' not in html
    crops = client.get("/market?use=1").get_data(as_text=True)
    assert f'data-listing="{shown.id}"' in crops and f'data-listing="{other.id}"' not in crops
    cheap = client.get("/market?max_price=600").get_data(as_text=True)
    assert f'data-listing="{other.id}"' in cheap and f'data-listing="{shown.id}"' not in cheap
    big = max(shown.area_mu, other.area_mu)
    none = client.get(f"/market?min_area={big + 1}").get_data(as_text=True)
    assert f'data-listing="{shown.id}"' not in none and f'data-listing="{other.id}"' not in none
    small = client.get(f"/market?max_area={shown.area_mu}&township={shown.township_code}"
                       f"&county={shown.county_code}").get_data(as_text=True)
    assert f'data-listing="{shown.id}"' in small
    assert f'data-listing="{shown.id}"' not in client.get(
        "/market?township=140404999").get_data(as_text=True)
    # Terms: shown and other run 2027–2036 (about ten years).
    years = (dt.date(2036, 12, 31) - START).days // 365
    assert f'data-listing="{shown.id}"' in client.get(
        f"/market?min_years={years - 1}&max_years={years + 1}").get_data(as_text=True)
    assert f'data-listing="{shown.id}"' not in client.get(
        f"/market?min_years={years + 2}").get_data(as_text=True)
    assert f'data-listing="{shown.id}"' not in client.get(
        f"/market?max_years={years - 2}").get_data(as_text=True)
    geo = client.get("/market/map.geojson").get_json()
    codes = {f["properties"]["code"] for f in geo["features"]}
    assert fields[0].code in codes and fields[1].code in codes
    assert all(f["properties"]["listing"] != draft.id for f in geo["features"])
    assert all(set(f["properties"]) == {"listing", "title", "price", "status", "code",
                                         "area_mu"} for f in geo["features"])
    page = client.get(f"/market/listings/{shown.id}").get_data(as_text=True)
    assert "欧阳**" in page and "欧阳建国" not in page
    assert applicant.id_number not in page and "13812345678" not in page
    assert client.get(f"/market/listings/{draft.id}").status_code == 404


def test_public_registration_gives_a_private_page(client, dbs):
    holder = _farmer_household(dbs)
    x = _announced(holder, holder[1][:1])
    page = client.get(f"/market/listings/{x.id}").get_data(as_text=True)
    number = _id(dt.date(1985, 6, 7), "246")
    r = client.post(f"/market/listings/{x.id}/apply", data={
        "csrf_token": csrf_from(page), "kind": "person", "name": "李明", "id_number": number,
        "phone": "13900000000", "farming_capacity": "十年种植"})
    assert r.status_code == 303
    mine = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "李明" in mine and number not in mine and number[:6] in mine
    assert client.get("/market/applicant/not-a-key").status_code == 404
    # A refusal is explained with its rule's article.
    bad = client.post(f"/market/listings/{x.id}/apply", data={
        "csrf_token": csrf_from(page), "kind": "person", "name": "少年",
        "id_number": _id(clock.today().replace(year=clock.today().year - 16), "135"),
        "phone": "1", "farming_capacity": "x"}, follow_redirects=True)
    assert "第三十八条" in bad.get_data(as_text=True)


def test_api_problem_json_names_rule_and_article(app, dbs):
    hh, fields, right = _farmer_household(dbs)
    c = app.test_client()
    farmer = {"Authorization": f"Bearer {issue_api_token(None, user('farmer'))}"}
    exchange = {"Authorization": f"Bearer {issue_api_token(None, user('exchange'))}"}
    body = {"right_uid": right.uid, "parcels": [fields[0].code], "term_start": str(START),
            "term_end": str(right.term_end + dt.timedelta(days=1)), "land_use": "1",
            "reserve_price": "850.00"}
    r = c.post("/api/market/listings", json=body, headers=farmer)
    assert r.status_code == 201, r.get_json()
    lid = r.get_json()["id"]
    x = dbs.get(Listing, lid)
    for p in ops.missing_consents(x):
        ops.consent(user("farmer"), x, p, b"signed")
    r = c.post(f"/api/market/listings/{lid}/submit", headers=farmer)
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    p = r.get_json()
    assert p["code"] == "market.term.exceeds_contract" and "art 38" in p["legal_source_en"]
    assert "第三十八条" in p["legal_source_zh"]
    body["term_end"] = "2036-12-31"
    body["parcels"] = [fields[1].code]
    lid = c.post("/api/market/listings", json=body, headers=farmer).get_json()["id"]
    x = dbs.get(Listing, lid)
    for p in ops.missing_consents(x):
        ops.consent(user("farmer"), x, p, b"signed")
    assert c.post(f"/api/market/listings/{lid}/submit", headers=farmer).status_code == 200
    assert c.post(f"/api/market/listings/{lid}/review", json={"decision": "accept"},
                  headers=farmer).status_code == 403
    r = c.post(f"/api/market/listings/{lid}/review", json={"decision": "accept"},
               headers=exchange)
    assert r.status_code == 200 and r.get_json()["status"] == "announced"
    public = c.get("/api/market/listings").get_json()
    assert lid in {x["id"] for x in public}
    r = c.post(f"/api/market/listings/{lid}/applications", headers=exchange, json={
        "kind": "company", "name": "某公司", "credit_code": "91350100M000100Y44",
        "phone": "1", "farming_capacity": "规模经营"})
    assert r.status_code == 422 and r.get_json()["code"] == "market.applicant.credit_code"
    r = c.post(f"/api/market/listings/{lid}/applications", headers=exchange, json={
        "kind": "company", "name": "某公司", "credit_code": "91350100M000100Y43",
        "phone": "1", "farming_capacity": "规模经营"})
    assert r.status_code == 201
    aid = r.get_json()["id"]
    deposit = dbs.get(Listing, lid).deposit_fen
    r = c.post(f"/api/market/applications/{aid}/payments", headers=exchange,
               json={"amount_fen": deposit, "reference": "BOC-1"})
    assert r.status_code == 201 and r.get_json()["deposit_held_fen"] == deposit
    ledger = c.get("/api/market/ledger", headers=exchange).get_json()
    assert ledger["reconciles"] and ledger["bank_fen"] == ledger["owed_fen"] >= deposit
    assert any(t["reference"] == "BOC-1" and sum(e["amount_fen"] for e in t["entries"]) == 0
               for t in ledger["transactions"])


def test_operator_pages_show_queue_applicants_and_ledger(login_as, dbs):
    holder = _farmer_household(dbs)
    x = _announced(holder, holder[1][:1])
    a, _ = ops.register_applicant(None, "person", "王强", "1", "会种地",
                                  id_number=_id(dt.date(1970, 3, 3), "357"))
    ap = ops.apply(None, x, a)
    c = login_as("exchange")
    assert f'data-listing="{x.id}"' in c.get("/market/review").get_data(as_text=True)
    page = c.get(f"/market/listings/{x.id}/manage").get_data(as_text=True)
    assert f'data-application="{ap.id}"' in page and a.id_number not in page
    r = c.post(f"/market/applications/{ap.id}/payment", data={
        "csrf_token": csrf_from(page), "amount": ops.fen(x.deposit_fen).replace(",", ""),
        "reference": "ICBC-1"})
    assert r.status_code == 303
    dbs.refresh(ap)
    assert ops.held(ap) == x.deposit_fen and ap.status == "qualified"
    ledger = c.get("/market/ledger").get_data(as_text=True)
    assert 'data-ok="yes"' in ledger and "ICBC-1" in ledger
    assert login_as("farmer").get("/market/ledger").status_code == 403


def test_demo_has_every_state_and_loads_once(app, dbs):
    from app.market.cli import load_demo

    before = set(dbs.scalars(select(Listing.id)))  # test_market_concurrency commits its own
    msg = load_demo()
    states = set(dbs.scalars(select(Listing.status).where(Listing.id.notin_(before))))
    assert {"draft", "review", "announced", "competition", "negotiation"} <= states, msg
    announced = dbs.scalars(select(Listing).where(Listing.status == "announced")).all()
    assert any(x.applications for x in announced)
    n = dbs.scalar(select(func.count(Listing.id)))
    assert load_demo() == "market demo already present"
    assert dbs.scalar(select(func.count(Listing.id))) == n
    assert ops.reconciliation()["ok"]
