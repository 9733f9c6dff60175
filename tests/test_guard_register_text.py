"""The rights guard on the register's own free text (issue 19, with issue 11's detector): the
reasons and remarks of parcel amendments, splits and merges, of import corrections and
acceptances, of a campaign's objection decisions and of a contract's extension.  Settling in
town never requires giving up a right, so no register change may carry a wording that ties
one to the other (农村土地承包法 art 27; 乡村振兴促进法 art 55; 农村集体经济组织法 art 17).

The adversarial wordings are generated (seeded): refused base wordings of the policy's groups
and generated trades (以/用/拿 + a right + 换 + what is got) put through the disguises the old
keyword check let pass (traditional characters, spacing, full width, zero-width characters,
HTML entities, URL-encoding, pinyin), inside ordinary sentences.  The guard is in the
operations, so the API and the pages refuse alike; lawful reasons beside them still pass."""
from __future__ import annotations

import random

import pytest
from sqlalchemy import select, text

from app import guardtext
from app.audit.models import AuditLog
from app.auth import operations as auth_ops
from app.errors import DomainError
from app.imports import operations as imports
from app.imports.models import ImportRecord
from app.parcels import operations as parcel_ops
from app.parcels.models import Parcel
from tests.conftest import csrf_from, user
from tests.test_guardtext import HITS, NEUTRAL, variants
from tests.test_import_attacks import _quarantined_parcel
from tests.test_settlement import certified  # noqa: F401

LAWS = ("农村土地承包法", "乡村振兴促进法", "农村集体经济组织法")
DISGUISES = ("plain", "traditional", "spaced", "full-width", "zero-width", "soft-hyphen",
             "html-entities", "html-entities-twice", "url-encoded", "url-encoded-twice", "mixed",
             "pinyin", "pinyin-tones")
CONTEXT = [("", ""), ("地块更正：", ""), ("经核实，", "。"), ("备注 ", "，特此说明"),
           ("Reason: ", " (checked)")]


def _trades(rng: random.Random, n: int) -> list[str]:
    c = guardtext._data()["condition"]  # the lexicon's own trade parts
    by, what, got = c["trade_by"], c["trade_what"], c["trade_for"]
    return [f"{rng.choice(by)}{rng.choice(what)}换{rng.choice(got)}" for _ in range(n)]


def adversarial(seed: int, n: int, policy: str = "register") -> list[str]:
    """`n` disguised wordings the register policy refuses, each inside a sentence (a remark's
    or 四至's policy, "register_remark", refuses trades and surrenders only)."""
    rng = random.Random(seed)
    base = [t for t in HITS if guardtext.check(policy, t)] + _trades(rng, 20)
    out = []
    while len(out) < n:
        word = rng.choice(base)
        name = rng.choice(DISGUISES)
        if name.startswith("pinyin") and not any(
                guardtext.pinyin_matchable(h.word) for h in guardtext.check(policy, word)):
            continue  # a wording matched only in characters is not expected in pinyin
        pre, post = rng.choice(CONTEXT)
        out.append(pre + variants(word)[name] + post)
    return out


def lawful(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return rng.sample([t for t in NEUTRAL if not guardtext.check("register", t)], n)


def _bearer(username: str) -> dict:
    return {"Authorization": f"Bearer {auth_ops.issue_api_token(None, user(username))}"}


def _refusals(dbs, action: str) -> list[AuditLog]:
    return dbs.scalars(select(AuditLog).where(AuditLog.action == action)
                       .order_by(AuditLog.seq)).all()


def _is_guard_problem(r):
    assert r.status_code == 422, (r.status_code, r.get_data(as_text=True)[:300])
    p = r.get_json()
    assert r.mimetype == "application/problem+json" and p["code"] == "guard.text", p
    for law in LAWS:
        assert law in p["legal_source_zh"], p


def test_the_generated_wordings_are_disguised_and_varied():
    texts = adversarial(1901, 60)
    assert len(set(texts)) >= 50
    # most are not the plain lexicon entry: the disguise is what is tested
    assert sum(not any(w in t for w in HITS) for t in texts) >= 30


def test_parcel_amendment_refuses_disguised_reasons_and_remarks_through_the_api(app, dbs):
    c, h = app.test_client(), _bearer("bureau")
    p = dbs.scalar(select(Parcel).where(Parcel.end_lifespan.is_(None)).order_by(Parcel.code))
    before = len(_refusals(dbs, "parcel.amend.refused"))
    version0 = p.version
    texts = [r if i % 2 == 0 else m for i, (r, m) in
             enumerate(zip(adversarial(1902, 16), adversarial(1912, 16, "register_remark"), strict=True))]
    for i, t in enumerate(texts):
        body = {"reason": t} if i % 2 == 0 else {"reason": "备注更正", "remarks": t[:254]}
        _is_guard_problem(c.post(f"/api/parcels/{p.id}/amend", json=body, headers=h))
    dbs.refresh(p)
    assert p.end_lifespan is None  # still the current version
    assert dbs.scalar(select(Parcel.version).where(Parcel.uid == p.uid,
                                                   Parcel.end_lifespan.is_(None))) == p.version
    refused = _refusals(dbs, "parcel.amend.refused")[before:]
    assert len(refused) == len(texts)  # every attempt is recorded, with the text
    assert [r.changes["field"] for r in refused] == [
        "reason" if i % 2 == 0 else "remarks" for i in range(len(texts))]
    assert all(r.changes["rule"] == "guard.text" and r.changes["text"] for r in refused)
    # the lawful path beside it: ordinary reasons and remarks make a new version
    for i, t in enumerate(lawful(1903, 3)):
        r = c.post(f"/api/parcels/{p.id}/amend", json={"reason": t, "remarks": f"备注{i}"},
                   headers=h)
        assert r.status_code == 200, r.get_data(as_text=True)
        p = dbs.get(Parcel, r.get_json()["id"])
    assert p.version == version0 + 3 and p.end_lifespan is None


def test_split_merge_and_register_refuse_a_disguised_reason(dbs):
    ps = dbs.scalars(select(Parcel).where(Parcel.end_lifespan.is_(None))
                     .order_by(Parcel.code).limit(2)).all()
    for seed, t in enumerate(adversarial(1904, 6)):
        with pytest.raises(DomainError) as e:
            if seed % 3 == 0:
                parcel_ops.split("bureau", ps[0], [("x", "POLYGON EMPTY")], t)
            elif seed % 3 == 1:
                parcel_ops.merge("bureau", ps, ps[0].code + "9", t)
            else:
                parcel_ops.register("bureau", "contract", ps[0].code + "8", ps[0].collective_id,
                                    "POLYGON EMPTY", ps[0].survey_srid, t)
        assert e.value.code == "guard.text"
    for what in ("split", "merge", "register"):
        assert _refusals(dbs, f"parcel.{what}.refused"), what
    assert all(p.end_lifespan is None for p in ps)


def test_import_corrections_and_acceptance_refuse_disguised_text(app, dbs, tmp_path,
                                                                 login_as):
    d, batch, f = _quarantined_parcel(dbs, tmp_path, 9391)
    texts = adversarial(1905, 9)
    remarks = adversarial(1913, 4, "register_remark")
    h, c = _bearer("bureau"), app.test_client()
    # through the API: the reason, and a remark written into the delivery's attributes
    for i, t in enumerate(texts[:4]):
        body = ({"reason": t, "attrs": {}} if i % 2 == 0 else
                {"reason": "面积更正", "attrs": {"DKBZXX": remarks[i]}})
        _is_guard_problem(c.post(f"/api/imports/features/{f.id}/correct", json=body,
                                 headers=h))
    # through the page: refused by the same operation, the law shown
    page = login_as("bureau")
    url = f"/imports/features/{f.id}/correct"
    form = page.get(url).get_data(as_text=True)
    r = page.post(url, data={"csrf_token": csrf_from(form), "attrs": "{}", "wkt": "",
                             "reason": texts[4]}, follow_redirects=True)
    assert LAWS[0] in r.get_data(as_text=True)
    dbs.refresh(f)
    assert f.status == "quarantined"
    assert len(_refusals(dbs, "import.refused.text")) == 5
    # an ownership record's correction and the batch's acceptance, in the operations
    rec = dbs.scalar(select(ImportRecord).where(ImportRecord.batch_id == batch.id))
    with pytest.raises(DomainError) as e:
        imports.correct_record("bureau", rec, {}, texts[5])
    assert e.value.code == "guard.text"
    with pytest.raises(DomainError) as e:
        imports.accept("bureau", batch, valid_part=True, reason=texts[6])
    assert e.value.code == "guard.text"
    assert len(_refusals(dbs, "import.refused.text")) == 7
    # a lawful reason corrects (the area fault fixed: the feature is registered)
    area = d.dk[0][0]["SCMJ"]
    r = c.post(f"/api/imports/features/{f.id}/correct", headers=h,
               json={"reason": lawful(1906, 1)[0], "attrs": {"SCMJ": area - 50}})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert dbs.scalar(text("SELECT status FROM import_feature WHERE id = :i"),
                      {"i": r.get_json()["id"]}) == "registered"


def test_rights_extension_refuses_a_disguised_reason(dbs, certified):  # noqa: F811
    from app.rights import operations as rights
    from app.rights.models import Right

    right = dbs.scalar(select(Right).where(Right.holder_household_code == certified.cbfbm,
                                           Right.end_lifespan.is_(None),
                                           Right.kind == "land_contract"))
    term_end = right.term_end
    for t in adversarial(1907, 3):
        with pytest.raises(DomainError) as e:
            rights.extend_contract("bureau", right, 30, t)
        assert e.value.code == "guard.text"
    assert len(_refusals(dbs, "right.extend.refused")) == 3
    dbs.refresh(right)
    assert right.end_lifespan is None and right.term_end == term_end
    # a lawful reason extends it (a new version, 30 years later)
    new = rights.extend_contract("bureau", right, 30, lawful(1908, 1)[0])
    assert new.term_end.year == term_end.year + 30


def test_campaign_objection_decisions_refuse_disguised_text(dbs):
    import datetime as dt

    from app.campaigns import operations as campaigns
    from app.campaigns.models import Objection
    from tests.test_import_sample import SAMPLE

    group = "14040410120101"
    batch = imports.run("bureau", SAMPLE)
    imports.accept("bureau", batch, valid_part=True)
    c = campaigns.open_campaign("bureau", group, batch.id, "确权")
    start = dt.date.today() - dt.timedelta(days=8)
    campaigns.publish_notice("bureau", c, start=start)
    p = dbs.scalars(select(Parcel).where(Parcel.code.like(group + "%"),
                                         Parcel.end_lifespan.is_(None))).first()
    o = campaigns.lodge_objection("bureau", c, "holder", "不是他家的", "村民乙", p.code,
                                  today=start + dt.timedelta(days=3))
    texts = adversarial(1909, 4)
    for i, t in enumerate(texts):
        with pytest.raises(DomainError) as e:
            (campaigns.dismiss if i % 2 == 0 else campaigns.uphold)("bureau", o, t)
        assert e.value.code == "guard.text"
    assert dbs.get(Objection, o.id).status == "open"
    assert len(_refusals(dbs, "campaign.objection.refused")) == len(texts)
    campaigns.dismiss("bureau", o, lawful(1910, 1)[0])
    assert o.status == "dismissed"
