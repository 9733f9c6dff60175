"""Attacks on 0051_atk_mutation by a second mind: ending (or stripping) the land-contract or
homestead right of a household that settled in town, without a lawful ground — through the
operations, the JSON API, and SQL on the app's own connection (the `dbs` session: the app role).

0051 made the 'mutation' ground's record unforgeable, but the ground ended too much: a lawful
split of ONE parcel carried the right over the successors and then ended the whole right —
successors, and every parcel no mutation touched — and a merge across households did the same.
Each test asserts the safe behaviour (it failed before 0053_atk_0051); the settled-in-town
household is the one the guarantee is for (农村土地承包法 art 27; 乡村振兴促进法 art 55).
"""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app import signals
from app.errors import DomainError
from app.parcels import operations as parcels
from app.parcels.models import Parcel
from app.rights import operations as rights
from app.rights.models import Right
from tests.test_api_attacks import bearer
from tests.test_atk_0050 import _current, _halves, _mutation_of, next_version_by_hand
from tests.test_atk_db_evening import _fails
from tests.test_rights import _contract, _household_with_land
from tests.test_withdrawal import settled_in_town

END = """UPDATE land_right SET status = 'ended', end_ground = :g, ended_on = :d,
    end_record_id = :m WHERE id = :id"""
KEEPS = "SET CONSTRAINTS ALL IMMEDIATE"  # the deferred checks, here and now


def _settled(dbs):
    """The first household, one of its members settled in town 40 days ago, with its contract
    over all its fields (two or more: the test needs a parcel no mutation touches)."""
    hh, fields, home = _household_with_land(dbs)
    assert len(fields) >= 2
    settled_in_town(dbs, hh.current_members[0].person, 40)
    return hh, fields, home, _contract(dbs, hh, fields, end=dt.date(2058, 12, 31))


def _land(dbs, uid) -> set[int]:
    return {rp.parcel_uid for rp in _current(dbs, uid).parcels}


def _refused_everywhere(dbs, r: Right, m: int, code: str, on: dt.date | None = None) -> None:
    """The operation and the database both refuse to end `r` on mutation `m`, naming `code`;
    the right stays current over the same land."""
    on = on or dt.date.today()
    before = _land(dbs, r.uid)
    with pytest.raises(DomainError) as e:
        rights.end_right("bureau", r, "mutation", on, evidence="分割", reason="地块变更",
                         record=m)
    assert e.value.code == code, e.value.code
    assert "art 27" in e.value.source("en") and "第二十七条" in e.value.source("zh")
    err = _fails(dbs, END, {"g": "mutation", "d": on, "m": m, "id": r.id})
    assert err is not None and code in err, err
    assert _current(dbs, r.uid).status == "current" and _land(dbs, r.uid) == before


def _neighbour_of_another_household(dbs, hh, fields):
    for p in fields:
        for n in parcels.neighbours(p):
            if n.kind == "contract" and n.household_code not in (None, hh.cbfbm):
                return p, dbs.get(Parcel, n.id)
    # the seeded village always has one (the first household's fields border its
    # neighbours'); without it these attacks would test nothing, so say so as a failure
    raise AssertionError("no field of the household touches another household's field")


# --- 1. the mutation ground after a lawful split or merge --------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_split_of_one_parcel_does_not_end_the_whole_right(dbs, seed):
    """Split one parcel (chosen by the seed) of a settled household's contract: the right goes
    on over the successors and the untouched parcels; ending it 'on the split' is refused."""
    hh, fields, _, r = _settled(dbs)
    p = random.Random(seed).choice(fields)
    kids = parcels.split("bureau", p, _halves(dbs, p, "9500"), "分割")
    held = _land(dbs, r.uid)
    assert {k.uid for k in kids} <= held and p.uid not in held
    assert {f.uid for f in fields if f.uid != p.uid} <= held  # untouched parcels still held
    m = _mutation_of(dbs, kids[0])
    assert dbs.scalar(text("SELECT mutation_handed_on(:u, :m)"), {"u": r.uid, "m": m})
    _refused_everywhere(dbs, _current(dbs, r.uid), m, "right.end.mutation_carried")


def test_the_api_refuses_the_same_end(app, dbs):
    """POST /api/rights/<uid>/end as the county's bureau staff, the split's mutation as the
    record: a 422 naming the rule and its legal source; the right stays current."""
    hh, fields, _, r = _settled(dbs)
    kids = parcels.split("bureau", fields[0], _halves(dbs, fields[0], "9510"), "分割")
    dbs.flush()
    res = app.test_client().post(f"/api/rights/{r.uid}/end", headers=bearer("bureau"), json={
        "ground": "mutation", "ended_on": dt.date.today().isoformat(),
        "record_id": _mutation_of(dbs, kids[0]), "reason": "地块分割", "evidence": "分割"})
    assert res.status_code == 422, res.get_data(as_text=True)[:300]
    assert res.get_json()["code"] == "right.end.mutation_carried"
    assert "第二十七条" in res.get_json()["legal_source"]
    assert _current(dbs, r.uid).status == "current"


@pytest.mark.parametrize("who", ["bureau_other_county", "officer", "hukou", "farmer"])
def test_no_other_account_ends_it_through_the_api(app, dbs, who):
    """Another county's bureau staff, the village's own officer, the police station's hukou
    officer and the farmer himself: the end endpoint is the county bureau's only (403/404), and
    the right stays current whatever the record."""
    from app.auth import operations as auth_ops
    from tests.conftest import user

    hh, fields, _, r = _settled(dbs)
    kids = parcels.split("bureau", fields[0], _halves(dbs, fields[0], "9515"), "分割")
    if who == "bureau_other_county":
        county = next(c for c in ("140405", "140403", "140406") if c != hh.cbfbm[:6])
        acct = auth_ops.create_user(None, "bureau_x", "Pw-0051-xyz!", "bureau_staff", "外县",
                                    county, reason="test account")
    else:
        acct = user(who)
    dbs.flush()
    res = app.test_client().post(
        f"/api/rights/{r.uid}/end",
        headers={"Authorization": f"Bearer {auth_ops.issue_api_token(None, acct)}"},
        json={"ground": "mutation", "ended_on": dt.date.today().isoformat(),
              "record_id": _mutation_of(dbs, kids[0]), "reason": "地块分割"})
    assert res.status_code in (403, 404), (who, res.status_code)
    assert _current(dbs, r.uid).status == "current"


def test_a_split_merged_back_ends_nothing(dbs):
    """Split a parcel and merge the halves back: two lawful mutations, each handing the right on;
    on neither does the right end."""
    hh, fields, _, r = _settled(dbs)
    a, b = parcels.split("bureau", fields[0], _halves(dbs, fields[0], "9520"), "分割")
    merged = parcels.merge("bureau", [a, b], fields[0].code[:14] + "95203", "合并")
    assert merged.uid in _land(dbs, r.uid)
    for m in (_mutation_of(dbs, a), _mutation_of(dbs, merged)):
        _refused_everywhere(dbs, _current(dbs, r.uid), m, "right.end.mutation_carried")


def test_a_homestead_right_does_not_end_on_its_parcels_split(dbs):
    hh, fields, home, _ = _settled(dbs)
    h = rights.register_homestead("bureau", hh.cbfbm, home, "确权")
    # a homestead's code is its 28-character 不动产单元代码: JC zone, a plot without a house
    parts = [(f"{home.code[:12]}JC{95300 + i:05d}W00000000", w)
             for i, (_, w) in enumerate(_halves(dbs, home, "9530"))]
    kids = parcels.split("bureau", home, parts, "分割")
    assert {k.uid for k in kids} == _land(dbs, h.uid)
    _refused_everywhere(dbs, _current(dbs, h.uid), _mutation_of(dbs, kids[0]),
                        "right.end.mutation_carried")


def test_the_lawful_mutation_end_leaves_the_holder_its_land(dbs):
    """The ground still works where it should: the successor parcels are held by another
    current right of the same household (a new contract over them) — ending the old one takes
    nothing — and never dated before the mutation (a generated number of days back, the
    session's time zone moved to the other side of the date line: the mutation's date is
    China's)."""
    hh, fields, _, r = _settled(dbs)
    kids = parcels.split("bureau", fields[0], _halves(dbs, fields[0], "9540"), "分割")
    r = _current(dbs, r.uid)
    m = _mutation_of(dbs, kids[0])
    held = dbs.scalars(select(Parcel).where(Parcel.uid.in_(_land(dbs, r.uid)),
                                            Parcel.end_lifespan.is_(None))).all()
    # a new contract of the same household over the first successor only: not yet all the land
    rights.register_land_contract("bureau", hh.cbfbm, hh.cbfbm + "J", [(kids[0], None)],
                                  dt.date.today(), r.term_end, reason="换发")
    _refused_everywhere(dbs, r, m, "right.end.mutation_carried")
    # all the land, but under a contract that has already run out: ending the old right on the
    # split and this one on 'expiry' would leave the household nothing
    short = rights.register_land_contract("bureau", hh.cbfbm, hh.cbfbm + "J",
                                          [(p, None) for p in held], r.term_start,
                                          dt.date.today() - dt.timedelta(days=1), reason="换发")
    assert _land(dbs, short.uid) == _land(dbs, r.uid)
    _refused_everywhere(dbs, r, m, "right.end.mutation_carried")
    successor = rights.register_land_contract("bureau", hh.cbfbm, hh.cbfbm + "J",
                                              [(p, None) for p in held], dt.date.today(),
                                              r.term_end, reason="换发")
    assert _land(dbs, successor.uid) == _land(dbs, r.uid)
    rnd = random.Random(51)
    for days in sorted({rnd.randint(1, 4000) for _ in range(5)} | {1}):
        back = dt.date.today() - dt.timedelta(days=days)
        with pytest.raises(DomainError) as e:
            rights.end_right("bureau", r, "mutation", back, evidence="分割", reason="换发",
                             record=m)
        assert e.value.code == "right.end.before_ground"
        for tz in ("Pacific/Kiritimati", "America/Adak"):
            dbs.execute(text("SELECT set_config('timezone', :z, true)"), {"z": tz})
            err = _fails(dbs, END, {"g": "mutation", "d": back, "m": m, "id": r.id})
            assert err is not None and "right.end.before_ground" in err, (tz, days, err)
    dbs.execute(text("SELECT set_config('timezone', 'Asia/Shanghai', true)"))
    # the successor is the later right: the old one is no successor of it, so two sessions
    # could never end each on the other (each seeing the other current) and leave nothing
    m2 = _mutation_of(dbs, parcels.split("bureau", kids[1], _halves(dbs, kids[1], "9541"),
                                         "分割")[0])
    r, successor = _current(dbs, r.uid), _current(dbs, successor.uid)
    assert dbs.scalar(text("SELECT mutation_handed_on(:u, :m)"), {"u": successor.uid, "m": m2})
    _refused_everywhere(dbs, successor, m2, "right.end.mutation_carried")
    rights.end_right("bureau", r, "mutation", dt.date.today(), evidence="分割", reason="换发",
                     record=m)
    assert r.status == "ended" and _current(dbs, successor.uid).status == "current"
    assert _fails(dbs, "SET CONSTRAINTS ALL IMMEDIATE") is None


def test_a_mutation_cannot_be_backdated(dbs):
    """The mutation's time is the change's, whatever the insert names."""
    m = dbs.scalar(text("INSERT INTO parcel_mutation (kind, at, by, reason, county_code) "
                        "VALUES ('split', '2001-01-01', 'x', 'x', '140404') RETURNING at"))
    assert m == dbs.scalar(text("SELECT now()"))


# --- 2. land moved to another household by redrawing or re-registering -------------------------

def test_a_merge_across_households_is_refused(dbs):
    """Merging the settled household's field into a neighbour's: the merged parcel took the
    neighbour's household code, both rights were carried over it, and the settled household's
    right then ended 'on the merge'."""
    hh, fields, _, r = _settled(dbs)
    mine, theirs = _neighbour_of_another_household(dbs, hh, fields)
    y = rights.register_land_contract("bureau", theirs.household_code,
                                      theirs.household_code + "J", [(theirs, theirs.scmj)],
                                      dt.date(1999, 1, 1), dt.date(2058, 12, 31), reason="确权")
    for order in ([theirs, mine], [mine, theirs]):
        with pytest.raises(DomainError) as e:
            parcels.merge("bureau", order, mine.code[:14] + "95500", "合并")
        assert e.value.code == "parcel.merge.holders"
        assert "第三十四条" in e.value.source("zh")
    assert mine.uid in _land(dbs, r.uid) and _land(dbs, y.uid) == {theirs.uid}


def test_a_parcel_is_under_one_holders_right(dbs):
    """Another household's contract (add_parcels) or homestead right (register_homestead)
    over the settled household's parcel; and the same by SQL, a new version of the neighbour's
    right naming it."""
    hh, fields, home, r = _settled(dbs)
    h = rights.register_homestead("bureau", hh.cbfbm, home, "确权")
    mine, theirs = _neighbour_of_another_household(dbs, hh, fields)
    y = rights.register_land_contract("bureau", theirs.household_code,
                                      theirs.household_code + "J", [(theirs, theirs.scmj)],
                                      dt.date(1999, 1, 1), dt.date(2058, 12, 31), reason="确权")
    with pytest.raises(DomainError) as e:
        rights.add_parcels("bureau", theirs.household_code, [(mine, None)], y.term_end, "互换")
    assert e.value.code == "right.parcel.other_holder" and e.value.status == 409
    assert "第三十四条" in e.value.source("zh")
    with pytest.raises(DomainError) as e:
        rights.register_homestead("bureau", theirs.household_code, home, "确权")
    assert e.value.code == "right.parcel.other_holder"
    v = next_version_by_hand(dbs, y.id)
    err = _fails(dbs, "INSERT INTO land_right_parcel (right_id, parcel_uid, parcel_code) "
                      "VALUES (:r, :u, :c)", {"r": v, "u": mine.uid, "c": mine.code})
    assert err is not None and "right.parcel.other_holder" in err, err
    assert _land(dbs, r.uid) >= {mine.uid} and _land(dbs, h.uid) == {home.uid}


def test_an_amendment_does_not_move_a_held_parcel_to_another_household(dbs):
    hh, fields, home, r = _settled(dbs)
    h = rights.register_homestead("bureau", hh.cbfbm, home, "确权")
    other = dbs.scalar(text("SELECT cbfbm FROM household WHERE collective_id = :c "
                            "AND cbfbm <> :h ORDER BY id LIMIT 1"),
                       {"c": hh.collective_id, "h": hh.cbfbm})
    for p in (fields[0], home):
        for to in (other, None):
            with pytest.raises(DomainError) as e:
                parcels.amend("bureau", p, "更正", household_code=to)
            assert e.value.code == "right.parcel.other_holder"
        # the operation's check muted: the database refuses the version all the same
        with signals.parcel_holder_change.muted():
            with pytest.raises(Exception) as e:  # noqa: B017 — the driver's own error
                with dbs.begin_nested():
                    parcels.amend("bureau", p, "更正", household_code=other)
        assert "parcel.holder" in str(e.value), str(e.value)[:300]
    assert fields[0].uid in _land(dbs, r.uid) and _land(dbs, h.uid) == {home.uid}
    assert dbs.scalar(text("SELECT household_code FROM parcel WHERE uid = :u AND "
                           "end_lifespan IS NULL"), {"u": home.uid}) == hh.cbfbm


def test_an_amendment_does_not_change_what_a_held_parcel_is(dbs):
    """The settled household's contract parcel made a homestead, collective land of another
    kind, or another collective's: the right holds land that is no longer contract land of its
    issuing party (next: another household's homestead right over it)."""
    from app.collectives.models import Collective

    hh, fields, home, r = _settled(dbs)
    other = dbs.scalar(select(Collective.id).where(Collective.id != hh.collective_id)
                       .order_by(Collective.id))
    p = random.Random(9).choice(fields)
    for change in ({"kind": "homestead"}, {"collective_id": other}):
        with pytest.raises(DomainError) as e:
            parcels.amend("bureau", p, "更正", **change)
        assert e.value.code == "right.parcel.held" and e.value.params["uid"] == r.uid
        with signals.parcel_holder_change.muted():
            with pytest.raises(Exception) as e:  # noqa: B017 — the driver's own error
                with dbs.begin_nested():
                    parcels.amend("bureau", p, "更正", **change)
        assert "parcel.holder" in str(e.value), str(e.value)[:300]
        dbs.refresh(p)  # the refused version's end of p was rolled back with it
    assert dbs.scalar(text("SELECT kind FROM parcel WHERE uid = :u AND end_lifespan IS NULL"),
                      {"u": p.uid}) == "contract"
    # an amendment of its name or remarks goes through, and the right still holds it
    renamed = parcels.amend("bureau", p, "更名", name="东坡地")
    assert renamed.uid in _land(dbs, r.uid)


# --- 3. a version of the right without its land (SQL on the app's connection) ---------------

@pytest.mark.parametrize("keep", [0, 1])
def test_a_new_version_cannot_leave_out_the_rights_land(dbs, keep):
    """A 'current' right over nothing (keep=0) or over all but one parcel (keep=1): the right
    is stripped without ending.  Refused at commit (the check is deferred: a version's parcels
    are written after it); SET CONSTRAINTS ... IMMEDIATE shows it here."""
    hh, fields, _, r = _settled(dbs)
    v = next_version_by_hand(dbs, r.id)
    kept = fields[1:] if keep else []
    for p in kept:
        dbs.execute(text("INSERT INTO land_right_parcel (right_id, parcel_uid, parcel_code) "
                         "VALUES (:r, :u, :c)"), {"r": v, "u": p.uid, "c": p.code})
    err = _fails(dbs, KEEPS)
    assert err is not None and "right.version.land" in err and fields[0].code in err, err


def test_the_lawful_versions_keep_their_land(dbs):
    """A split (the successors replace the parent), a merge, an extension and added parcels all
    pass the deferred check."""
    hh, fields, _, r = _settled(dbs)
    a, b = parcels.split("bureau", fields[0], _halves(dbs, fields[0], "9560"), "分割")
    parcels.merge("bureau", [a, b], fields[0].code[:14] + "95603", "合并")
    rights.extend_contract("bureau", _current(dbs, r.uid), 30, "延包")
    assert _fails(dbs, KEEPS) is None


# --- 4. the other grounds: never dated before their record ------------------------------------

def test_an_expropriation_end_cannot_predate_the_decision(dbs):
    hh, fields, _, r = _settled(dbs)
    decided = dt.date.today() - dt.timedelta(days=30)
    x = rights.record_expropriation("bureau", r, "长治市人民政府", "长政征〔2026〕9号", decided,
                                    Decimal("1000.00"), b"%PDF decision", "征收决定.pdf")
    for days in (1, random.Random(7).randint(2, 3000)):
        before = decided - dt.timedelta(days=days)
        with pytest.raises(DomainError) as e:
            rights.end_right("bureau", r, "expropriation", before, reason="征收", record=x)
        assert e.value.code == "right.end.before_ground"
        err = _fails(dbs, END, {"g": "expropriation", "d": before, "m": x.id, "id": r.id})
        assert err is not None and "right.end.evidence" in err, err
    rights.end_right("bureau", r, "expropriation", decided, reason="征收", record=x)
    assert r.status == "ended"


def test_a_holder_extinct_end_cannot_predate_the_households_end(dbs):
    from app.people import operations as people

    hh, fields = _household_with_land(dbs)[:2]
    r = _contract(dbs, hh, fields)
    gone = dt.date(2025, 1, 1)
    for m in list(hh.current_members):
        people.end_place("bureau", m, "death", gone, reason="死亡")
    people.end_household("bureau", hh, "all_members_deceased", gone, reason="户内人员全部死亡")
    before = gone - dt.timedelta(days=random.Random(3).randint(1, 900))
    with pytest.raises(DomainError) as e:
        rights.end_right("bureau", r, "holder_extinct", before, reason="户绝")
    assert e.value.code == "right.end.before_ground"
    err = _fails(dbs, END, {"g": "holder_extinct", "d": before, "m": None, "id": r.id})
    assert err is not None and "right.end.before_ground" in err, err
    rights.end_right("bureau", r, "holder_extinct", gone, reason="户绝")
    assert r.status == "ended"


@pytest.mark.parametrize("seed", [4, 5])
def test_a_household_merged_into_another_is_no_extinct_holder(dbs, seed):
    """并户: every member of the settled household moved into another household (of its own
    collective or another, chosen by the seed), the household ended as 'all_members_left', and
    its contract and homestead rights ended as 'holder extinct': the land gone, its people
    living on in a successor household."""
    from app.people import operations as people
    from app.people.models import Household

    hh, fields, home, r = _settled(dbs)
    h = rights.register_homestead("bureau", hh.cbfbm, home, "确权")
    others = dbs.scalars(select(Household).where(Household.cbfbm != hh.cbfbm,
                                                 Household.ended_on.is_(None))
                         .order_by(Household.id)).all()
    rnd = random.Random(seed)
    same = [o for o in others if o.collective_id == hh.collective_id]
    apart = [o for o in others if o.collective_id != hh.collective_id] or same
    to = rnd.choice(same if seed % 2 == 0 else apart)
    day = dt.date.today()
    for m in list(hh.current_members):
        people.move_member("bureau", m, to, "97", day, "并户",
                           division=rnd.random() < 0.5)
    dbs.refresh(hh)
    people.end_household("bureau", hh, "all_members_left", day, reason="并户")
    for right in (r, h):
        with pytest.raises(DomainError) as e:
            rights.end_right("bureau", right, "holder_extinct", day, reason="户已注销")
        assert e.value.code == "right.end.successor" and "第三十一条" in e.value.source("zh")
        err = _fails(dbs, END, {"g": "holder_extinct", "d": day, "m": None, "id": right.id})
        assert err is not None and "right.end.successor" in err, err
        assert _current(dbs, right.uid).status == "current"


# --- 5. pinned: what the app role cannot do to get round the guards ---------------------------

def test_the_new_guards_cannot_be_switched_off_or_shadowed(dbs):
    for sql in ("ALTER TABLE land_right DISABLE TRIGGER land_right_version_keeps_land",
                "ALTER TABLE land_right_parcel DISABLE TRIGGER land_right_parcel_one_holder",
                "ALTER TABLE parcel DISABLE TRIGGER parcel_holder_kept",
                "DROP TRIGGER parcel_mutation_at_now ON parcel_mutation",
                "CREATE OR REPLACE FUNCTION right_land_kept_alone(version_id integer) "
                "RETURNS text LANGUAGE sql AS 'SELECT NULL::text'"):
        assert _fails(dbs, sql), sql
    hh, fields, _, r = _settled(dbs)
    kids = parcels.split("bureau", fields[0], _halves(dbs, fields[0], "9570"), "分割")
    err = None  # a temporary shadow first on the path: the proof's own path (public, pg_temp) wins
    try:
        with dbs.begin_nested():
            dbs.execute(text("SET LOCAL search_path = pg_temp, public"))
            dbs.execute(text("CREATE FUNCTION pg_temp.right_land_kept_alone(version_id integer)"
                             " RETURNS text LANGUAGE sql AS 'SELECT NULL::text'"))
            dbs.execute(text(END), {"g": "mutation", "d": dt.date.today(),
                                    "m": _mutation_of(dbs, kids[0]),
                                    "id": _current(dbs, r.uid).id})
    except DBAPIError as e:
        err = str(e.orig).split("\n")[0]
    dbs.execute(text("SET LOCAL search_path = \"$user\", public"))
    assert err is not None and "right.end.mutation_carried" in err, err


# --- 6. the share roll: a periodic adjustment that leaves out the member who settled ---------

def test_a_share_roll_adjustment_cannot_leave_out_a_settled_member(dbs):
    """On the app's connection: a later quantification written without the member who settled
    in town, and that member's holding ended 'adjusted' on its base date.  The distribution
    check already refused to pay on such a roll; now the roll itself is refused (at commit)."""
    from app.collectives import operations as coll_ops
    from app.membership import operations as members
    from tests.test_membership_distribution import _collective_with_members, _settle

    c = _collective_with_members(dbs)
    roll = coll_ops.roll(c)
    settled = roll[random.Random(11).randrange(len(roll))].person
    _settle(dbs, settled)
    q = members.quantify("officer", c, dt.date(2025, 6, 30), 123_456_789, reason="股份量化")
    members.set_charter_rule("officer", c, reason="章程修改", management="periodic",
                             adjust_every_years=1)
    n = dbs.scalar(text("""INSERT INTO share_quantification (collective_id, base_date,
        asset_value_fen, collective_share_bp, member_centi, collective_centi, management,
        created_by) SELECT collective_id, base_date + 400, asset_value_fen, collective_share_bp,
        member_centi, collective_centi, 'periodic', 'x' FROM share_quantification
        WHERE id = :q RETURNING id"""), {"q": q.id})
    dbs.execute(text("""INSERT INTO share_holding (quantification_id, person_id, household_id,
        population_centi, labour_centi, shares_centi, source)
        SELECT :n, person_id, household_id, population_centi, labour_centi, shares_centi, source
        FROM share_holding WHERE quantification_id = :q AND person_id <> :p"""),
        {"n": n, "q": q.id, "p": settled.id})
    dbs.execute(text("""UPDATE share_holding SET end_ground = 'adjusted', ended_on =
        (SELECT base_date FROM share_quantification WHERE id = :n)
        WHERE quantification_id = :q"""), {"n": n, "q": q.id})
    err = _fails(dbs, "SET CONSTRAINTS ALL IMMEDIATE")
    assert err is not None and "membership.shares.adjusted" in err, err
    assert f"person {settled.id} " in err


def test_a_lawful_adjustment_passes(dbs):
    from app.membership import operations as members
    from tests.test_membership_distribution import _collective_with_members

    c = _collective_with_members(dbs)
    q = members.quantify("officer", c, dt.date(2024, 6, 30), 100_000, reason="股份量化")
    members.set_charter_rule("officer", c, reason="章程修改", management="periodic",
                             adjust_every_years=1)
    later = members.quantify("officer", c, dt.date(2025, 6, 30), 100_000, reason="调整")
    assert later.id != q.id and _fails(dbs, "SET CONSTRAINTS ALL IMMEDIATE") is None
