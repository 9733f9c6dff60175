"""Membership pages and API: the officer's desk, township staff's filed rolls, the auditor's runs
and ledgers, the farmer's 我的股份 / 我的分红 (the demo's collective), problem JSON on refusals."""

from sqlalchemy import select

from app.audit.models import AuditLog
from app.auth import operations as auth_ops
from app.membership import operations as ops
from app.membership.models import Distribution, Payout, RollNotice
from tests.conftest import user


def _demo_run(dbs) -> Distribution:
    return dbs.scalars(select(Distribution).order_by(Distribution.id)).first()


def test_the_demo_has_a_filed_roll_shares_and_a_paid_run_with_a_settled_member(dbs):
    d = _demo_run(dbs)
    assert d is not None and d.status == "paid"
    assert dbs.scalar(select(RollNotice.id).where(RollNotice.collective_id == d.collective_id,
                                                  RollNotice.status == "filed"))
    settled = [p for p in ops.payouts(d) if p.person_id and ops.settled_in_town(p.person_id)]
    assert settled and all(p.amount_fen > 0 for p in settled)
    from app.membership.demo import load_demo

    before = dbs.scalar(select(Payout.id).order_by(Payout.id.desc()))
    load_demo()  # idempotent
    assert dbs.scalar(select(Payout.id).order_by(Payout.id.desc())) == before


def test_officer_desk_and_distribution_pages_are_chinese_and_masked(login_as, dbs):
    d = _demo_run(dbs)
    c = login_as("officer")
    page = c.get(f"/membership/collectives/{d.collective_id}").get_data(as_text=True)
    assert "成员" in page and "股份" in page
    page = c.get(f"/membership/distributions/{d.id}").get_data(as_text=True)
    p = next(p for p in ops.payouts(d) if p.person_id)
    assert p.person.id_number not in page and ops.fen(p.amount_fen) in page
    assert c.get(f"/membership/distributions/{d.id}/payouts.pdf").data[:4] == b"%PDF"
    assert p.person.id_number not in c.get(
        f"/membership/distributions/{d.id}/payouts.csv").get_data(as_text=True)
    page = c.get(f"/membership/distributions/{d.id}").get_data(as_text=True)
    from tests.conftest import csrf_from

    r = c.post(f"/membership/distributions/{d.id}/bank.csv",
               data={"csrf_token": csrf_from(page), "reason": "报送银行"})
    assert r.status_code == 200 and "account,name,amount" in r.get_data(as_text=True)
    assert dbs.scalars(select(AuditLog).where(
        AuditLog.action == "distribution.bank_file.download",
        AuditLog.object_id == str(d.id))).first()


def test_township_staff_read_filed_rolls_and_auditors_every_ledger(login_as, dbs):
    d = _demo_run(dbs)
    n = dbs.scalar(select(RollNotice).where(RollNotice.collective_id == d.collective_id,
                                            RollNotice.status == "filed"))
    b = login_as("bureau")
    assert n.id in [x["id"] for x in b.get("/api/membership/filed-rolls").get_json()]
    assert b.get(f"/membership/notices/{n.id}/roll.pdf").data[:4] == b"%PDF"
    a = login_as("auditor")
    runs = a.get("/api/membership/distributions").get_json()
    assert d.id in [x["id"] for x in runs]
    ledger = a.get(f"/api/membership/distributions/{d.id}").get_json()
    assert sum(p["amount_fen"] for p in ledger["payouts"]) == d.amount_fen
    assert a.post(f"/api/membership/collectives/{d.collective_id}/distributions",
                  json={}).status_code in (401, 403)
    assert login_as("officer2").get(f"/membership/distributions/{d.id}").status_code == 403


def test_farmer_sees_my_shares_and_my_dividends(login_as, dbs):
    f = login_as("farmer")
    page = f.get("/me").get_data(as_text=True)
    assert "我的股份" in page and "我的分红" in page
    mine = dbs.scalar(select(Payout).where(Payout.person_id == user("farmer").person_id))
    assert mine is not None and ops.fen(mine.amount_fen) in page
    data = f.get("/api/membership/me").get_json()
    assert data["dividends"][0]["amount"] == ops.fen(mine.amount_fen)


def test_api_refuses_an_exclusion_with_problem_json_and_runs_a_lawful_one(app, dbs):
    d = _demo_run(dbs)
    token = auth_ops.issue_api_token(None, user("officer"))
    h = {"Authorization": f"Bearer {token}"}
    c = app.test_client()
    r = c.post(f"/api/membership/collectives/{d.collective_id}/distributions", headers=h,
               json={"amount_fen": 100000, "paid_on": "2026-01-10",
                     "rule": {"exclude": ["settled_in_town"]}, "reason": "x"})
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["code"] == "distribution.rule.art55" and "乡村振兴促进法" in body["legal_source_zh"]
    r = c.post(f"/api/membership/collectives/{d.collective_id}/distributions", headers=h,
               json={"amount_fen": 100001, "paid_on": "2026-01-10", "reason": "二次分红"})
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["status"] == "paid"
    assert ops.parse_yuan("1,234.5") == 123450 and ops.parse_yuan("7") == 700
    for bad in ("1.234", "-1", "1e3", ""):
        try:
            ops.parse_yuan(bad)
            raise AssertionError(bad)
        except Exception as e:  # noqa: BLE001
            assert getattr(e, "code", "") == "distribution.amount"


def test_generated_faults_in_api_input_are_refused_not_crashed(app, dbs):
    """Seeded garbage into every membership write: each is answered (4xx, JSON), none
    is a 500, and nothing half-written remains (the ledger still sums to its amount)."""
    import random

    d = _demo_run(dbs)
    token = auth_ops.issue_api_token(None, user("officer"))
    h = {"Authorization": f"Bearer {token}"}
    c = app.test_client()
    rng = random.Random(15)
    junk = [None, "", "x" * 5000, -1, 0, 2 ** 63, 1.5, True, [], {}, "1e3", "２０", "NaN",
            "2025-02-30", {"exclude": ["settled"]}, ["进城落户"], "<script>", "0x10"]
    paths = [f"/api/membership/collectives/{d.collective_id}/distributions",
             f"/api/membership/collectives/{d.collective_id}/applications",
             f"/api/membership/collectives/{d.collective_id}/assemblies",
             f"/api/membership/collectives/{d.collective_id}/quantifications"]
    keys = ["amount_fen", "paid_on", "rule", "note", "reason", "person_id", "basis", "special",
            "meeting_date", "attendees", "base_date", "asset_value_fen", "livelihood"]
    answered = 0
    for _ in range(60):
        body = {k: rng.choice(junk) for k in rng.sample(keys, rng.randint(1, len(keys)))}
        r = c.post(rng.choice(paths), headers=h, json=body)
        assert r.status_code < 500, (body, r.get_data(as_text=True)[:300])
        if r.status_code >= 400:  # a rule: problem JSON; a malformed field: the schema's errors
            body = r.get_json()
            assert (r.mimetype == "application/problem+json" and body.get("title")) or \
                (r.status_code == 422 and body.get("errors")), body
            answered += 1
    assert answered >= 50
    for run in ops.distributions():
        assert sum(p.amount_fen for p in ops.payouts(run)) == run.amount_fen
