"""Rights: registration, the second-round extension, ending only on lawful grounds (operation
and database), one household one homestead, the area cap, basic farmland."""
import datetime as dt
from decimal import Decimal

import pytest
import shapely
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditLog
from app.errors import DomainError
from app.parcels import operations as parcel_ops
from app.parcels.models import Parcel
from app.people.models import Household
from app.rights import operations as ops
from app.rights.models import LAWFUL_END_GROUNDS, Right


def _household_with_land(dbs):
    hh = dbs.scalars(select(Household).order_by(Household.id)).first()
    fields = dbs.scalars(select(Parcel).where(Parcel.household_code == hh.cbfbm,
                                              Parcel.kind == "contract",
                                              Parcel.end_lifespan.is_(None))).all()
    home = dbs.scalars(select(Parcel).where(Parcel.household_code == hh.cbfbm,
                                            Parcel.kind == "homestead")).first()
    return hh, fields, home


def _contract(dbs, hh, fields, end=dt.date(2028, 12, 31)):
    return ops.register_land_contract("bureau", hh.cbfbm, hh.cbfbm + "J",
                                      [(p, p.scmj) for p in fields], dt.date(1999, 1, 1), end,
                                      reason="确权登记")


def test_register_and_extend_a_contract_keeps_history(dbs):
    hh, fields, _ = _household_with_land(dbs)
    assert fields
    r = _contract(dbs, hh, fields)
    assert r.kind == "land_contract" and {p.parcel_code for p in r.parcels} == \
        {p.code for p in fields}
    with pytest.raises(DomainError) as e:
        ops.register_land_contract("bureau", hh.cbfbm, hh.cbfbm + "X", [], dt.date(1999, 1, 1),
                                   dt.date(2028, 12, 31))
    assert e.value.code == "right.contract.code"
    new = ops.extend_contract("bureau", r, 30, "第二轮土地承包到期后再延长三十年")
    assert new.term_end == dt.date(2058, 12, 31) and new.uid == r.uid and new.version == 2
    dbs.refresh(r)
    assert r.end_lifespan is not None and r.term_end == dt.date(2028, 12, 31)
    assert len(new.parcels) == len(fields)


def judgment(r, judged_on=dt.date(2025, 12, 1), case="（2025）晋0404民初123号"):
    return ops.record_court_judgment("bureau", r, "长治市上党区人民法院", case, judged_on,
                                     b"%PDF judgment " + case.encode(), "判决书.pdf")


def _proof_for(dbs, ground, hh, r, fields):
    """The record each ground needs, made the lawful way."""
    if ground == "expropriation":
        return ops.record_expropriation("bureau", r, "长治市人民政府", "长政征〔2025〕12号",
                                        dt.date(2025, 6, 1), Decimal("123456.00"),
                                        b"%PDF decision", "征收决定.pdf")
    if ground == "court_judgment":
        return judgment(r)
    if ground == "mutation":  # a split of one of its parcels: handed to successor parcels,
        # and the household's land (the successors and the rest) re-registered under a new
        # contract: the old right ends on the split taking nothing (tests/test_atk_0051.py)
        p = fields[0]
        g = shapely.from_wkt(dbs.execute(text(
            "SELECT ST_AsText(ST_Transform(geom, survey_srid)) FROM parcel WHERE id = :i"),
            {"i": p.id}).scalar())
        minx, miny, maxx, maxy = g.bounds
        cut = (minx + maxx) / 2
        kids = parcel_ops.split("bureau", p, [
            (p.code[:14] + "92001", g.intersection(shapely.box(minx - 1, miny - 1, cut,
                                                               maxy + 1)).wkt),
            (p.code[:14] + "92002", g.intersection(shapely.box(cut, miny - 1, maxx + 1,
                                                               maxy + 1)).wkt)], "分割")
        carried = dbs.scalar(select(Right).where(Right.uid == r.uid,
                                                 Right.end_lifespan.is_(None)))
        held = [(p, None) for p in dbs.scalars(select(Parcel).where(
            Parcel.uid.in_([rp.parcel_uid for rp in carried.parcels]),
            Parcel.end_lifespan.is_(None)))]
        ops.register_land_contract("bureau", hh.cbfbm, hh.cbfbm + "J", held, carried.term_start,
                                   carried.term_end, reason="分割后换发")
        return dbs.scalar(text("SELECT mutation_id FROM parcel_lineage WHERE child_id = :c"),
                          {"c": kids[0].id})
    if ground == "holder_extinct":  # every member died, then the household ended
        from app.people import operations as people

        for m in list(hh.current_members):
            people.end_place("bureau", m, "death", dt.date(2025, 1, 1), reason="死亡")
        people.end_household("bureau", hh, "all_members_deceased", dt.date(2025, 1, 1),
                             reason="户内人员全部死亡")
    return None


# voluntary_withdrawal: the pilot's tests walk the whole procedure (tests/test_withdrawal.py).
@pytest.mark.parametrize("ground", [g for g in LAWFUL_END_GROUNDS if g != "voluntary_withdrawal"])
def test_a_right_ends_on_each_lawful_ground(dbs, ground):
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields, end=dt.date(2020, 12, 31))
    record = _proof_for(dbs, ground, hh, r, fields)
    dbs.expire_all()  # a split re-registers the right on the successors: end its current version
    r = dbs.scalar(select(Right).where(Right.uid == r.uid, Right.end_lifespan.is_(None)))
    # an end is never dated before its ground: the split is today's
    on = max(dt.date(2026, 1, 1), dt.date.today()) if ground == "mutation" else dt.date(2026, 1, 1)
    ops.end_right("bureau", r, ground, on, reason="测试", record=record)
    assert r.status == "ended" and r.end_ground == ground
    assert r.end_record_id == getattr(record, "id", record)
    assert dbs.scalar(select(Right).where(Right.id == r.id)) is not None  # never deleted


def test_grounds_need_their_evidence(dbs):
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    with pytest.raises(DomainError) as e:
        ops.end_right("bureau", r, "expropriation", dt.date(2026, 1, 1))
    assert e.value.code == "right.end.evidence"
    with pytest.raises(DomainError) as e:
        ops.end_right("bureau", r, "expiry", dt.date(2026, 1, 1))  # runs until 2028
    assert e.value.code == "right.end.not_expired"
    with pytest.raises(DomainError) as e:
        ops.end_right("bureau", r, "holder_extinct", dt.date(2026, 1, 1))
    assert e.value.code == "right.end.evidence"


@pytest.mark.parametrize("ground", ["settled_in_town", "hukou_moved", "married_out", "whatever"])
def test_forbidden_and_unknown_grounds_are_refused_and_recorded(dbs, ground):
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    with pytest.raises(DomainError) as e:
        ops.end_right("bureau", r, ground, dt.date(2026, 1, 1), reason="x")
    if ground == "whatever":
        assert e.value.code == "right.end.unknown_ground"
    else:
        assert e.value.code == "right.end.forbidden_ground"
        assert "art 27" in e.value.source("en") and "乡村振兴促进法" in e.value.source("zh")
    dbs.refresh(r)
    assert r.status == "current"
    assert dbs.scalars(select(AuditLog).where(AuditLog.action == "right.end.refused",
                                              AuditLog.object_id == str(r.uid))).all()


def test_database_refuses_settled_in_town_and_rewriting_history(dbs):
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    with pytest.raises(DBAPIError, match="settling in town is never a ground"):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE land_right SET status = 'ended', end_ground = "
                             "'settled_in_town', ended_on = current_date WHERE id = :i"),
                        {"i": r.id})
    with pytest.raises(DBAPIError, match="permission denied"):  # the app's role: no DELETE
        with dbs.begin_nested():
            dbs.execute(text("DELETE FROM land_right WHERE id = :i"), {"i": r.id})
    with pytest.raises(DBAPIError, match="new version"):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE land_right SET term_end = '2099-12-31' WHERE id = :i"),
                        {"i": r.id})


def test_one_household_one_homestead_in_operation_and_database(dbs):
    hh, _, home = _household_with_land(dbs)
    r = ops.register_homestead("bureau", hh.cbfbm, home, "确权")
    assert r.kind == "homestead"
    other = dbs.scalars(select(Parcel).where(Parcel.kind == "homestead",
                                             Parcel.id != home.id)).first()
    with pytest.raises(DomainError) as e:
        ops.register_homestead("bureau", hh.cbfbm, other)
    assert e.value.code == "right.homestead.second" and home.code in e.value.message("en")
    with pytest.raises(DBAPIError, match="uq_land_right_one_homestead"):
        with dbs.begin_nested():
            dbs.execute(text("INSERT INTO land_right (kind, holder_household_code) "
                             "VALUES ('homestead', :h)"), {"h": hh.cbfbm})
    # Once the first has ended (a lawful ground), a second may be registered.
    ops.end_right("bureau", r, "court_judgment", dt.date(2026, 1, 1),
                  record=judgment(r, case="（2026）晋0404民初9号"))
    assert ops.register_homestead("bureau", hh.cbfbm, other).status == "current"


def test_homestead_area_cap_per_county(dbs):
    hh, _, home = _household_with_land(dbs)
    dbs.execute(text("INSERT INTO registry_setting (key, value, note) VALUES "
                     "('homestead_cap_m2:140404', :v, 'test cap')"), {"v": str(float(home.scmj) - 1)})
    with pytest.raises(DomainError) as e:
        ops.register_homestead("bureau", hh.cbfbm, home)
    assert e.value.code == "right.homestead.area_cap" and "140404" in e.value.message("en")


def test_no_homestead_on_basic_farmland(dbs):
    hh, fields, _ = _household_with_land(dbs)
    farm = next(p for p in dbs.scalars(select(Parcel).where(
        Parcel.kind == "contract", Parcel.sfjbnt == "1", Parcel.end_lifespan.is_(None))))
    g = shapely.from_wkt(dbs.execute(text("SELECT ST_AsText(ST_Transform(geom, survey_srid)) "
                                          "FROM parcel WHERE id = :i"), {"i": farm.id}).scalar())
    house = g.centroid.buffer(1.5, cap_style="square")  # 9 m²
    # A homestead drawn on the farmland (the register's overlap tolerance raised for the test,
    # to its bound: 10 m², migration 0043_atk_db2).
    dbs.execute(text("UPDATE registry_setting SET value = '10' "
                     "WHERE key = 'overlap_tolerance_m2'"))
    code = farm.code[:12] + "JC99999F00010001"
    home = parcel_ops.register("bureau", "homestead", code, farm.collective_id, house.wkt,
                               farm.survey_srid, "测试")
    dbs.execute(text("UPDATE registry_setting SET value = '1.0' "
                     "WHERE key = 'overlap_tolerance_m2'"))
    with pytest.raises(DomainError) as e:
        ops.register_homestead("bureau", hh.cbfbm, home)
    assert e.value.code == "right.homestead.basic_farmland" and farm.code in e.value.message("en")


def test_rights_from_the_sample_delivery(dbs):
    from app.imports import operations as imports
    from tests.test_import_sample import SAMPLE

    batch = imports.run("bureau", SAMPLE)
    imports.accept("bureau", batch, valid_part=True)

    def current_rights():
        return dbs.scalar(select(func.count()).select_from(Right).where(
            Right.end_lifespan.is_(None)))

    before = current_rights()
    made = ops.register_from_batch("bureau", batch.id)
    # Expected from the delivery as the import staged it: a land-contract right per contract
    # (CBHT row) that was registered, a homestead right per registered homestead (ZJD feature)
    # with a household; nothing delivered is lost on the way.
    delivery = imports.read(SAMPLE)
    cbht = dict(dbs.execute(text(
        "SELECT status, count(*) FROM import_record WHERE batch_id = :b AND tbl = 'CBHT' "
        "GROUP BY status"), {"b": batch.id}).all())
    assert sum(cbht.values()) == len(delivery.tables["CBHT"])
    zjd = dict(dbs.execute(text(
        "SELECT f.status, count(*) FROM import_feature f WHERE f.batch_id = :b "
        "AND f.layer = 'ZJD' GROUP BY f.status"), {"b": batch.id}).all())
    delivered_zjd = sum(len(x) for x in delivery.layers if x.kind == "ZJD")
    assert sum(zjd.values()) == delivered_zjd
    homes = dbs.scalar(select(func.count()).select_from(Parcel).where(
        Parcel.import_batch_id == batch.id, Parcel.kind == "homestead",
        Parcel.household_code.is_not(None), Parcel.end_lifespan.is_(None)))
    assert cbht.get("registered", 0) > 0 and made["land_contract"] == cbht["registered"]
    assert 0 < homes <= zjd.get("registered", 0) and made["homestead"] == homes
    assert made["refused"] == []
    assert current_rights() - before == made["land_contract"] + made["homestead"]
    r = dbs.scalar(select(Right).where(Right.contract_code == "140404101201010001J"))
    assert r.term_end == dt.date(2058, 12, 31) and len(r.parcels) == 5


def test_rights_follow_a_split_to_the_successor_parcels(dbs):
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    p = fields[0]
    g = shapely.from_wkt(dbs.execute(text("SELECT ST_AsText(ST_Transform(geom, survey_srid)) "
                                          "FROM parcel WHERE id = :i"), {"i": p.id}).scalar())
    minx, miny, maxx, maxy = g.bounds
    cut = (minx + maxx) / 2
    parts = [(p.code[:14] + "91001", g.intersection(shapely.box(minx - 1, miny - 1, cut,
                                                                 maxy + 1)).wkt),
             (p.code[:14] + "91002", g.intersection(shapely.box(cut, miny - 1, maxx + 1,
                                                                 maxy + 1)).wkt)]
    kids = parcel_ops.split("bureau", p, parts, "分割")
    dbs.refresh(r)
    assert r.end_lifespan is not None  # the old version is superseded, not ended
    now = dbs.scalar(select(Right).where(Right.uid == r.uid, Right.end_lifespan.is_(None)))
    codes = {rp.parcel_code for rp in now.parcels}
    assert {k.code for k in kids} <= codes and p.code not in codes
    assert now.status == "current" and now.version == 2
    moved = sum(float(rp.contract_area) for rp in now.parcels if rp.parcel_code in
                {k.code for k in kids})
    assert abs(moved - float(p.scmj)) < 0.05


def test_parcel_page_lists_its_rights(dbs, login_as):
    hh, fields, _ = _household_with_land(dbs)
    _contract(dbs, hh, fields)
    page = login_as("bureau").get(f"/parcels/{fields[0].id}").get_data(as_text=True)
    assert 'id="rights"' in page and hh.cbfbm + "J" in page and "土地承包经营权" in page


def test_rights_register_as_of_a_date_before_and_after_a_correction(dbs):
    """The term corrected by the second-round extension and the right later ended: the register
    as of each moment shows the version and status that stood then."""
    hh, fields, _ = _household_with_land(dbs)
    r = _contract(dbs, hh, fields)
    t0 = dbs.execute(text("SELECT clock_timestamp()")).scalar()
    new = ops.extend_contract("bureau", r, 30, "延包：合同期限更正")
    t1 = dbs.execute(text("SELECT clock_timestamp()")).scalar()
    ops.end_right("bureau", new, "court_judgment", t1.date() + dt.timedelta(days=1),
                  record=judgment(new, t1.date(), "（2026）晋0404民初7号"))
    before = ops.as_of(t0, hh.cbfbm)
    after = ops.as_of(t1, hh.cbfbm)
    later = ops.as_of(t1 + dt.timedelta(days=2), hh.cbfbm)
    assert [(x.term_end, s) for x, s in before] == [(dt.date(2028, 12, 31), "current")]
    assert [(x.term_end, s) for x, s in after] == [(dt.date(2058, 12, 31), "current")]
    assert [(x.version, s) for x, s in later] == [(2, "ended")]
    assert ops.as_of(t0 - dt.timedelta(days=1), hh.cbfbm) == []


def test_a_new_homestead_gets_its_real_property_unit_code(dbs):
    """不动产单元代码 with the JC zone type: village · J · C · next parcel number · fixture."""
    hh, fields, home = _household_with_land(dbs)
    last = dbs.scalar(text("SELECT max(substr(code, 15, 5)::int) FROM parcel WHERE kind = "
                           "'homestead' AND code LIKE :v || 'JC%'"), {"v": home.code[:12]})
    g = shapely.from_wkt(dbs.execute(text("SELECT ST_AsText(ST_Translate(ST_Transform(geom, "
                                          "survey_srid), 0, -5000)) FROM parcel WHERE id = :i"),
                                     {"i": home.id}).scalar())
    new = parcel_ops.register("bureau", "homestead", None, home.collective_id, g.wkt,
                              home.survey_srid, "新批宅基地", house=False)
    assert new.code == f"{home.code[:12]}JC{last + 1:05d}W00000000"
    assert len(new.code) == 28
