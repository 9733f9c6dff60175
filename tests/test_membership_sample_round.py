"""A full membership confirmation round on the REAL sample delivery (village-sample), one
villagers' group: the delivery imported through the app's import, the initial roll proposed
from its households' members (CBF_JTCY), applications of every basis for persons derived from
the delivery's households, an assembly below the threshold refused and one above accepted (the
threshold from the roll's size), the notice, an objection upheld and one dismissed, filing after
the notice ends on the app clock, and the filed roll PDF read back with pdftotext."""
import csv
import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.audit.models import AuditLog
from app.collectives import operations as coll_ops
from app.errors import DomainError
from app.membership import operations as ops
from app.membership.models import APPLICATION_BASES
from app.people import operations as people_ops
from app.people.idnumber import check_digit, mask
from app.people.models import Household
from tests.conftest import shared_session
from tests.test_certificates import pdftotext
from tests.test_exports import _sample  # noqa: F401  (the delivery imported once per module)
from tests.test_import_sample import SAMPLE

CHINA = ZoneInfo("Asia/Shanghai")


@pytest.fixture()
def dbs(app, _sample):  # noqa: F811
    yield from shared_session(app, _sample[0])


def _delivery_members():
    """{group: {id number: name}} of CBF_JTCY, without the IDs the delivery's KNOWN_ERRORS
    lists as faulty (the import quarantines them)."""
    with open(SAMPLE / "KNOWN_ERRORS.csv", encoding="utf-8") as f:
        bad = {re.search(r"id (\w+)", r["detail"]).group(1).upper()
               for r in csv.DictReader(f) if r["kind"] == "bad_id_checksum"}
    out: dict[str, dict[str, str]] = {}
    with open(SAMPLE / "权属数据" / "CBF_JTCY.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["CYZJHM"].upper() not in bad and r.get("CYZJLX", "1") in ("", "1"):
                out.setdefault(r["CBFBM"][:14], {})[r["CYZJHM"].upper()] = r["CYXM"]
    return out


def _person(c, hh, basis, born, n):
    """A person derived from a delivery household: its surname, hukou in its village."""
    first = f"{c.village_code[:6]}{born:%Y%m%d}{900 + n * 2:03d}"
    return people_ops.register_person("hukou", first + check_digit(first),
                                      f"{hh.name[0]}{'新迁继回他入'[n]}{basis[:1]}",
                                      c.village_code, reason="户口登记")


def test_a_full_confirmation_round_on_the_imported_sample_village(app, dbs, monkeypatch):
    members = _delivery_members()
    group = min(members, key=lambda g: (len(members[g]), g))  # the smallest group: fast
    expected = members[group]
    c = coll_ops.by_code(group)
    assert c is not None and not coll_ops.roll(c)  # the import makes no roll
    t0 = dt.datetime.now(CHINA).replace(hour=10, minute=0, second=0, microsecond=0)
    clock = {"now": t0}
    monkeypatch.setitem(app.config, "APP_CLOCK", lambda: clock["now"])
    today = t0.date()

    # -------------------------------------------------------------- the initial roll proposed
    with pytest.raises(DomainError) as e:
        ops.propose_initial_roll("officer", c, today, reason=" ")
    assert e.value.code == "membership.initial_roll.reason" and "初始" in e.value.message("zh")
    initial = ops.propose_initial_roll("officer", c, today, reason="村民小组会议推举初始名册")
    assert {m.person.id_number: m.person.name for m in initial} == expected
    assert all(m.basis == "original" and m.confirmed_on is None for m in initial)
    assert dbs.scalars(select(AuditLog).where(
        AuditLog.action == "membership.initial_roll.propose",
        AuditLog.object_id == c.fbfbm)).one().reason == "村民小组会议推举初始名册"
    with pytest.raises(DomainError) as e:
        ops.propose_initial_roll("officer", c, today, reason="再来一次")
    assert e.value.code == "membership.initial_roll.exists" and c.name in e.value.message("zh")

    # -------------------------------------------------------------- applications, every basis
    hhs = list(dbs.scalars(select(Household).where(Household.collective_id == c.id)
                           .order_by(Household.cbfbm)))
    assert {h.cbfbm[:14] for h in hhs} == {group}
    born = {"birth": today - dt.timedelta(days=30), "marriage": dt.date(1999, 4, 3),
            "adoption": dt.date(2018, 6, 5), "resettlement": dt.date(1981, 2, 7),
            "return": dt.date(1977, 9, 9), "other": dt.date(1991, 11, 11)}
    relation = {"birth": "20", "marriage": "10", "adoption": "30"}
    apps = {}
    for i, basis in enumerate(APPLICATION_BASES):
        hh = hhs[i * len(hhs) // len(APPLICATION_BASES)]
        p = _person(c, hh, basis, born[basis], i)
        if basis in relation:  # a newborn, a spouse, an adopted child of a delivery household
            people_ops.add_member("officer", hh, p, relation[basis], reason="入户")
        special = {"return": ["student"], "other": ["soldier"]}.get(basis, [])
        apps[basis] = ops.apply("officer", c, p, basis, facts={"livelihood": True},
                                special=special, reason="成员资格申请")
    for basis, a in apps.items():
        assert a.status == "pending"
        assert a.criteria["hukou"]["met"] is True
        assert a.criteria["rights_duties"]["met"] is (basis in relation)
        assert a.criteria["normally_confirmed"] is (basis in ops.NORMALLY_CONFIRMED)

    # -------------------------------------------------------------- the members' assembly
    voters = [m.person_id for m in ops.members_on(c, today)]
    assert len(voters) == len(expected)
    rule = ops.charter_rule(c)
    needed = -(-len(voters) * rule.vote_num // rule.vote_den)  # from the roll's size
    assembly = ops.open_assembly("officer", c, today, voters, reason="成员大会")
    assert assembly.needed == needed and assembly.members_total == len(expected)
    with pytest.raises(DomainError) as e:  # below the threshold: refused
        ops.resolve("officer", assembly, apps["birth"], needed - 1, 0, 1, "admit")
    assert e.value.code == "membership.assembly.threshold"
    assert apps["birth"].status == "pending"
    admitted = [b for b in APPLICATION_BASES if b != "other"]
    for basis in admitted:  # at the threshold: decided
        ops.resolve("officer", assembly, apps[basis], needed, len(voters) - needed, 0, "admit")
    ops.resolve("officer", assembly, apps["other"], 0, needed, 0, "reject")

    # -------------------------------------------------------------- the notice, objections
    notice = ops.post_notice("officer", assembly, reason="公示")
    assert notice.posted_on == today
    assert notice.ends_on == today + dt.timedelta(days=rule.notice_days)
    upheld = ops.lodge_objection("officer", notice, "村民甲", "安置手续尚未办结",
                                 application=apps["resettlement"])
    clock["now"] = t0 + dt.timedelta(days=2)
    dismissed = ops.lodge_objection("officer", notice, "村民乙", "该申请人在外上学，不应确认",
                                    application=apps["return"])
    ops.resolve_objection("officer", upheld, "upheld", "安置批文未到，待下次成员大会")
    ops.resolve_objection("officer", dismissed, "dismissed", "在校学习不丧失成员身份")
    with pytest.raises(DomainError) as e:  # the app clock is still inside the notice
        ops.file_roll("officer", notice)
    assert e.value.code == "membership.notice.running"

    # -------------------------------------------------------------- filed after the notice
    clock["now"] = t0 + dt.timedelta(days=rule.notice_days)
    filed = ops.file_roll("officer", notice, reason="报乡镇备案")
    assert filed.filed_on == notice.ends_on
    joined = [apps[b] for b in admitted if b != "resettlement"]
    roll = coll_ops.roll(c)
    assert {m.person_id for m in roll} == \
        {m.person_id for m in initial} | {a.person_id for a in joined}
    assert filed.roll_size == len(expected) + len(joined)
    assert all(m.confirmed_on == notice.ends_on for m in roll)  # the round confirmed it
    for a in (apps["resettlement"], apps["other"]):
        assert coll_ops.active_membership(a.person_id, c.id) is None
    page = pdftotext(filed.pdf)
    flat = re.sub(r"\s+", "", page)
    assert c.fbfbm in flat and str(filed.roll_size) in page
    for number, name in expected.items():  # every name of the delivery's group
        assert name in page and mask(number) in page and number not in page
    for a in joined:
        assert a.person.name in page
    assert re.sub(r"\s+", "", upheld.reasons) in flat
    assert re.sub(r"\s+", "", dismissed.reasons) in flat
