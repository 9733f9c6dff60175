"""Role × jurisdiction matrix over every route of the application."""
import pytest
from sqlalchemy import select

from app.access import ROLES, AccessSpec, reaches
from app.auth.operations import issue_api_token
from app.collectives.models import Collective, Membership
from app.imports.models import ImportBatch, ImportFeature, ImportRecord
from app.jobs.models import Job
from app.parcels.models import Parcel
from app.people.models import Household
from tests.conftest import csrf_from, user

ACCOUNTS = {"farmer": "farmer", "collective_officer": "officer", "bureau_staff": "bureau",
            "exchange_operator": "exchange", "hukou_officer": "hukou", "auditor": "auditor",
            "compliance_supervisor": "supervisor", "admin": "admin"}
# Documentation and static files that anyone may fetch.
OPEN_ENDPOINTS = {"static", "vendor", "api-docs.openapi_json", "api-docs.openapi_swagger_ui"}


def spec_of(view) -> AccessSpec | None:
    while view is not None:
        if getattr(view, "access_spec", None) is not None:
            return view.access_spec
        view = getattr(view, "__wrapped__", None)
    return None


def test_every_route_declares_its_access(app):
    missing = [r.endpoint for r in app.url_map.iter_rules()
               if r.endpoint not in OPEN_ENDPOINTS and spec_of(app.view_functions[r.endpoint]) is None]
    assert missing == []


def test_jurisdiction_prefixes():
    assert reaches("140400", "140404101201")  # the city reaches a village
    assert reaches("140404", "14040410120101")  # a county reaches a villagers' group
    assert reaches("140404101201", "14040410120102")
    assert not reaches("140404101201", "140404101202")
    assert not reaches("140404", "140405101201")
    assert not reaches("140404", "140400")  # a county does not reach its city
    assert not reaches("140404", None)


@pytest.fixture()
def sample(dbs):
    """Objects in the first village (the demo officer's and farmer's) and in the second."""
    farmer = user("farmer")
    own_hh = dbs.scalar(select(Household).where(Household.cbfbm == farmer.household_code))
    officer = user("officer")
    coll = dbs.scalar(select(Collective).where(Collective.village_code == officer.jurisdiction_code)
                      .order_by(Collective.fbfbm))
    other_village = user("officer2").jurisdiction_code
    other_coll = dbs.scalar(select(Collective).where(Collective.village_code == other_village)
                            .order_by(Collective.fbfbm))
    other_hh = dbs.scalar(select(Household).where(Household.collective_id == other_coll.id))
    m = dbs.scalar(select(Membership).where(Membership.collective_id == coll.id,
                                            Membership.person_id == farmer.person_id))
    other_m = dbs.scalar(select(Membership).where(Membership.collective_id == other_coll.id))
    own = {"collective_id": coll.id, "person_id": farmer.person_id, "household_id": own_hh.id,
           "membership_id": m.id, "code": "en", "user_id": user("farmer").id,
           "parcel_id": _parcel_of(dbs, own_hh.cbfbm), "village": coll.village_code,
           **_import_rows(dbs, coll.fbfbm, "bureau")}
    other = {"collective_id": other_coll.id, "person_id": other_hh.head_person_id,
             "household_id": other_hh.id, "membership_id": other_m.id, "code": "en",
             "user_id": user("farmer").id, "parcel_id": _parcel_of(dbs, other_hh.cbfbm),
             "village": other_coll.village_code,
             **_import_rows(dbs, other_coll.fbfbm, "officer2")}
    tile = {"z": 14, "x": 13340, "y": 6440}
    own.update(_campaign_rows(dbs, own_hh))
    other.update(_campaign_rows(dbs, other_hh))
    own.update(_market_rows(dbs, own_hh))
    other.update(_market_rows(dbs, other_hh))
    own.update(_membership_rows(dbs, coll))
    other.update(_membership_rows(dbs, other_coll))
    return {"own": {**own, **tile}, "other": {**other, **tile}}


def _campaign_rows(dbs, hh):
    """A campaign on notice with an objection, and a certified right, in the household's group."""
    import datetime as dt
    import hashlib

    from app.campaigns import operations as campaigns
    from app.certificates import operations as certificates
    from app.rights import operations as rights

    c = campaigns.open_campaign("bureau", hh.cbfbm[:14], None, "t")
    campaigns.publish_notice("bureau", c, start=dt.date.today())
    o = campaigns.lodge_objection("bureau", c, "area", "t", "t")
    fields = dbs.scalars(select(Parcel).where(Parcel.household_code == hh.cbfbm,
                                              Parcel.kind == "contract")).all()
    r = rights.register_land_contract("bureau", hh.cbfbm, hh.cbfbm + "J",
                                      [(p, None) for p in fields], dt.date(1999, 1, 1),
                                      dt.date(2058, 12, 31))
    cert = certificates.issue("bureau", r)
    from app.settlement.models import SettlementApplication, SettlementTown
    from app.withdrawal import operations as withdrawals
    from app.withdrawal.models import Withdrawal

    town = dbs.scalar(select(SettlementTown).order_by(SettlementTown.id))
    a = SettlementApplication(applicant_id=hh.head_person_id, town_id=town.id,
                              basis="owned_house", property_certificate_no="x", living_there=True,
                              residence_address="a", destination="house_address",
                              destination_address="a", created_by="hukou")
    dbs.add(a)
    dbs.flush()
    from app.settlement.models import SettlementMember

    dbs.add(SettlementMember(application_id=a.id, person_id=hh.head_person_id, relation="self",
                             from_division_code=hh.cbfbm[:12]))
    withdrawals.enable_pilot("bureau", hh.cbfbm[:6])
    statement = b"%PDF signed statement"  # in person: the file kept, a second officer witnessing
    w = Withdrawal(right_uid=r.uid, right_kind="land_contract", household_code=hh.cbfbm,
                   county_code=hh.cbfbm[:6], started_by="bureau", started_via="in_person",
                   statement_file=statement, witnessed_by="officer",
                   statement_sha256=hashlib.sha256(statement).hexdigest(),
                   started_on=dt.date.today(), land_to="collective",
                   cooling_until=dt.date.today() + dt.timedelta(days=30))
    dbs.add(w)
    dbs.flush()
    from app.reports import operations as reports

    rep = reports.submit("public", "public", "t", division_code=hh.cbfbm)
    return {"report_id": rep.id, "campaign_id": c.id, "objection_id": o.id, "certificate_id": cert.id,
            "token": cert.token, "name": f"campaign-{c.id}-job-0.zip", "application_id": a.id,
            "withdrawal_id": w.id}


def _market_rows(dbs, hh):
    """A listing of the household's contract (by the exchange, with a mandate), an application
    with its key, and an encumbrance on the right."""
    import datetime as dt

    from app.market import operations as market
    from app.rights.models import Right

    right = dbs.scalar(select(Right).where(Right.holder_household_code == hh.cbfbm,
                                           Right.kind == "land_contract",
                                           Right.end_lifespan.is_(None)))
    ex = user("exchange")
    m = market.upload_mandate(ex, hh.cbfbm, "exchange", "交易中心", "出租", dt.date.today(),
                              dt.date.today() + dt.timedelta(days=365), "m.txt", b"mandate")
    x = market.create_listing(ex, right, "lease", [right.parcels[0].parcel_code],
                              dt.date.today() + dt.timedelta(days=60),
                              dt.date(2040, 12, 31), "1", "800", "annual", mandate=m)
    for p in market.missing_consents(x):
        market.consent(ex, x, p, b"signed")
    market.submit(ex, x)
    market.review(ex, x, True)
    first = "140404" + "19800101" + "777"
    from app.people.idnumber import check_digit

    a, key = market.register_applicant(None, "person", "申请人", "1", "会种地",
                                       id_number=first + check_digit(first))
    ap = market.apply(None, x, a)
    e = market.record_encumbrance(ex, right, "seizure", "法院", "(2026)晋0404执1号", "t")
    # Trading objects (market II): ids that exist nowhere, so an allowed role reaches the view
    # (404), a refused one is stopped by the access declaration (403) before it.
    none = 999_999_999
    return {"listing_id": x.id, "market_app_id": ap.id, "mandate_id": m.id,
            "encumbrance_id": e.id, "key": key, "right_uid": right.uid,
            "auction_id": none, "award_id": none, "contract_id": none, "cert_id": none,
            "tender_id": none, "bid_id": none, "fbfbm": x.fbfbm}


def _membership_rows(dbs, coll):
    """Shares, a paid distribution and a posted roll notice in the collective (issue 15)."""
    import datetime as dt

    from app.membership import operations as mops
    from app.membership.models import MemberAssembly, RollNotice

    q = mops.latest_quantification(coll) or mops.quantify(None, coll, dt.date(2025, 6, 30), 0)
    d = (mops.distributions(coll) or [mops.distribute(None, coll, 12345, dt.date(2025, 12, 1))])[0]
    met = dt.date(2025, 9, 1)
    a = MemberAssembly(collective_id=coll.id, meeting_date=met,
                       members_total=len(mops.members_on(coll, met)),  # the roll of that day
                       vote_num=2, vote_den=3, created_by="t")
    dbs.add(a)
    dbs.flush()
    n = RollNotice(collective_id=coll.id, assembly_id=a.id, posted_on=dt.date(2025, 9, 2),
                   ends_on=dt.date(2025, 9, 9), status="posted")
    dbs.add(n)
    dbs.flush()
    return {"distribution_id": d.id, "notice_id": n.id, "quantification_id": q.id,
            "assembly_id": a.id}


def _parcel_of(dbs, household_code):
    return dbs.scalar(select(Parcel.id).where(Parcel.household_code == household_code))


def _import_rows(dbs, fbfbm, creator):
    """A small staged delivery in the given group: a batch, a feature, a row and its job."""
    job = Job(kind="import", status="done", created_by=user(creator).id)
    dbs.add(job)
    dbs.flush()
    batch = ImportBatch(source="t", srid=4547, created_by=creator, job_id=job.id,
                        status="validated")
    dbs.add(batch)
    dbs.flush()
    feat = ImportFeature(batch_id=batch.id, layer="DK", fid=0, code=fbfbm + "00001",
                         attrs={}, status="quarantined")
    rec = ImportRecord(batch_id=batch.id, tbl="CBF", rownum=1, attrs={}, status="quarantined")
    dbs.add_all([feat, rec])
    dbs.flush()
    job.result = {"batch_id": batch.id}
    # an export of the group, finished (its file is not there: a reached route answers 410)
    export = Job(kind="export", status="done", created_by=user(creator).id,
                 params={"format": "gpkg", "scope": fbfbm, "full": False},
                 result={"file": "none.gpkg", "sha256": "0", "rows": 0, "bytes": 0})
    dbs.add(export)
    dbs.flush()
    return {"batch_id": batch.id, "feature_id": feat.id, "record_id": rec.id, "job_id": job.id,
            "export_id": export.id}


# Routes whose object is named in the query string.
QUERY = {"parcels.export": lambda v: f"?format=gpkg&scope={v['village']}",
         "api_exports.export": lambda v: f"?format=gpkg&scope={v['village']}",
         "market.new_listing": lambda v: f"?right_uid={v['right_uid']}"}


def _url(app, rule, values):
    with app.test_request_context():
        from flask import url_for

        url = url_for(rule.endpoint, **{a: values[a] for a in rule.arguments})
    return url + QUERY[rule.endpoint](values) if rule.endpoint in QUERY else url


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in OPEN_ENDPOINTS:
            continue
        spec = spec_of(app.view_functions[rule.endpoint])
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method, spec


def _call(client, method, url, token=None, bearer=None):
    if method == "GET":
        return client.get(url)
    data = {"csrf_token": token} if token else {}
    if url.startswith("/api/"):
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return client.open(url, method=method, json={}, headers=headers)
    return client.open(url, method=method, data=data)


def test_anonymous_is_sent_to_sign_in_everywhere_but_public_pages(app, client, sample):
    # A valid CSRF token of this (anonymous) session, so that a write is refused for want of a
    # sign-in, not for want of the token: CSRF alone must not make this test pass.
    token = csrf_from(client.get("/login").get_data(as_text=True))
    writes = 0
    for rule, method, spec in _routes(app):
        if spec.public:
            continue
        url = _url(app, rule, sample["own"])
        r = _call(client, method, url, token)
        if url.startswith("/api/"):
            assert r.status_code == 401, (method, url, r.status_code)
            assert r.mimetype == "application/problem+json"
        else:
            assert r.status_code == 302 and "/login" in r.headers["Location"], \
                (method, url, r.status_code)
            writes += method != "GET"
    assert writes >= 10


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(app, login_as, sample, role):
    c = login_as(ACCOUNTS[role])
    token = csrf_from(c.get("/login").get_data(as_text=True))
    bearer = issue_api_token(None, user(ACCOUNTS[role]))
    for rule, method, spec in _routes(app):
        if spec.public:
            continue
        url = _url(app, rule, sample["own"])
        r = _call(c, method, url, token, bearer)
        allowed = role == "admin" or role in spec.roles
        if not allowed:
            assert r.status_code == 403, (role, method, url, r.status_code)
        else:
            assert r.status_code != 403, (role, method, url, r.status_code)
            assert r.status_code < 500, (role, method, url, r.status_code)


@pytest.mark.parametrize("account", ["officer", "farmer"])
def test_scoped_routes_refuse_another_village(app, login_as, sample, account):
    """A village officer (or farmer) of village one can neither see nor change village two."""
    c = login_as(account)
    token = csrf_from(c.get("/login").get_data(as_text=True))
    bearer = issue_api_token(None, user(account))
    checked = 0
    for rule, method, spec in _routes(app):
        if not spec.scoped or (account == "farmer" and "farmer" not in spec.roles) or (
                account == "officer" and "collective_officer" not in spec.roles):
            continue
        url = _url(app, rule, sample["other"])
        r = _call(c, method, url, token, bearer)
        # a concealed route (another user's export job) answers as if it did not exist
        assert r.status_code == (404 if spec.conceal else 403), (account, method, url,
                                                                r.status_code)
        checked += 1
    assert checked >= 3


def test_officer_lists_only_their_village(login_as, dbs):
    officer = user("officer")
    c = login_as("officer")
    page = c.get("/collectives").get_data(as_text=True)
    own = dbs.scalars(select(Collective.fbfbm).where(
        Collective.village_code == officer.jurisdiction_code)).all()
    others = dbs.scalars(select(Collective.fbfbm).where(
        Collective.village_code != officer.jurisdiction_code)).all()
    assert own and all(code in page for code in own)
    assert others and not any(code in page for code in others)
    api = c.get("/api/collectives").get_json()
    assert {x["fbfbm"] for x in api} == set(own)


def test_forbidden_page_explains(login_as, sample):
    c = login_as("officer2")
    r = c.get(f"/collectives/{sample['own']['collective_id']}")
    assert r.status_code == 403
    body = r.get_data(as_text=True)
    assert 'id="forbidden"' in body and user("officer2").jurisdiction_code in body
