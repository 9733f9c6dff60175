"""A full membership confirmation round on the sample village: applications of every basis with
the law's criteria shown and special cases flagged, a members' assembly below and above the
charter's threshold (operation and database), the public notice, one objection upheld and one
dismissed, and the final roll filed with the township as a PDF read back with pdftotext.
Then shares (股份量化, static or periodic, inheritance in the household, 股权证)."""
import datetime as dt
import re

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditLog
from app.collectives import operations as coll_ops
from app.collectives.models import Collective, Membership
from app.errors import DomainError
from app.membership import operations as ops
from app.membership.models import APPLICATION_BASES, MembershipApplication
from app.people import operations as people_ops
from app.people.idnumber import check_digit, mask
from app.people.models import Household
from tests.test_certificates import pdftotext

BORN = {"birth": dt.date(2025, 3, 1), "marriage": dt.date(1998, 5, 2),
        "adoption": dt.date(2016, 7, 3), "resettlement": dt.date(1980, 8, 4),
        "return": dt.date(1975, 9, 5), "other": dt.date(1990, 10, 6)}


def _new_person(dbs, collective: Collective, basis: str, n: int):
    seq = 700 + n * 2
    first = f"{collective.village_code[:6]}{BORN[basis]:%Y%m%d}{seq:03d}"
    number = first + check_digit(first)
    return people_ops.register_person("hukou", number, f"申请人{basis[:3]}{n}",
                                      collective.village_code, reason="户口登记")


def _village(dbs) -> Collective:
    """A village group of the sample county with a roll and no shares yet (the demo's own
    collective has them)."""
    from app.membership.models import Quantification

    return dbs.scalars(select(Collective).where(
        Collective.id.not_in(select(Quantification.collective_id)),
        Collective.id.in_(select(Membership.collective_id))).order_by(Collective.id)).first()


def test_a_full_confirmation_round_on_the_sample_village(dbs):
    c = _village(dbs)
    hh = dbs.scalars(select(Household).where(Household.collective_id == c.id)
                     .order_by(Household.id)).first()
    members_before = len(coll_ops.roll(c))
    # -------------------------------------------------------------- applications, every basis
    apps = {}
    for i, basis in enumerate(APPLICATION_BASES):
        p = _new_person(dbs, c, basis, i)
        if basis in ("birth", "marriage", "adoption"):
            people_ops.add_member("officer", hh, p, "20" if basis != "marriage" else "10",
                                  reason="入户")
        special = {"return": ["student"], "other": ["soldier"]}.get(basis, [])
        apps[basis] = ops.apply("officer", c, p, basis, facts={"livelihood": True},
                                special=special, reason="成员资格申请")
    for basis, a in apps.items():
        assert a.status == "pending"  # the software never decides
        assert a.criteria["hukou"]["met"] is True  # hukou in the village
        assert a.criteria["rights_duties"]["met"] is (basis in ("birth", "marriage", "adoption"))
        assert a.criteria["normally_confirmed"] is (basis in ops.NORMALLY_CONFIRMED)
    assert apps["return"].flags == ["student"] and apps["other"].flags == ["soldier"]
    with pytest.raises(DomainError) as e:
        ops.apply("officer", c, apps["birth"].person, "birth")
    assert e.value.code == "membership.application.pending"
    with pytest.raises(DomainError):
        ops.apply("officer", c, apps["birth"].person, "purchase")

    # -------------------------------------------------------------- the members' assembly
    meeting = dt.date(2025, 9, 1)
    voters = [m.person_id for m in ops.members_on(c, meeting)]
    assert len(voters) == members_before
    assembly = ops.open_assembly("officer", c, meeting, voters, reason="成员大会")
    needed = assembly.needed
    assert needed * 3 >= 2 * len(voters) > (needed - 1) * 3  # two thirds of ALL members
    below = apps["birth"]
    with pytest.raises(DomainError) as e:
        ops.resolve("officer", assembly, below, needed - 1, 0, 1, "admit")
    assert e.value.code == "membership.assembly.threshold"
    assert "art 26" in e.value.source("en")
    dbs.refresh(below)
    assert below.status == "pending"
    assert dbs.scalars(select(AuditLog).where(AuditLog.action == "membership.assembly.refused",
                                              AuditLog.object_id == str(below.id))).first()
    with pytest.raises(DBAPIError) as e:  # the database refuses it too
        with dbs.begin_nested():
            dbs.execute(text("INSERT INTO member_assembly_resolution (assembly_id, "
                             "application_id, yes, no, abstain, decision, recorded_by) VALUES "
                             "(:a, :p, :y, 0, 0, 'admit', 'sql')"),
                        {"a": assembly.id, "p": below.id, "y": needed - 1})
    assert "threshold" in str(e.value)
    for basis in ("birth", "marriage", "adoption", "resettlement", "return"):
        ops.resolve("officer", assembly, apps[basis], needed, len(voters) - needed, 0, "admit")
    ops.resolve("officer", assembly, apps["other"], 0, needed, 0, "reject")
    assert apps["other"].status == "rejected"
    with pytest.raises(DBAPIError):  # resolutions are history
        with dbs.begin_nested():
            dbs.execute(text("UPDATE member_assembly_resolution SET yes = 0 WHERE assembly_id "
                             "= :a"), {"a": assembly.id})

    # -------------------------------------------------------------- public notice, objections
    posted = dt.date(2025, 9, 2)
    notice = ops.post_notice("officer", assembly, posted_on=posted)
    assert notice.ends_on == posted + dt.timedelta(days=7)
    assert {a.id for a in ops.proposed(notice)} == {apps[b].id for b in
                                                    ("birth", "marriage", "adoption",
                                                     "resettlement", "return")}
    upheld = ops.lodge_objection("officer", notice, "村民甲", "申请人回乡后户口未实际迁回",
                                 application=apps["resettlement"], lodged_on=posted)
    dismissed = ops.lodge_objection("officer", notice, "村民乙", "该申请人在外上学，不应确认",
                                    application=apps["return"],
                                    lodged_on=posted + dt.timedelta(days=3))
    with pytest.raises(DomainError) as e:  # outside the notice
        ops.lodge_objection("officer", notice, "村民丙", "异议", lodged_on=notice.ends_on
                            + dt.timedelta(days=1))
    assert e.value.code == "membership.notice.closed"
    with pytest.raises(DomainError) as e:  # not before the notice ran
        ops.file_roll("officer", notice, filed_on=notice.ends_on - dt.timedelta(days=1))
    assert e.value.code == "membership.notice.running"
    with pytest.raises(DomainError) as e:  # nor with objections open
        ops.file_roll("officer", notice, filed_on=notice.ends_on)
    assert e.value.code == "membership.roll.objections_open"
    with pytest.raises(DBAPIError):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE roll_notice SET status='filed', filed_on=ends_on, "
                             "filed_by='sql', roll_size=1, pdf='x' WHERE id=:n"),
                        {"n": notice.id})
    ops.resolve_objection("officer", upheld, "upheld", "安置批文未到")
    ops.resolve_objection("officer", dismissed, "dismissed",
                          "在校学习不丧失身份")
    with pytest.raises(DomainError):
        ops.resolve_objection("officer", dismissed, "upheld", "改判")
    with pytest.raises(DomainError):
        ops.resolve_objection("officer", ops.lodge_objection(
            "officer", notice, "村民丁", "异议", lodged_on=posted), "upheld", " ")
    ops.resolve_objection("officer", ops.objections(notice)[-1], "dismissed", "无事实依据")
    assert apps["resettlement"].status == "objection_upheld"

    # -------------------------------------------------------------- filed with the township
    filed = ops.file_roll("officer", notice, filed_on=notice.ends_on, reason="报乡镇备案")
    joined = [apps[b] for b in ("birth", "marriage", "adoption", "return")]
    for a in joined:
        assert a.status == "filed"
        assert coll_ops.active_membership(a.person_id, c.id) is not None
    for a in (apps["resettlement"], apps["other"]):
        assert coll_ops.active_membership(a.person_id, c.id) is None
    roll_now = len(coll_ops.roll(c))
    assert roll_now == members_before + len(joined) == filed.roll_size
    page = pdftotext(filed.pdf)
    flat = re.sub(r"\s+", "", page)
    assert re.sub(r"\s+", "", c.name) in flat and c.fbfbm in flat
    for a in joined:
        assert a.person.name in page and mask(a.person.id_number) in page
    for m in coll_ops.roll(c)[:5]:
        assert m.person.name in page
    assert re.sub(r"\s+", "", upheld.reasons) in flat and re.sub(r"\s+", "", dismissed.reasons) \
        in flat
    assert apps["birth"].person.id_number not in page  # masked
    assert str(roll_now) in page
    assert notice.id in [n.id for n in ops.filed_rolls(like=c.village_code[:9] + "%")]
    with pytest.raises(DomainError):
        ops.file_roll("officer", notice, filed_on=notice.ends_on)


def test_a_member_settled_in_town_is_flagged_never_decided(dbs):
    c = _village(dbs)
    p = _new_person(dbs, c, "return", 9)
    from tests.test_membership_distribution import _settle

    _settle(dbs, p)
    a = ops.apply("officer", c, p, "return", reason="回乡申请")
    assert "settled_in_town" in a.flags and a.status == "pending"
    with pytest.raises(DomainError) as e:
        ops.apply("officer", c, _new_person(dbs, c, "other", 8), "other",
                  statement="本人已进城落户，愿放弃分红")
    assert e.value.code == "guard.text"


# ------------------------------------------------------------------------------ shares
def test_shares_per_charter_static_by_default_and_inherited_in_the_household(dbs):
    c = _village(dbs)
    ops.set_charter_rule("officer", c, labour_centi_per_year=10, collective_share_bp=2000,
                         reason="章程")
    base = dt.date(2025, 6, 30)
    q = ops.quantify("officer", c, base, 88_000_000, reason="股份量化")
    hs = ops.holdings(q)
    roll = ops.members_on(c, base)
    assert len(hs) == len(roll)
    for h in hs:
        m = next(m for m in roll if m.person_id == h.person_id)
        years = ops.labour_years(m.person.birth_date, m.began_on, base, ops.charter_rule(c))
        assert h.population_centi == 100 and h.labour_centi == 10 * years
    assert q.collective_centi == q.member_centi * 2000 // 8000  # 20 % of all shares
    with pytest.raises(DomainError) as e:  # 生不增、死不减
        ops.quantify("officer", c, base + dt.timedelta(days=400), 90_000_000)
    assert e.value.code == "membership.shares.static"
    # inheritance: within the household only
    h = next(h for h in hs if h.household_id and len(h.household.current_members) > 1)
    heir = next(m.person for m in h.household.current_members if m.person_id != h.person_id)
    stranger = dbs.scalars(select(Membership).where(
        Membership.collective_id == c.id, Membership.person_id.not_in(
            [m.person_id for m in h.household.current_members]))).first().person
    with pytest.raises(DomainError) as e:
        ops.inherit("officer", h, stranger, base + dt.timedelta(days=10))
    assert e.value.code == "membership.shares.inheritance"
    with pytest.raises(DBAPIError):
        with dbs.begin_nested():
            dbs.execute(text("INSERT INTO share_holding (quantification_id, person_id, "
                             "household_id, population_centi, labour_centi, shares_centi, "
                             "source, inherited_from_id) VALUES (:q, :p, :h, 100, 0, 100, "
                             "'inherited', :f)"),
                        {"q": q.id, "p": stranger.id, "h": h.household_id, "f": h.id})
    with pytest.raises(DomainError):  # a living member's shares never pass
        ops.inherit("officer", h, heir, base + dt.timedelta(days=10), reason="继承")
    coll_ops.end_membership("officer", coll_ops.active_membership(h.person_id, c.id), "death",
                            base + dt.timedelta(days=5), reason="死亡")
    new = ops.inherit("officer", h, heir, base + dt.timedelta(days=10), reason="继承")
    assert new.shares_centi == h.shares_centi and h.end_ground == "inherited"
    total_now = dbs.scalar(select(func.sum(ops.Holding.shares_centi)).where(
        ops.Holding.quantification_id == q.id, ops.Holding.ended_on.is_(None)))
    assert total_now == q.member_centi  # 死不减
    # the household's share certificate
    page = pdftotext(ops.render_certificate_pdf(q, h.household))
    cert = ops.household_certificate(q, h.household)
    assert h.household.cbfbm in page and cert["number"] in page and heir.name in page
    assert ops.shares(cert["total_centi"]) in page


def test_periodic_adjustment_only_at_the_charters_interval(dbs):
    c = _village(dbs)
    ops.set_charter_rule("officer", c, management="periodic", adjust_every_years=5,
                         reason="章程")
    q1 = ops.quantify("officer", c, dt.date(2020, 6, 30), 1_000_000)
    with pytest.raises(DomainError) as e:
        ops.quantify("officer", c, dt.date(2024, 6, 30), 1_000_000)
    assert e.value.code == "membership.shares.interval"
    q2 = ops.quantify("officer", c, dt.date(2025, 6, 30), 2_000_000)
    assert not ops.holdings(q1) and len(ops.holdings(q2)) == len(ops.members_on(
        c, dt.date(2025, 6, 30)))
    assert dbs.scalar(select(func.count()).select_from(MembershipApplication)) >= 0
