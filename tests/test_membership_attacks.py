"""Adversarial review of membership (issue 15): routes by which a member who settled in town
(or studies, serves, works away, is in prison) could get less or nothing, and the money's edges.
Each test failed before its fix (乡村振兴促进法 art 55; 农村集体经济组织法 art 17)."""
import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditLog
from app.collectives import operations as coll_ops
from app.errors import DomainError
from app.membership import operations as ops
from tests.test_membership_distribution import _collective_with_members, _settle, assert_refused

PAID_ON = dt.date(2025, 12, 20)


@pytest.fixture()
def quantified(dbs):
    """A village with a member who settled in town, shares quantified (as in
    test_membership_distribution)."""
    c = _collective_with_members(dbs)
    members = coll_ops.roll(c)
    settled = members[len(members) // 2].person
    _settle(dbs, settled)
    q = ops.quantify("officer", c, dt.date(2025, 6, 30), 123_456_789, reason="股份量化")
    return c, q, settled


# ------------------------------------------------------------------ free text paraphrases
@pytest.mark.parametrize("note", [
    "在校大学生不参与分红", "服刑人员不参与分配", "参军的不分", "服役人员减半", "出嫁女不分红",
    "外嫁女不分", "已在县城买房的减半", "只分给在村的", "仅限本地成员", "非本村居民不分",
    "户1口2迁3出的不分", "监狱里的不分", "读书的孩子不算", "打工的减半", "在 外 地 的 减 半",
    "吃商品粮的不分", "Members living away get half", "only locals", "excluding students",
    "ｈｕｋｏｕ outside: none", "外出务工人员减半", "住在城里的减半",
])
def test_paraphrased_exclusions_in_the_note_are_refused_by_operation_and_sql(dbs, quantified,
                                                                            note):
    c, q, _ = quantified
    with pytest.raises(DomainError) as e:
        ops.distribute("officer", c, 500_000, PAID_ON, note=note, reason="年度分红")
    assert e.value.code == "distribution.rule.art55"
    assert dbs.scalars(select(AuditLog).where(AuditLog.action == "distribution.refused",
                                              AuditLog.object_id == c.fbfbm)).first()
    msg = assert_refused(dbs, "INSERT INTO distribution (collective_id, quantification_id, amount_fen, "
                        "paid_on, rule_note, total_centi, created_by) VALUES (:c, :q, 100, "
                        "'2025-12-20', :n, :t, 'sql')",
                   {"c": c.id, "q": q.id, "n": note, "t": q.total_centi})
    assert "art 55" in msg


def test_a_plain_note_still_passes(dbs, quantified):
    c, _, _ = quantified
    d = ops.distribute("officer", c, 500_000, PAID_ON, note="2025年度集体经营收益，按股分配",
                       reason="年度分红")
    assert d.status == "paid"


# ------------------------------------------------------------------ the share roll via SQL
@pytest.mark.parametrize("sql", [
    "UPDATE share_holding SET population_centi = 1, shares_centi = 1 + labour_centi "
    "WHERE person_id = :p",
    "UPDATE share_holding SET ended_on = '2025-07-01', end_ground = 'adjusted' "
    "WHERE person_id = :p",
    "UPDATE share_holding SET ended_on = '2025-07-01', end_ground = 'inherited' "
    "WHERE person_id = :p",
    "DELETE FROM share_holding WHERE person_id = :p",
    "UPDATE share_holding SET person_id = (SELECT min(person_id) FROM share_holding "
    "WHERE person_id <> :p) WHERE person_id = :p",
])
def test_the_share_roll_cannot_drop_or_shrink_a_settled_member_by_sql(dbs, quantified, sql):
    _, _, settled = quantified
    assert_refused(dbs, sql, {"p": settled.id})


def test_a_new_quantification_that_leaves_the_settled_member_out_cannot_be_paid(dbs,
                                                                               quantified):
    c, q, settled = quantified
    with pytest.raises(DBAPIError):
        with dbs.begin_nested():
            q2 = dbs.execute(text(
                "INSERT INTO share_quantification (collective_id, base_date, asset_value_fen, "
                "collective_share_bp, member_centi, collective_centi, management, created_by) "
                "VALUES (:c, '2025-07-01', 1, 0, 100, 0, 'static', 'sql') RETURNING id"),
                {"c": c.id}).scalar()
            roll = [r for r in ops.distribution_roll(q) if r[0] != settled.id]
            for pid, hh, s in roll:
                dbs.execute(text("INSERT INTO share_holding (quantification_id, person_id, "
                                 "household_id, population_centi, labour_centi, shares_centi, "
                                 "source) VALUES (:q, :p, :h, :s, 0, :s, 'quantified')"),
                            {"q": q2, "p": pid, "h": hh, "s": s})
            total = sum(s for _, _, s in roll)
            d = dbs.execute(text(
                "INSERT INTO distribution (collective_id, quantification_id, amount_fen, paid_on, "
                "total_centi, created_by) VALUES (:c, :q, :a, '2025-12-20', :t, 'sql') "
                "RETURNING id"), {"c": c.id, "q": q2, "a": total, "t": total}).scalar()
            for pid, hh, s in roll:
                dbs.execute(text("INSERT INTO distribution_payout (distribution_id, person_id, "
                                 "household_id, shares_centi, amount_fen) VALUES (:d,:p,:h,:s,:s)"),
                            {"d": d, "p": pid, "h": hh, "s": s})
            dbs.execute(text("UPDATE distribution SET status = 'paid' WHERE id = :d"), {"d": d})


def test_a_distribution_is_never_inserted_already_paid(dbs, quantified):
    c, q, _ = quantified
    assert_refused(dbs, "INSERT INTO distribution (collective_id, quantification_id, amount_fen, "
                  "paid_on, total_centi, status, created_by) VALUES (:c, :q, 100, '2025-12-20', "
                  ":t, 'paid', 'sql')", {"c": c.id, "q": q.id, "t": q.total_centi})


def test_inheritance_takes_shares_only_from_a_member_who_died(dbs):
    """'Inheriting' a living member's shares (settled in town or not) to another of the
    household would take them away: refused in the operation and by the database.  (No hukou
    move in this transaction: the settlement guard holds every membership change in one.)"""
    from tests.test_membership_confirmation import _village

    c = _village(dbs)
    q = ops.quantify("officer", c, dt.date(2025, 6, 30), 1_000_000, reason="股份量化")
    h = next(h for h in ops.holdings(q) if h.household_id
             and len(h.household.current_members) > 1)
    heir = next(m.person for m in h.household.current_members if m.person_id != h.person_id)
    with pytest.raises(DomainError) as e:
        ops.inherit("officer", h, heir, dt.date(2025, 8, 1), reason="继承")
    assert e.value.code == "membership.shares.inheritance"
    assert "art 55" in e.value.source("en")
    assert_refused(dbs, "UPDATE share_holding SET ended_on = '2025-08-01', end_ground = 'inherited' "
                  "WHERE id = :h", {"h": h.id})
    m = coll_ops.active_membership(h.person_id, c.id)
    coll_ops.end_membership("officer", m, "death", dt.date(2025, 7, 20), reason="死亡")
    new = ops.inherit("officer", h, heir, dt.date(2025, 8, 1), reason="继承")
    assert new.shares_centi == h.shares_centi and h.end_ground == "inherited"
    d = ops.distribute("officer", c, 1_000_001, PAID_ON, reason="年度分红")  # and it pays
    assert sum(p.amount_fen for p in ops.payouts(d)) == 1_000_001


# ------------------------------------------------------------------ the assembly and the roll
def _round(dbs, c, meeting=None, n=0):
    """An applicant admitted by an assembly of all members on `meeting`."""
    from tests.test_membership_confirmation import _new_person

    p = _new_person(dbs, c, "return", 20 + n)
    a = ops.apply("officer", c, p, "return", facts={"livelihood": True}, reason="申请")
    meeting = meeting or dt.date(2025, 9, 1)
    voters = [m.person_id for m in ops.members_on(c, meeting)]
    assembly = ops.open_assembly("officer", c, meeting, voters, reason="成员大会")
    return a, assembly, voters


def _api(app):
    from app.auth import operations as auth_ops
    from tests.conftest import user

    token = auth_ops.issue_api_token(None, user("officer"))
    return app.test_client(), {"Authorization": f"Bearer {token}"}


def _demo_collective(dbs):
    from app.membership.models import Distribution

    return dbs.scalars(select(Distribution).order_by(Distribution.id)).first().collective


def test_the_api_takes_notice_objection_and_filing_dates_from_the_app_clock(app, dbs):
    """A client-chosen filed_on (the notice's end) filed the roll on its first day; a back-dated
    posted_on or lodged_on moved the notice: the API no longer accepts dates for them."""
    c = _demo_collective(dbs)
    a, assembly, voters = _round(dbs, c)
    ops.resolve("officer", assembly, a, assembly.needed, 0, 0, "admit", reason="表决")
    client, h = _api(app)
    r = client.post(f"/api/membership/assemblies/{assembly.id}/notice", headers=h,
                    json={"posted_on": "2020-01-01"})
    assert r.status_code == 422
    r = client.post(f"/api/membership/assemblies/{assembly.id}/notice", headers=h, json={})
    assert r.status_code == 201, r.get_data(as_text=True)
    notice = r.get_json()
    assert notice["posted_on"] == ops.today().isoformat()
    r = client.post(f"/api/membership/notices/{notice['id']}/file", headers=h,
                    json={"filed_on": notice["ends_on"], "reason": "备案"})
    assert r.status_code == 422
    r = client.post(f"/api/membership/notices/{notice['id']}/file", headers=h,
                    json={"reason": "备案"})
    assert r.status_code == 409 and r.get_json()["code"] == "membership.notice.running"
    r = client.post(f"/api/membership/notices/{notice['id']}/objections", headers=h,
                    json={"objector": "村民", "text": "异议", "lodged_on": "2020-01-01"})
    assert r.status_code == 422
    with pytest.raises(DomainError) as e:  # nor can the operation file on a future day
        ops.file_roll("officer", dbs.get(ops.RollNotice, notice["id"]),
                      filed_on=ops.today() + dt.timedelta(days=30))
    assert e.value.code == "membership.date.future"


def test_the_assembly_decides_only_on_or_after_its_meeting_date(dbs):
    from tests.test_membership_confirmation import _village

    c = _village(dbs)
    a, assembly, voters = _round(dbs, c, meeting=ops.today() + dt.timedelta(days=10))
    with pytest.raises(DomainError) as e:
        ops.resolve("officer", assembly, a, len(voters), 0, 0, "admit")
    assert e.value.code == "membership.assembly.not_yet"
    assert "art 26" in e.value.source("en")


def test_an_objection_names_an_application_of_the_notice_only(dbs):
    """An objection lodged on village A's notice against village B's application, then upheld,
    sent B's admitted applicant back to the vote (IDOR through application_id)."""
    from tests.test_membership_confirmation import _village

    c = _village(dbs)
    a, assembly, _ = _round(dbs, c)
    ops.resolve("officer", assembly, a, assembly.needed, 0, 0, "admit")
    notice = ops.post_notice("officer", assembly, posted_on=dt.date(2025, 9, 2))
    other = _demo_collective(dbs)
    b, assembly_b, _ = _round(dbs, other, n=1)
    ops.resolve("officer", assembly_b, b, assembly_b.needed, 0, 0, "admit")
    with pytest.raises(DomainError) as e:
        ops.lodge_objection("officer", notice, "村民", "异议", application=b,
                            lodged_on=dt.date(2025, 9, 3))
    assert e.value.code == "membership.objection.application"
    assert b.status == "admitted"


@pytest.mark.parametrize("what", ["members_total", "attendance", "second_resolution"])
def test_the_assembly_cannot_be_packed_by_sql(dbs, what):
    """members_total written as 1 (any vote passes), a non-member's attendance, a second
    resolution on a decided application: refused by the database."""
    from app.people.models import Person
    from tests.test_membership_confirmation import _village

    c = _village(dbs)
    a, assembly, voters = _round(dbs, c)
    if what == "members_total":
        assert_refused(dbs, "INSERT INTO member_assembly (collective_id, meeting_date, members_total, "
                      "vote_num, vote_den, created_by) VALUES (:c, '2025-09-01', 1, 2, 3, 'sql')",
                 {"c": c.id})
    elif what == "attendance":
        outsider = dbs.scalar(select(Person.id).where(Person.id.not_in(voters))
                              .order_by(Person.id))
        assert_refused(dbs, "INSERT INTO member_assembly_attendance (assembly_id, person_id) "
                      "VALUES (:a, :p)", {"a": assembly.id, "p": outsider})
    else:
        ops.resolve("officer", assembly, a, assembly.needed, 0, 0, "admit")
        assert_refused(dbs, "INSERT INTO member_assembly_resolution (assembly_id, application_id, yes, "
                      "no, abstain, decision, recorded_by) VALUES (:a, :p, 0, :n, 0, 'reject', "
                      "'sql')", {"a": assembly.id, "p": a.id, "n": assembly.needed})


def test_every_member_keeps_a_population_share_whatever_the_charter(dbs):
    """A charter of labour-age shares only (population share 0) gave a child or student no
    share at all — and the quantification crashed on the zero holding (a 500).  Every member
    holds a population share: refused in the operation and by the database."""
    from tests.test_membership_confirmation import _village

    c = _village(dbs)
    with pytest.raises(DomainError) as e:
        ops.set_charter_rule("officer", c, population_centi=0, labour_centi_per_year=100,
                             reason="章程")
    assert e.value.code == "membership.shares.population"
    ops.set_charter_rule("officer", c, population_centi=100, reason="章程")
    assert_refused(dbs, "UPDATE membership_charter_rule SET population_centi = 0, "
                  "labour_centi_per_year = 100 WHERE collective_id = :c", {"c": c.id})


def test_generated_faults_on_the_assembly_notice_and_roll_api(app, dbs):
    """Seeded garbage into the assembly, resolution, notice, objection, resolution-of-objection
    and filing endpoints (ids of other villages and of nothing included): never a 500, each
    refusal a 4xx JSON (problem JSON with the rule and its law, or the schema's errors), and
    nothing half-written (no resolution below the threshold, no roll filed early)."""
    import random

    from app.membership.models import AssemblyResolution, MemberAssembly, RollNotice

    c = _demo_collective(dbs)
    a, assembly, voters = _round(dbs, c, n=5)
    ops.resolve("officer", assembly, a, assembly.needed, 0, 0, "admit", reason="表决")
    notice = ops.post_notice("officer", assembly, reason="公示")
    client, h = _api(app)
    rng = random.Random(1515)
    ids = [assembly.id, notice.id, a.id, 0, -1, 2 ** 31, 10 ** 12, "x", voters[0]]
    junk = [None, "", "x" * 3000, -1, 0, 2 ** 63, 1.5, True, [], {}, "２０", "NaN",
            "2025-02-30", "9999-12-31", "<script>", "=cmd|' /C calc'!A0", "进城落户的不算",
            "admit", "reject", "upheld", "dismissed", voters[:3], [0, -1], "2025-09-01"]
    keys = ["meeting_date", "attendees", "application_id", "yes", "no", "abstain", "decision",
            "reason", "objector", "text", "resolution", "reasons", "filed_on", "posted_on"]
    paths = ["/api/membership/collectives/{}/assemblies", "/api/membership/assemblies/{}/resolutions",
             "/api/membership/assemblies/{}/notice", "/api/membership/notices/{}/objections",
             "/api/membership/notices/{}/objections/{}/resolution",
             "/api/membership/notices/{}/file"]
    answered = 0
    for _ in range(80):
        path = rng.choice(paths)
        path = path.format(*[rng.choice(ids) for _ in range(path.count("{}"))])
        body = {k: rng.choice(junk) for k in rng.sample(keys, rng.randint(0, len(keys)))}
        r = client.post(path, headers=h, json=body)
        assert r.status_code < 500, (path, body, r.get_data(as_text=True)[:300])
        if r.status_code >= 400:
            got = r.get_json(silent=True) or {}
            assert (r.mimetype == "application/problem+json" and got.get("title")) or \
                (r.status_code in (404, 405, 422) and (got.get("errors") or got.get("title")
                                                        or r.status_code == 404)), (path, got)
            if r.mimetype == "application/problem+json" and got.get("code", "").startswith(
                    "membership."):
                assert got.get("legal_source_zh"), got
            answered += 1
    assert answered >= 60
    for res in dbs.scalars(select(AssemblyResolution)):
        counted = res.yes if res.decision == "admit" else res.no
        asm = dbs.get(MemberAssembly, res.assembly_id)
        assert counted * asm.vote_den >= asm.vote_num * asm.members_total
    for n in dbs.scalars(select(RollNotice).where(RollNotice.status == "filed")):
        assert n.filed_on >= n.ends_on


# ------------------------------------------------------------------ the pages an officer needs
def test_officer_runs_assembly_notice_objections_and_filing_from_the_pages(app, dbs,
                                                                          login_as):
    """Open an assembly, record a vote, post the notice, lodge and resolve an objection and file
    the roll — from the desk's forms (CSRF, Chinese), the app clock deciding every date; a POST
    without the CSRF token records nothing."""
    from app.membership.models import MemberAssembly, RollNotice
    from tests.conftest import csrf_from
    from tests.test_membership_confirmation import _new_person

    c = _demo_collective(dbs)
    p = _new_person(dbs, c, "return", 31)
    a = ops.apply("officer", c, p, "return", facts={"livelihood": True}, reason="申请")
    browser = login_as("officer")
    desk = f"/membership/collectives/{c.id}"
    page = browser.get(desk).get_data(as_text=True)
    assert "登记成员大会" in page and "出席成员" in page
    token = csrf_from(page)
    today = ops.today()
    voters = [m.person_id for m in ops.members_on(c, today)]
    before = dbs.scalar(select(MemberAssembly.id).order_by(MemberAssembly.id.desc()))
    r = browser.post(f"/membership/collectives/{c.id}/assemblies",
                     data={"meeting_date": today.isoformat(), "attendee": voters, "reason": "x"})
    assert r.status_code == 400  # no CSRF token: refused, nothing recorded
    assert dbs.scalar(select(MemberAssembly.id).order_by(MemberAssembly.id.desc())) == before
    r = browser.post(f"/membership/collectives/{c.id}/assemblies",
                     data={"meeting_date": today.isoformat(), "attendee": voters,
                           "reason": "成员大会", "csrf_token": token})
    assert r.status_code == 302
    assembly = dbs.scalars(select(MemberAssembly).where(MemberAssembly.collective_id == c.id)
                           .order_by(MemberAssembly.id.desc())).first()
    assert assembly.members_total == len(voters) and ops.attended(assembly) == len(voters)
    page = browser.get(desk).get_data(as_text=True)
    assert f'id="resolve-{assembly.id}"' in page
    r = browser.post(f"/membership/assemblies/{assembly.id}/resolutions",
                     data={"application_id": a.id, "yes": assembly.needed - 1, "no": 0,
                           "abstain": 0, "decision": "admit", "reason": "表决",
                           "csrf_token": token})
    dbs.refresh(a)
    assert a.status == "pending"  # below the threshold: refused (flashed), nothing decided
    r = browser.post(f"/membership/assemblies/{assembly.id}/resolutions",
                     data={"application_id": a.id, "yes": assembly.needed, "no": 0,
                           "abstain": 0, "decision": "admit", "reason": "表决",
                           "csrf_token": token})
    assert r.status_code == 302
    dbs.refresh(a)
    assert a.status == "admitted"
    r = browser.post(f"/membership/assemblies/{assembly.id}/notice",
                     data={"reason": "公示", "csrf_token": token})
    assert r.status_code == 302
    notice = dbs.scalars(select(RollNotice).where(RollNotice.assembly_id == assembly.id)).one()
    assert notice.posted_on == today and notice.ends_on == today + dt.timedelta(days=7)
    r = browser.post(f"/membership/notices/{notice.id}/objections",
                     data={"objector": "村民甲", "text": "该申请人长期不在村", "application_id": a.id,
                           "csrf_token": token})
    assert r.status_code == 302
    (o,) = ops.objections(notice)
    r = browser.post(f"/membership/notices/{notice.id}/file",
                     data={"reason": "备案", "csrf_token": token})
    dbs.refresh(notice)
    assert notice.status == "posted"  # the notice still runs on the app clock
    r = browser.post(f"/membership/notices/{notice.id}/objections/{o.id}/resolution",
                     data={"resolution": "dismissed", "reasons": "经核实符合条件",
                           "csrf_token": token})
    assert r.status_code == 302
    dbs.refresh(o)
    assert o.resolution == "dismissed"
    later = dt.datetime.combine(notice.ends_on, dt.time(10), tzinfo=dt.timezone(
        dt.timedelta(hours=8)))
    app.config["APP_CLOCK"] = lambda: later
    try:
        r = browser.post(f"/membership/notices/{notice.id}/file",
                         data={"reason": "备案", "csrf_token": token})
    finally:
        app.config.pop("APP_CLOCK", None)
    assert r.status_code == 302
    dbs.refresh(notice)
    dbs.refresh(a)
    assert notice.status == "filed" and notice.filed_on == notice.ends_on
    assert a.status == "filed" and coll_ops.active_membership(p.id, c.id) is not None


# ------------------------------------------------------------------ money edges and files
def test_the_largest_amount_pays_exactly_and_one_more_is_refused(dbs, quantified):
    c, q, settled = quantified
    top = 2 ** 53 - 1
    d = ops.distribute("officer", c, top, PAID_ON, reason="年度分红")
    ps = ops.payouts(d)
    assert sum(p.amount_fen for p in ps) == top and d.status == "paid"
    assert any(p.person_id == settled.id and p.amount_fen > 0 for p in ps)
    for bad in (top + 1, 0, -1):
        with pytest.raises(DomainError) as e:
            ops.distribute("officer", c, bad, PAID_ON)
        assert e.value.code == "distribution.amount"


HOSTILE = ["=HYPERLINK(\"http://x\",\"点\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1+1",
           "<b>张三</b>&amp;"]


def test_hostile_names_are_inert_in_the_csv_bank_file_and_pdf(dbs, quantified):
    import csv
    import io

    from tests.test_certificates import pdftotext

    c, q, settled = quantified
    ops.set_bank_account("officer", settled, "长治农商银行", "6228480012345678901", reason="开户")
    for i, name in enumerate(HOSTILE):
        dbs.execute(text("UPDATE person SET name = :n WHERE id = :p"),
                    {"n": name, "p": settled.id})
        dbs.expire_all()
        d = ops.distribute("officer", c, 1_234_567 + i, PAID_ON, reason="年度分红")
        for data in (ops.payout_csv(d), ops.bank_batch_csv("officer", d, reason="报银行")):
            cells = [cell for row in csv.reader(io.StringIO(data.decode("utf-8-sig")))
                     for cell in row]
            assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r")
                           for cell in cells if cell and not cell[0].isdigit()), cells
            assert any(name.strip() in cell for cell in cells)
        if i == len(HOSTILE) - 1:  # markup is printed as text, never interpreted
            assert name in pdftotext(ops.render_payouts_pdf(d))


# ------------------------------------------------------------------ access: every id in a URL
def test_every_membership_id_is_guarded_against_other_villages_farmers_auditors_anonymous(
        app, dbs, login_as):
    from app.audit.models import AuditLog
    from app.auth import operations as auth_ops
    from app.membership.models import Distribution, RollNotice
    from app.people.models import Household
    from tests.conftest import csrf_from, user

    d = dbs.scalars(select(Distribution).order_by(Distribution.id)).first()
    c = d.collective
    a, assembly, voters = _round(dbs, c, n=7)
    ops.resolve("officer", assembly, a, assembly.needed, 0, 0, "admit", reason="表决")
    notice = ops.post_notice("officer", assembly, reason="公示")
    o = ops.lodge_objection("officer", notice, "村民", "异议", a)
    filed = dbs.scalar(select(RollNotice).where(RollNotice.collective_id == c.id,
                                                RollNotice.status == "filed"))
    farmer = user("farmer")
    other_hh = dbs.scalars(select(Household).where(Household.collective_id == c.id,
                                                   Household.cbfbm != farmer.household_code)
                           .order_by(Household.id)).first()
    writes = [
        (f"/membership/collectives/{c.id}/assemblies", {"meeting_date": "2025-09-01",
                                                        "attendee": voters[:2], "reason": "x"}),
        (f"/membership/assemblies/{assembly.id}/resolutions",
         {"application_id": a.id, "yes": 99, "no": 0, "abstain": 0, "decision": "reject"}),
        (f"/membership/assemblies/{assembly.id}/notice", {"reason": "x"}),
        (f"/membership/notices/{notice.id}/objections", {"objector": "x", "text": "x"}),
        (f"/membership/notices/{notice.id}/objections/{o.id}/resolution",
         {"resolution": "upheld", "reasons": "x"}),
        (f"/membership/notices/{notice.id}/file", {"reason": "x"}),
        (f"/membership/distributions/{d.id}/bank.csv", {"reason": "x"}),
        (f"/membership/collectives/{c.id}/distributions", {"amount": "1", "reason": "x"}),
    ]
    audit_before = dbs.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()))
    for who in ("officer2", "auditor", "farmer", "bureau"):
        browser = login_as(who)
        token = csrf_from(browser.get("/me" if who == "farmer" else "/membership/")
                          .get_data(as_text=True))
        for path, data in writes:
            r = browser.post(path, data={**data, "csrf_token": token})
            assert r.status_code in (403, 404), (who, path, r.status_code)
    anonymous = app.test_client()
    for path, data in writes:
        assert anonymous.post(path, data=data).status_code in (302, 400, 401, 403)
    # the API with another village's token
    token = auth_ops.issue_api_token(None, user("officer2"))
    api = app.test_client()
    h = {"Authorization": f"Bearer {token}"}
    for path, body in [
            (f"/api/membership/assemblies/{assembly.id}/resolutions",
             {"application_id": a.id, "yes": 99, "no": 0, "abstain": 0, "decision": "reject"}),
            (f"/api/membership/assemblies/{assembly.id}/notice", {}),
            (f"/api/membership/notices/{notice.id}/objections", {"objector": "x", "text": "x"}),
            (f"/api/membership/notices/{notice.id}/objections/{o.id}/resolution",
             {"resolution": "upheld", "reasons": "x"}),
            (f"/api/membership/notices/{notice.id}/file", {}),
            (f"/api/membership/collectives/{c.id}/distributions",
             {"amount_fen": 1, "paid_on": "2025-12-20"})]:
        assert api.post(path, headers=h, json=body).status_code in (403, 404), path
    assert api.get(f"/api/membership/distributions/{d.id}", headers=h).status_code in (403, 404)
    # nothing was written by any of them
    dbs.expire_all()
    assert dbs.scalar(select(AuditLog.id).where(
        AuditLog.id > (audit_before or 0), AuditLog.action.like("membership.%")
        | AuditLog.action.like("distribution.%"))) is None
    assert a.status == "admitted" and o.resolution is None and notice.status == "posted"
    # reads: a farmer never reads another household's certificate; another village's officer
    # never reads the filed roll or the ledger
    f = login_as("farmer")
    qn = ops.latest_quantification(c)
    assert f.get(f"/membership/quantifications/{qn.id}/households/{other_hh.id}/"
                 "certificate.pdf").status_code in (403, 404)
    o2 = login_as("officer2")
    assert o2.get(f"/membership/notices/{filed.id}/roll.pdf").status_code in (403, 404)
    assert o2.get(f"/membership/distributions/{d.id}/payouts.csv").status_code in (403, 404)


def test_generated_faults_in_the_desk_forms_are_answered_not_crashed(app, dbs, login_as):
    """Seeded garbage into every form of the desk: a 4xx or a flashed refusal (302), never a
    500, and no run paid from garbage."""
    import random

    from app.membership.models import Distribution
    from tests.conftest import csrf_from

    d = dbs.scalars(select(Distribution).order_by(Distribution.id)).first()
    c = d.collective
    runs_before = len(ops.distributions(c))
    browser = login_as("officer")
    token = csrf_from(browser.get(f"/membership/collectives/{c.id}").get_data(as_text=True))
    rng = random.Random(55)
    junk = ["", "x", "-1", "0", "1.234", "2025-02-30", "1e3", "NaN", "9" * 40,
            "<script>", "进城落户的不分", "=1+1"]
    keys = ["amount", "paid_on", "note", "reason", "meeting_date", "attendee", "application_id",
            "yes", "no", "abstain", "decision", "id_number", "basis"]
    paths = [f"/membership/collectives/{c.id}/distributions",
             f"/membership/collectives/{c.id}/assemblies",
             f"/membership/collectives/{c.id}/applications"]
    for _ in range(40):
        data = {k: rng.choice(junk) for k in rng.sample(keys, rng.randint(0, len(keys)))}
        r = browser.post(rng.choice(paths), data={**data, "csrf_token": token})
        assert r.status_code < 500, (data, r.get_data(as_text=True)[:300])
    assert len(ops.distributions(c)) == runs_before


# ------------------------------------------------------------------ concurrency, two connections
@pytest.mark.deep
def test_two_concurrent_decisions_on_one_application_one_wins(app, owner_engine):
    """Two officers record a decision on the same applicant at once, on two real connections:
    the database locks the application, so exactly one resolution is recorded."""
    import threading

    from app.extensions import db

    with app.app_context():
        engine = db.engines[None]
        with engine.begin() as conn:
            c_id = conn.execute(text(
                "SELECT collective_id FROM membership WHERE ended_on IS NULL "
                "GROUP BY collective_id ORDER BY count(*) DESC, collective_id LIMIT 1")).scalar()
            meeting = dt.date(2025, 12, 1)
            voters = conn.execute(text(
                "SELECT DISTINCT person_id FROM membership WHERE collective_id = :c AND "
                "began_on <= :m AND (ended_on IS NULL OR ended_on > :m)"),
                {"c": c_id, "m": meeting}).scalars().all()
            person = conn.execute(text(
                "SELECT id FROM person WHERE id NOT IN (SELECT person_id FROM membership "
                "WHERE collective_id = :c) ORDER BY id LIMIT 1"), {"c": c_id}).scalar()
            app_id = conn.execute(text(
                "INSERT INTO membership_application (collective_id, person_id, basis, criteria, "
                "status, submitted_by) VALUES (:c, :p, 'return', '{}', 'pending', 'race') "
                "RETURNING id"), {"c": c_id, "p": person}).scalar()
            asm = conn.execute(text(
                "INSERT INTO member_assembly (collective_id, meeting_date, members_total, "
                "vote_num, vote_den, created_by) VALUES (:c, :m, :n, 2, 3, 'race') RETURNING id"),
                {"c": c_id, "m": meeting, "n": len(voters)}).scalar()
            for v in voters:
                conn.execute(text("INSERT INTO member_assembly_attendance VALUES (:a, :p)"),
                             {"a": asm, "p": v})
        barrier, results = threading.Barrier(2), []

        def decide(decision):
            try:
                with engine.begin() as conn:
                    barrier.wait(timeout=20)
                    conn.execute(text(
                        "INSERT INTO member_assembly_resolution (assembly_id, application_id, "
                        "yes, no, abstain, decision, recorded_by) VALUES (:a, :p, :y, :n, 0, "
                        ":d, 'race')"), {"a": asm, "p": app_id, "d": decision,
                                         "y": len(voters) if decision == "admit" else 0,
                                         "n": len(voters) if decision == "reject" else 0})
                    conn.execute(text("SELECT pg_sleep(0.3)"))  # hold the lock a moment
                results.append(decision)
            except DBAPIError as e:
                results.append(str(e.orig))

        threads = [threading.Thread(target=decide, args=(d,)) for d in ("admit", "reject")]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            with engine.connect() as conn:
                n = conn.execute(text("SELECT count(*) FROM member_assembly_resolution WHERE "
                                      "application_id = :p"), {"p": app_id}).scalar()
            assert n == 1, results
            assert sum(r in ("admit", "reject") for r in results) == 1, results
            assert any("not_pending" in r for r in results), results
        finally:
            with owner_engine.begin() as conn:
                for t in ("member_assembly_resolution", "member_assembly_attendance",
                          "member_assembly"):
                    conn.execute(text(f"ALTER TABLE {t} DISABLE TRIGGER USER"))
                conn.execute(text("DELETE FROM member_assembly_resolution WHERE assembly_id = :a"),
                             {"a": asm})
                conn.execute(text("DELETE FROM member_assembly_attendance WHERE assembly_id = :a"),
                             {"a": asm})
                conn.execute(text("DELETE FROM member_assembly WHERE id = :a"), {"a": asm})
                conn.execute(text("DELETE FROM membership_application WHERE id = :p"),
                             {"p": app_id})
                for t in ("member_assembly_resolution", "member_assembly_attendance",
                          "member_assembly"):
                    conn.execute(text(f"ALTER TABLE {t} ENABLE TRIGGER USER"))
