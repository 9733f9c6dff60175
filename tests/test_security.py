"""Issue 12: each finding reproduced as the attacker did it, and now refused.

(The import/upload findings — VRT and /vsicurl/ reads, zip bombs, vertex limits — are tested
with the import package.)  Expectations are derived from the records each test reads."""
from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
import zipfile

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.auth import operations as auth_ops
from app.collectives.models import Collective, Membership
from app.people.idnumber import WEIGHTS, check_digit
from app.people.models import Household, HouseholdMember, Person
from tests.conftest import PASSWORD, csrf_from, login, user


def _post(client, url, data, page_url=None, **kw):
    page = client.get(page_url or url).get_data(as_text=True)
    return client.post(url, data={**data, "csrf_token": csrf_from(page)}, **kw)


def _audits(dbs, action):
    return dbs.scalars(select(AuditLog).where(AuditLog.action == action)
                       .order_by(AuditLog.id)).all()


# ---------------------------------------------------------------------------------------------
# Point 2: an attacker rebuilds ID numbers from a mask and the fields shown beside it.

_MASKED = re.compile(r"(?<![0-9*X])([0-9]{6}[0-9*]{10}[0-9*X]{2})(?![0-9*X])")
_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_YEAR = re.compile(r"<(?:td|dd)>\s*((?:19|20)\d{2})\s*</(?:td|dd)>")


def rebuild(masked: str, birth: dt.date | None = None, year: int | None = None,
            limit: int = 2) -> list[str]:
    """Every full ID number consistent with a mask and a birth date (or year), up to `limit`.
    One result means the number is rebuilt."""
    if "*" not in masked:
        return [masked]
    if "*" in masked[:6]:
        return ["?"] * limit  # the region unknown: far too many
    if birth is not None:
        dates = [birth]
    elif year is not None:
        d0 = dt.date(year, 1, 1)
        dates = [d0 + dt.timedelta(days=i) for i in range((dt.date(year + 1, 1, 1) - d0).days)]
    else:
        return ["?"] * limit
    out = []
    seq_choices = [[c] if c != "*" else list("0123456789") for c in masked[14:17]]
    for d in dates:
        ds = d.strftime("%Y%m%d")
        if any(m not in ("*", c) for m, c in zip(masked[6:14], ds, strict=True)):
            continue
        for seq in itertools.product(*seq_choices):
            first17 = masked[:6] + ds + "".join(seq)
            cd = check_digit(first17)
            if masked[17] in ("*", cd):
                out.append(first17 + cd)
                if len(out) >= limit:
                    return out
    return out


def _facts(html: str):
    """Per table row (or the whole page when it has no table): masked IDs, dates and years."""
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S) or [html]
    for row in rows:
        ids = _MASKED.findall(row)
        if not ids:
            continue
        dates = []
        for y, m, d in _DATE.findall(row):
            try:
                dates.append(dt.date(int(y), int(m), int(d)))
            except ValueError:
                pass
        years = [int(y) for y in _YEAR.findall(row)]
        yield ids, dates, years


def _attack(facts, true_ids: set[str]) -> tuple[int, list[str]]:
    """Try every mask with every date and year beside it; returns (masks tried, rebuilt)."""
    tried, rebuilt = 0, []
    for ids, dates, years in facts:
        for m in ids:
            tried += 1
            for d in dates:
                cands = rebuild(m, birth=d)
                if len(cands) == 1 and cands[0] in true_ids:
                    rebuilt.append(cands[0])
            for y in years:
                cands = rebuild(m, year=y)
                if len(cands) == 1 and cands[0] in true_ids:
                    rebuilt.append(cands[0])
    return tried, rebuilt


def test_the_attack_works_on_the_old_mask():
    """The reconstruction is real: region + hidden birth date + last four, with the birth date
    beside it, gives exactly the number back (the finding)."""
    n = "11010519491231002X"
    old = n[:6] + "********" + n[-4:]
    assert rebuild(old, birth=dt.date(1949, 12, 31)) == [n]
    assert sum(int(c) * w for c, w in zip(n[:17], WEIGHTS, strict=True)) % 11 == 2  # valid


@pytest.mark.parametrize("username", ["auditor", "bureau", "officer", "hukou", "farmer"])
def test_no_id_number_can_be_rebuilt_from_what_a_role_reads(login_as, dbs, username):
    c = login_as(username)
    true_ids = set(dbs.scalars(select(Person.id_number)))
    facts = []
    u = user(username)
    if u.role == "farmer":
        pages = ["/me", f"/people/{u.person_id}"]
        hh = dbs.scalar(select(Household).where(Household.cbfbm == u.household_code))
        pages.append(f"/households/{hh.id}")
    else:
        pages = ["/people", "/people?page=2"]
        listed = c.get("/people").get_data(as_text=True)
        ids = [int(x) for x in re.findall(r'href="/people/(\d+)"', listed)][:8]
        pages += [f"/people/{i}" for i in ids]
        hh_ids = dbs.scalars(select(HouseholdMember.household_id)
                             .where(HouseholdMember.person_id.in_(ids))).all()[:3]
        pages += [f"/households/{i}" for i in hh_ids]
        if u.jurisdiction_code:
            coll = dbs.scalar(select(Collective).where(
                Collective.fbfbm.like(u.jurisdiction_code[:12] + "%")).order_by(Collective.id))
            if coll is not None:
                pages.append(f"/collectives/{coll.id}")  # the roll: began_on is a birth date
    for p in pages:
        r = c.get(p)
        if r.status_code == 200:
            facts += list(_facts(r.get_data(as_text=True)))
    api = c.get("/api/persons?per_page=200")
    if api.status_code == 200:
        for item in api.get_json()["items"]:
            dates = [dt.date.fromisoformat(item["birth_date"])] if item.get("birth_date") else []
            years = [item["birth_year"]] if item.get("birth_year") else []
            facts.append(([item["id_number"]], dates, years))
    tried, rebuilt = _attack(facts, true_ids)
    assert tried >= 3, "the attack must have had masks to work on"
    assert rebuilt == []


def _export(client, scope, **extra):
    q = "&".join(f"{k}={v}" for k, v in {"format": "nyt", "scope": scope, **extra}.items())
    return client.get(f"/parcels/export?{q}")


def _tables(data: bytes) -> dict[str, list[dict]]:
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if name.endswith(".csv"):
                raw = z.read(name)
                try:
                    text = raw.decode("utf-8-sig")
                except UnicodeDecodeError:
                    text = raw.decode("gbk")
                out[name.rsplit("/", 1)[-1]] = list(csv.DictReader(io.StringIO(text)))
    return out


def test_default_export_masks_and_full_export_is_a_bureau_privilege_with_purpose(login_as, dbs):
    village = user("officer").jurisdiction_code
    full_ids = set(dbs.scalars(select(Person.id_number)))
    phones = set(p for p in dbs.scalars(select(Household.phone)) if p)

    officer = login_as("officer")
    r = _export(officer, village)
    assert r.status_code == 200 and r.mimetype == "application/zip"
    tables = _tables(r.data)
    members = tables["CBF_JTCY.csv"]
    assert members and all("*" in row["CYZJHM"] for row in members)
    assert not {row["CYZJHM"] for row in members} & full_ids
    assert not {row["CBFZJHM"] for row in tables["CBF.csv"]} & full_ids
    assert not {row["LXDH"] for row in tables["CBF.csv"]} & phones
    entry = _audits(dbs, "parcel.export")[-1]
    assert entry.actor_name == "officer" and entry.changes["scope"] == village
    assert entry.changes["rows"] >= len(members) + len(tables["CBF.csv"])
    assert entry.changes["unmasked"] is False

    # Full numbers: refused to the collective officer and the auditor, and to the bureau
    # without a stated purpose.
    for who, extra in (("officer", {"full": "1", "purpose": "内部核对承包方信息"}),
                       ("auditor", {"full": "1", "purpose": "内部核对承包方信息"}),
                       ("bureau", {"full": "1"})):
        r = _export(login_as(who), village, **extra)
        assert r.mimetype != "application/zip", who
    assert not _audits(dbs, "parcel.export.full")

    purpose = "向不动产登记中心移交确权成果"
    r = _export(login_as("bureau"), village, full="1", purpose=purpose)
    assert r.status_code == 200
    members = _tables(r.data)["CBF_JTCY.csv"]
    assert {row["CYZJHM"] for row in members} <= full_ids
    entry = _audits(dbs, "parcel.export.full")[-1]
    assert entry.actor_name == "bureau" and entry.reason == purpose
    assert entry.changes["purpose"] == purpose and entry.changes["rows"] >= len(members)


# ---------------------------------------------------------------------------------------------
# Point 3: objections online only by households on the notice.

@pytest.fixture()
def running_notice(dbs):
    from app.campaigns import operations as cops

    group = user("farmer").household_code[:14]
    c = cops.open_campaign("bureau", group, None, "确权")
    cops.publish_notice("bureau", c, start=dt.date.today() - dt.timedelta(days=1), days=7)
    dbs.flush()
    return c


def test_objections_online_only_from_households_on_the_notice(login_as, dbs, running_notice):
    from app.campaigns.models import Objection

    c = running_notice
    form = {"subject": "area", "text": "面积不对", "parcel_code": ""}
    for who in ("auditor", "exchange", "hukou", "officer2", "officer", "bureau"):
        r = _post(login_as(who), f"/notice/{c.id}", form)
        assert r.status_code in (302, 303), who
    assert dbs.scalar(select(func.count()).select_from(Objection)
                      .where(Objection.campaign_id == c.id)) == 0
    refused = _audits(dbs, "campaign.objection.refused")
    assert {e.actor_name for e in refused} >= {"auditor", "exchange", "hukou", "officer2"}

    r = _post(login_as("farmer"), f"/notice/{c.id}", form)
    assert r.status_code == 303
    lodged = dbs.scalars(select(Objection).where(Objection.campaign_id == c.id)).all()
    assert [o.lodged_by for o in lodged] == [user("farmer").display_name]


def test_api_objection_from_a_farmer_off_the_notice_is_refused(app, dbs, running_notice):
    c = running_notice
    # A farmer of another group of the same village (the API used to accept the whole village).
    other = dbs.scalar(select(Household).where(
        Household.cbfbm.like(c.fbfbm[:12] + "%"), ~Household.cbfbm.like(c.fbfbm + "%"),
        Household.ended_on.is_(None)))
    assert other is not None
    f2 = auth_ops.create_user(None, "farmer-other", PASSWORD, "farmer", "别组农户",
                              person_id=other.head_person_id, household_code=other.cbfbm,
                              reason="test")
    token = auth_ops.issue_api_token(None, f2)
    r = app.test_client().post(f"/api/campaigns/{c.id}/objections",
                               headers={"Authorization": f"Bearer {token}"},
                               json={"subject": "area", "text": "面积不对"})
    assert r.status_code == 403 and r.get_json()["code"] == "campaign.objection.not_concerned"


def test_notice_page_public_while_it_runs_then_only_for_staff_and_households(
        app, dbs, login_as, running_notice):
    c = running_notice
    assert app.test_client().get(f"/notice/{c.id}").status_code == 200
    c.notice_start = dt.date.today() - dt.timedelta(days=20)
    c.notice_end = dt.date.today() - dt.timedelta(days=13)
    dbs.flush()
    assert app.test_client().get(f"/notice/{c.id}").status_code == 302  # sign in
    assert login_as("farmer").get(f"/notice/{c.id}").status_code == 200  # on the notice
    assert login_as("bureau").get(f"/notice/{c.id}").status_code == 200
    assert login_as("officer").get(f"/notice/{c.id}").status_code == 200  # reaches the group
    for who in ("officer2", "exchange", "hukou"):
        assert login_as(who).get(f"/notice/{c.id}").status_code == 403, who


# ---------------------------------------------------------------------------------------------
# Point 4: scope cannot be widened by one's own action.

def _village_two_person(dbs):
    v2 = user("officer2").jurisdiction_code
    return dbs.scalar(select(Person).join(Membership, Membership.person_id == Person.id)
                      .join(Collective).where(Collective.village_code == v2,
                                              Membership.status == "active")
                      .order_by(Person.id))


def test_officer_cannot_admit_a_person_of_another_village(login_as, dbs):
    officer = login_as("officer")
    person = _village_two_person(dbs)
    assert officer.get(f"/people/{person.id}").status_code == 403
    coll = dbs.scalar(select(Collective).where(
        Collective.village_code == user("officer").jurisdiction_code).order_by(Collective.id))
    r = _post(officer, f"/collectives/{coll.id}/members",
              {"id_number": person.id_number, "basis": "marriage",
               "began_on": dt.date.today().isoformat(), "reason": "婚入"},
              f"/collectives/{coll.id}")
    assert r.status_code in (302, 303)
    assert dbs.scalar(select(Membership).where(Membership.person_id == person.id,
                                               Membership.collective_id == coll.id)) is None
    assert _audits(dbs, "scope.widening.refused")[-1].object_id == str(person.id)
    assert officer.get(f"/people/{person.id}").status_code == 403


def test_an_ended_membership_gives_no_access(login_as, dbs):
    from app.collectives import operations as cops

    person = _village_two_person(dbs)
    coll = dbs.scalar(select(Collective).where(
        Collective.village_code == user("officer").jurisdiction_code).order_by(Collective.id))
    m = cops.admit("bureau", person, coll, "assembly_decision", dt.date(2020, 1, 1))
    dbs.flush()
    officer = login_as("officer")
    assert officer.get(f"/people/{person.id}").status_code == 200  # a current member
    cops.end_membership("bureau", m, "other_membership", dt.date(2021, 1, 1),
                        reason="已取得他处成员身份")
    dbs.flush()
    assert officer.get(f"/people/{person.id}").status_code == 403
    assert str(person.id) not in re.findall(r'href="/people/(\d+)"',
                                            officer.get(f"/people?q={person.name}")
                                            .get_data(as_text=True))


def test_hukou_officer_cannot_add_an_out_of_jurisdiction_co_mover(dbs):
    from app.errors import DomainError
    from app.settlement import operations as sops

    hukou = user("hukou")
    hukou.jurisdiction_code = user("officer").jurisdiction_code  # one village's hukou office
    applicant = dbs.scalar(select(Person).where(
        Person.hukou_division_code.like(hukou.jurisdiction_code + "%")).order_by(Person.id))
    outsider = _village_two_person(dbs)
    assert not (outsider.hukou_division_code or "").startswith(hukou.jurisdiction_code)
    sops.ensure_towns()
    town = sops.towns()[0]
    with pytest.raises(DomainError) as e:
        sops.apply(hukou, applicant, town, [{"person_id": outsider.id, "relation": "spouse"}],
                   basis="owned_house", residence_address="城关镇1号",
                   property_certificate_no="X1", living_there=True,
                   destination="house_address", destination_address="城关镇1号")
    assert e.value.code == "settlement.member_out_of_scope"
    assert _audits(dbs, "scope.widening.refused")[-1].object_id == str(outsider.id)


# ---------------------------------------------------------------------------------------------
# Point 6: no 500 on bad input.

def test_ids_beyond_int4_are_404_not_500(login_as, client):
    assert client.get("/notice/99999999999").status_code == 404
    assert client.get("/verify/x").status_code == 404
    bureau = login_as("bureau")
    for path in ("/people/2147483648", "/certificates/99999999999999999999",
                 "/campaigns/2147483648", "/api/persons/99999999999"):
        assert bureau.get(path).status_code == 404, path
    assert bureau.get("/people/2147483647").status_code == 404  # the largest int4: not found


def test_nul_and_control_characters_are_400(app, login_as, client):
    page = client.get("/login").get_data(as_text=True)
    r = client.post("/login", data={"username": "admin\x00", "password": "x",
                                    "csrf_token": csrf_from(page)})
    assert r.status_code == 400
    bureau = login_as("bureau")
    assert bureau.get("/people?q=a%00b").status_code == 400
    assert bureau.get("/certificates?q=%1b[31m").status_code == 400
    token = auth_ops.issue_api_token(None, user("bureau"))
    r = app.test_client().get("/api/persons?q=%00", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400


@pytest.mark.parametrize("value", ["5.7e19", "99999999999999999999", "-1", "abc"])
def test_page_parameters_are_bounded(login_as, value):
    bureau = login_as("bureau")
    for path in ("/people", "/certificates", "/api/persons"):
        assert bureau.get(f"{path}?page={value}").status_code == 400, path


def test_what_the_guard_lets_through_and_what_it_stops(app):
    from werkzeug.exceptions import BadRequest

    from app.security import _check_text

    for fine in ("010-1234-5678", "1-2-3", "2026-11-29", "第一组\t东至\r\n西至", "1850-01-01"):
        _check_text("f", fine)
    for bad in ("9999-12-31", "0001-01-01", "2026-11-29T00:00:00\x00", "a\x7fb", "x\x1by"):
        with pytest.raises(BadRequest):
            _check_text("f", bad)


def test_ogc_offsets_beyond_a_page_count_still_work(client):
    r = client.get("/ogc/collections/parcels/items?limit=1&offset=150000")
    assert r.status_code == 200


def test_deep_json_far_dates_and_huge_numbers_are_400(app, dbs, running_notice):
    token = auth_ops.issue_api_token(None, user("bureau"))
    h = {"Authorization": f"Bearer {token}"}
    c = app.test_client()
    deep = "[" * 50_000 + "]" * 50_000
    r = c.post(f"/api/campaigns/{running_notice.id}/objections", headers={
        **h, "Content-Type": "application/json"}, data=deep)
    assert r.status_code == 400
    from app.campaigns import operations as cops

    draft = cops.open_campaign("bureau", user("officer2").jurisdiction_code + "01", None, "x")
    dbs.flush()
    r = c.post(f"/api/campaigns/{draft.id}/notice", headers=h,
               json={"start": "9999-12-31", "days": 7})
    assert r.status_code == 400
    r = c.post(f"/api/campaigns/{draft.id}/notice", headers=h,
               json={"start": dt.date.today().isoformat(), "days": 2 ** 63})
    assert r.status_code in (400, 422)


def test_a_value_longer_than_its_column_is_refused_not_500(app, dbs):
    token = auth_ops.issue_api_token(None, user("admin"))
    r = app.test_client().post("/api/campaigns", headers={"Authorization": f"Bearer {token}"},
                               json={"fbfbm": "1" * 5000, "reason": "x"})
    assert 400 <= r.status_code < 500


# ---------------------------------------------------------------------------------------------
# Point 7: public links from PUBLIC_BASE_URL, never from the Host header.

def test_qr_and_links_ignore_the_host_header(app, dbs, monkeypatch):
    from app.certificates import operations as certs
    from tests.test_certificates import _contract, _household_with_land

    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://sanquan.example.gov.cn")
    hh, fields, _ = _household_with_land(dbs)
    right = _contract(dbs, hh, fields)
    token = auth_ops.issue_api_token(None, user("bureau"))
    r = app.test_client().post("/api/certificates", headers={
        "Authorization": f"Bearer {token}", "Host": "evil.example"},
        json={"right_uid": right.uid, "reason": "颁证"})
    assert r.status_code == 201, r.get_data(as_text=True)
    url = r.get_json()["verify_url"]
    assert url.startswith("https://sanquan.example.gov.cn/verify/") and "evil" not in url
    cert = dbs.get(certs.Certificate, r.get_json()["id"])
    assert cert.content["verify_url"] == url


# ---------------------------------------------------------------------------------------------
# Point 8: tokens and sessions, headers, the login limiter.

def test_a_bogus_bearer_is_refused_even_with_a_session_cookie(login_as, dbs):
    from app.campaigns.models import Campaign

    bureau = login_as("bureau")  # a session cookie of a writer
    group = user("officer2").jurisdiction_code + "01"
    r = bureau.post("/api/campaigns", headers={"Authorization": "Bearer x"},
                    json={"fbfbm": group, "reason": "x"})
    assert r.status_code == 401
    assert bureau.get("/api/me", headers={"Authorization": "Bearer x"}).status_code == 401
    assert bureau.get("/api/me", headers={"Authorization": "Basic YTpi"}).status_code == 401
    assert dbs.scalar(select(Campaign).where(Campaign.fbfbm == group)) is None


def test_a_valid_token_wins_over_any_cookie(app, login_as, dbs):
    token = auth_ops.issue_api_token(None, user("auditor"))
    anon = app.test_client()
    anon.get("/lang/en")  # an anonymous session cookie
    assert anon.get("/api/me", headers={"Authorization": f"Bearer {token}"}).get_json()[
        "username"] == "auditor"
    bureau = login_as("bureau")
    me = bureau.get("/api/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["username"] == "auditor"  # the token's user, not the cookie's
    assert bureau.get("/api/me").get_json()["username"] == "bureau"


def test_security_headers_on_every_response(app, client, login_as):
    for r in (client.get("/login"), client.get("/notice/99999999999"),
              client.get("/api/openapi.json"), login_as("bureau").get("/people"),
              client.get("/tiles/14/13340/6220.pbf"), client.get("/tiles/99999999999/1/1.pbf")):
        h = r.headers
        csp = h["Content-Security-Policy"]
        script = re.search(r"script-src ([^;]*)", csp).group(1)
        assert "'unsafe-inline'" not in script and "frame-ancestors 'none'" in csp
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] and h["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in h  # not in development
        assert r.status_code < 500
    app.config["HSTS"] = True
    try:
        assert "max-age" in client.get("/login").headers["Strict-Transport-Security"]
    finally:
        app.config["HSTS"] = False


def test_no_inline_script_in_any_template():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "templates"
    for f in root.rglob("*.html"):
        text = f.read_text()
        # A JSON data block (type="application/json") is never executed: CSP lets it be.
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>",
                             text), f
        assert not re.search(r"\son[a-z]+\s*=\s*[\"']", text), f


@pytest.fixture()
def fresh_limiter():
    """The limiter's storage is shared by the test session: start and end with it empty."""
    from app.extensions import limiter

    limiter.storage.reset()
    yield
    limiter.storage.reset()


def test_login_lockout_backs_off_and_ends(app, dbs, monkeypatch, fresh_limiter):
    now = [1_000_000.0]
    monkeypatch.setattr(auth_ops, "clock", lambda: now[0])
    monkeypatch.setitem(app.config, "LOGIN_LOCK_AFTER", 3)
    monkeypatch.setitem(app.config, "LOGIN_LOCK_SECONDS", 30)
    c = app.test_client()
    for _ in range(3):
        assert login(c, "auditor", "wrong-password").status_code == 200
    # Locked: even the right password is refused now, and the refusal is logged.
    assert login(c, "auditor", PASSWORD).status_code == 429
    assert _audits(dbs, "auth.lockout")[-1].changes["seconds"] == 30
    assert _audits(dbs, "auth.login.locked")
    now[0] += 31
    assert login(c, "auditor", "wrong-again-1").status_code == 200  # 4th failure: 60 s
    assert _audits(dbs, "auth.lockout")[-1].changes["seconds"] == 60
    now[0] += 61
    assert login(c, "auditor", PASSWORD).status_code == 302  # the lock ends
    # ... and the success cleared the account's count.
    assert auth_ops.lock_remaining("auditor", "1.2.3.4") == 0


def test_login_lockout_per_address(app, dbs, monkeypatch, fresh_limiter):
    now = [2_000_000.0]
    monkeypatch.setattr(auth_ops, "clock", lambda: now[0])
    monkeypatch.setitem(app.config, "LOGIN_LOCK_AFTER", 2)
    c = app.test_client()
    for i in range(2 * auth_ops.IP_LOCK_FACTOR):  # spread over accounts, none locked alone
        login(c, f"nobody-{i}", "x")
    assert login(c, "exchange", PASSWORD).status_code == 429
    assert [e for e in _audits(dbs, "auth.lockout") if e.changes["scope"] == "ip"]


def test_the_address_behind_a_trusted_proxy(app, dbs, monkeypatch, fresh_limiter):
    """Behind one proxy, the per-address lock counts the client's address, not the proxy's."""
    from app import create_app
    from app.config import TestConfig

    monkeypatch.setattr(auth_ops, "clock", lambda: 4_000_000.0)
    proxied = create_app({**{k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()},
                          "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                          "TRUSTED_PROXIES": 1, "LOGIN_LOCK_AFTER": 1})
    c = proxied.test_client()
    for i in range(auth_ops.IP_LOCK_FACTOR):
        page = c.get("/login").get_data(as_text=True)
        c.post("/login", data={"username": f"nobody-{i}", "password": "x",
                               "csrf_token": csrf_from(page)},
               headers={"X-Forwarded-For": "203.0.113.7"})
    assert auth_ops.lock_remaining("someone", "203.0.113.7") > 0
    assert auth_ops.lock_remaining("someone", "127.0.0.1") == 0


def test_limiter_storage_follows_redis_url():
    from app.config import _limits_uri

    assert _limits_uri("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert _limits_uri("unix:///run/redis.sock") == "redis+unix:///run/redis.sock"
    assert _limits_uri(None) == "memory://"


# ---------------------------------------------------------------------------------------------
# Point 9: accounts.

def test_token_rotate_revoke_and_shown_once(app, login_as, dbs):
    admin = login_as("admin")
    target = user("exchange")
    page = admin.get("/admin/users").get_data(as_text=True)
    r = admin.post(f"/admin/users/{target.id}/token", data={"csrf_token": csrf_from(page)})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    first = re.search(r'id="api-token"[^>]*>(sq_[^<]+)<', r.get_data(as_text=True)).group(1)
    assert first not in admin.get("/admin/users").get_data(as_text=True)  # never again
    api = app.test_client()
    assert api.get("/api/me", headers={"Authorization": f"Bearer {first}"}).status_code == 200
    r = admin.post(f"/admin/users/{target.id}/token", data={"csrf_token": csrf_from(page)})
    second = re.search(r'id="api-token"[^>]*>(sq_[^<]+)<', r.get_data(as_text=True)).group(1)
    assert api.get("/api/me", headers={"Authorization": f"Bearer {first}"}).status_code == 401
    assert api.get("/api/me", headers={"Authorization": f"Bearer {second}"}).status_code == 200
    r = admin.post(f"/admin/users/{target.id}/token/revoke",
                   data={"csrf_token": csrf_from(page), "reason": "离职"})
    assert r.status_code == 303
    assert api.get("/api/me", headers={"Authorization": f"Bearer {second}"}).status_code == 401


def test_deactivate_reset_and_change_password(app, login_as, dbs):
    admin = login_as("admin")
    target = user("exchange")
    token = auth_ops.issue_api_token(None, target)
    page = admin.get("/admin/users").get_data(as_text=True)
    r = admin.post(f"/admin/users/{target.id}/active",
                   data={"csrf_token": csrf_from(page), "active": "0", "reason": "调岗"})
    assert r.status_code == 303
    assert login(app.test_client(), "exchange").status_code == 200  # refused
    assert app.test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"}) \
        .status_code == 401
    admin.post(f"/admin/users/{target.id}/active",
               data={"csrf_token": csrf_from(page), "active": "1", "reason": "复岗"})
    new = "another-password-42"
    r = admin.post(f"/admin/users/{target.id}/password",
                   data={"csrf_token": csrf_from(page), "password": new, "reason": "忘记密码"})
    assert r.status_code == 303
    assert login(app.test_client(), "exchange").status_code == 200  # the old one no longer
    c = app.test_client()
    assert login(c, "exchange", new).status_code == 302
    r = _post(c, "/account/password", {"old": new, "new": "sanquan-demo"})
    assert "user.demo_password" not in r.get_data(as_text=True)
    assert login(app.test_client(), "exchange", "sanquan-demo").status_code == 200
    r = _post(c, "/account/password", {"old": new, "new": "third-password-77"})
    assert r.status_code == 303
    assert login(app.test_client(), "exchange", "third-password-77").status_code == 302
    actions = {e.action for e in dbs.scalars(select(AuditLog).where(
        AuditLog.object_id == str(target.id), AuditLog.object_type == "user"))}
    assert {"user.deactivate", "user.activate", "user.password.reset",
            "user.password.change"} <= actions


def test_a_password_reset_ends_the_sessions_made_before_it(app, login_as, dbs):
    stolen = login_as("exchange")
    assert stolen.get("/account/password").status_code == 200
    auth_ops.reset_password(user("admin"), user("exchange"), "brand-new-password-1", "被盗")
    dbs.flush()
    assert stolen.get("/account/password").status_code == 302  # signed out: to the login page
    assert login_as("admin").get("/admin/users").status_code == 200  # others unaffected


def test_production_refuses_an_open_database_and_the_demo_password(app, monkeypatch):
    from app import create_app, security
    from app.config import TestConfig

    base = {**{k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()},
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "ENV_NAME": "production", "PUBLIC_BASE_URL": "https://sanquan.example.gov.cn"}
    open_db = security._accepts_any_password(app.config["SQLALCHEMY_DATABASE_URI"])
    if open_db:  # the private test cluster lets its user in without a password
        with pytest.raises(security.UnsafeConfiguration, match="trust or peer"):
            create_app(base)
    monkeypatch.setattr(security, "_accepts_any_password", lambda url: False)
    with pytest.raises(security.UnsafeConfiguration, match="demo password"):
        create_app({**base, "DEMO_PASSWORD": PASSWORD})  # the test accounts use it
    with pytest.raises(security.UnsafeConfiguration, match="PUBLIC_BASE_URL"):
        create_app({**base, "PUBLIC_BASE_URL": None, "DEMO_PASSWORD": "not-in-use-123"})
    create_app({**base, "DEMO_PASSWORD": "not-in-use-123"})  # a clean production starts


def test_accepts_any_password_sees_a_password_checked_login():
    from app.security import _accepts_any_password

    # Nothing listens there: the login cannot succeed, so it is not "open".
    assert _accepts_any_password("postgresql+psycopg://u:p@127.0.0.1:1/x") is False


# ---------------------------------------------------------------------------------------------
# Point 10: the verify page does not name the household; PDFs are rendered once per content.

def test_verify_page_is_not_undone_by_the_certificate_number(app, dbs, client):
    from app.certificates import operations as certs
    from tests.test_certificates import _contract, _household_with_land

    hh, fields, _ = _household_with_land(dbs)
    cert = certs.issue("bureau", _contract(dbs, hh, fields), base="http://localhost")
    page = client.get(f"/verify/{cert.token}").get_data(as_text=True)
    api = client.get(f"/api/certificates/verify/{cert.token}").get_json()
    for shown in (page, str(api)):
        assert hh.cbfbm not in shown and cert.number not in shown and hh.name not in shown
        for p in cert.content["parcels"]:
            assert p["code"] not in shown
    assert api["status"] == "valid" and api["number"] == certs.mask_code(cert.number)


def test_pdfs_are_rendered_once_per_content_digest(app, dbs, login_as, monkeypatch, tmp_path):
    import weasyprint

    from app.certificates import operations as certs
    from tests.test_certificates import _contract, _household_with_land

    monkeypatch.setitem(app.config, "PDF_CACHE_DIR", str(tmp_path))
    renders = []
    real = weasyprint.HTML.write_pdf

    def counting(self, *a, **kw):
        renders.append(1)
        return real(self, *a, **kw)

    monkeypatch.setattr(weasyprint.HTML, "write_pdf", counting)
    hh, fields, _ = _household_with_land(dbs)
    cert = certs.issue("bureau", _contract(dbs, hh, fields), base="http://localhost")
    bureau = login_as("bureau")
    first = bureau.get(f"/certificates/{cert.id}.pdf")
    second = bureau.get(f"/certificates/{cert.id}.pdf")
    assert first.status_code == second.status_code == 200 and first.data == second.data
    assert len(renders) == 1
    cached = list(tmp_path.rglob("*.pdf"))
    assert len(cached) == 1 and (cached[0].stat().st_mode & 0o077) == 0
    assert bureau.get(f"/certificates/{cert.id}.pdf?lang=x").data == first.data
    assert len(renders) == 1


def test_lockout_counters_are_shared_through_redis(app, dbs, monkeypatch, tmp_path):
    """Two workers (two storage connections) see one account's failures and lock together."""
    import shutil
    import subprocess
    import time

    from limits.storage import storage_from_string

    from app.config import _limits_uri

    server = shutil.which("redis-server")
    assert server, "redis-server is installed by the Makefile"
    sock = tmp_path / "redis.sock"
    redis = subprocess.Popen([server, "--port", "0", "--unixsocket", str(sock), "--save", "",
                              "--appendonly", "no", "--dir", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # wait for the server process to open its socket
            if sock.exists():
                break
            time.sleep(0.05)
        uri = _limits_uri(f"unix://{sock}")
        workers = [storage_from_string(uri), storage_from_string(uri)]
        assert all(w.check() for w in workers)
        turn = itertools.cycle(workers)
        monkeypatch.setattr(auth_ops, "_storage", lambda: next(turn))
        monkeypatch.setattr(auth_ops, "clock", lambda: 3_000_000.0)
        for _ in range(3):  # alternately on each worker
            assert auth_ops.sign_in("auditor", "wrong", "10.0.0.1", 3, 30, 900) is None
        for _ in range(2):
            with pytest.raises(Exception) as e:
                auth_ops.sign_in("auditor", PASSWORD, "10.0.0.2", 3, 30, 900)
            assert getattr(e.value, "code", None) == "auth.locked"
    finally:
        redis.terminate()
        redis.wait()


def test_a_failed_job_shows_no_paths_or_database_internals(app, dbs, monkeypatch, tmp_path):
    from app.jobs import operations as jobs

    secret_path = str(tmp_path / "nowhere" / "delivery.zip")
    monkeypatch.setitem(app.config, "JOBS_MODE", "sync")
    with app.test_request_context():
        job = jobs.submit("import", {"path": secret_path}, None)
    dbs.refresh(job)
    assert job.status == "failed"
    assert secret_path not in job.error and str(tmp_path) not in job.error
    # Anything but a rule's refusal is shown only by its kind and the job's reference.
    from app.imports import uploads

    def broken(*a, **k):
        raise RuntimeError(f'relation "import_feature" at {secret_path}: connection lost')

    monkeypatch.setattr(uploads, "prepare", broken)
    with app.test_request_context():
        job = jobs.submit("import", {"path": secret_path}, None)
    dbs.refresh(job)
    assert job.status == "failed" and str(job.id) in job.error
    assert secret_path not in job.error and "import_feature" not in job.error
