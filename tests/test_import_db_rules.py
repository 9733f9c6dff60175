"""Acceptance can never fail on a database rule: every CHECK constraint and trigger on the
tables acceptance writes has a validation rule that reports the same condition first.

The constraints and triggers are read from pg_catalog, so a new CHECK (or trigger) without an
entry in `validation.DB_RULES` fails this test; each reachable one is then broken by a
delivery built here, and validation must report its rule before acceptance — and acceptance
of the valid part must then succeed."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from app.imports import operations as ops
from app.imports import validation
from tests.delivery_factory import check_char, clean

# The tables the import's acceptance writes (app/imports/registration.py and the owners it calls).
WRITTEN = ("division", "collective", "household", "person", "household_member", "parcel")


def _db_rules(dbs) -> set[str]:
    checks = dbs.execute(text("""
        SELECT c.conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        WHERE c.contype = 'c' AND t.relname = ANY(:t)"""), {"t": list(WRITTEN)}).scalars().all()
    triggers = dbs.execute(text("""
        SELECT g.tgname FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
        WHERE NOT g.tgisinternal AND t.relname = ANY(:t)"""), {"t": list(WRITTEN)}).scalars()
    return set(checks) | set(triggers)


def test_every_check_and_trigger_has_a_validation_rule(dbs):
    found = _db_rules(dbs)
    assert found, "no constraints read from pg_catalog"
    missing = sorted(found - set(validation.DB_RULES))
    assert not missing, f"CHECKs/triggers without a validation rule: {missing}"
    for name, (rule, _why) in validation.DB_RULES.items():
        assert rule == "derived" or rule in validation.RULES, (name, rule)


def test_field_lengths_fit_the_register_columns(dbs):
    sizes = {(t, c): n for t, c, n in dbs.execute(text("""
        SELECT table_name, column_name, character_maximum_length FROM information_schema.columns
        WHERE table_name = ANY(:t) AND character_maximum_length IS NOT NULL"""),
        {"t": list(WRITTEN)}).all()}
    spec = {(t, f): m for t, fields in validation.FIELDS.items() for f, _k, m, _r in fields}
    for (tbl, field), column in validation.REGISTER_COLUMNS.items():
        assert column in sizes, column
        limit = validation.ID_FIELDS.get((tbl, field)) or spec.get((tbl, field))
        if limit is None:  # a code with its own format rule (e.g. CBFBM is 18 digits)
            continue
        assert limit <= sizes[column], f"{tbl}.{field} may be {limit} long, {column} holds " \
                                       f"{sizes[column]}"


def _member(d):
    return d.tables["CBF_JTCY"][-1]


def _household(d):
    return d.tables["CBF"][-1]


# name -> (how to break it in a delivery, the anchor ('rec', table) or ('feat', layer))
def _bad_fbf(d):
    d.tables["FBF"][0]["FBFBM"] = d.tables["FBF"][0]["FBFBM"][:13] + "A"


def _bad_id(d):
    m = _member(d)
    m["CYZJHM"] = m["CYZJHM"][:17] + ("0" if m["CYZJHM"][17] != "0" else "1")


def _short_id(d):
    _member(d)["CYZJHM"] = _member(d)["CYZJHM"][:16]


def _bad_cbfbm(d):
    _household(d)["CBFBM"] = _household(d)["CBFBM"][:17] + "Z"


def _bad_sequence(d):
    _household(d)["CBFLX"] = "3"  # a household sequence 000N for an organisation


def _bad_cbflx(d):
    _household(d)["CBFLX"] = "7"


def _bad_relation(d):
    _member(d)["YHZGX"] = "88"


def _bad_remark(d):
    _member(d)["CYBZ"] = "8"


def _bad_dkbm(d):
    d.dk[0][0]["DKBM"] = d.dk[0][0]["DKBM"][:18]


def _bad_bdcdyh(d):
    d.zjd[0][0]["BDCDYH"] = d.zjd[0][0]["BDCDYH"][:12] + "XX" + d.zjd[0][0]["BDCDYH"][14:]


def _zero_area(d):
    x0, y0, *_ = d.dk[0][1].bounds
    import shapely

    d.dk[0][1] = shapely.box(x0, y0, x0 + 0.01, y0 + 0.01)
    d.dk[0][0]["SCMJ"] = 0.0001


def _far_east(d):
    """A parcel moved 50,000 km east: no longitude inside China, no Gauss-Krüger zone of
    CGCS2000 (what ck_parcel_survey_srid_gk_zone holds the register to)."""
    import shapely.affinity

    d.dk[0][1] = shapely.affinity.translate(d.dk[0][1], 5e7, 0)


def _far_south(d):
    """A parcel moved 9,000 km south: beyond the latitudes ck_parcel_geom_finite admits."""
    import shapely.affinity

    d.dk[0][1] = shapely.affinity.translate(d.dk[0][1], 0, -9e6)


def _unknown_party(d):
    h = _household(d)
    body = "14040499999901" + h["CBFBM"][14:]
    h["CBFBM"] = body


BREAKS = {
    "ck_division_code_format": (_bad_fbf, "bad_code", "FBF"),
    "ck_division_level_matches_length": (_bad_fbf, "bad_code", "FBF"),
    "ck_collective_fbfbm_format": (_bad_fbf, "bad_code", "FBF"),
    "ck_person_sex": (_short_id, "id_length", "CBF_JTCY"),
    "ck_person_id_number_gb11643": (_bad_id, "bad_id_checksum", "CBF_JTCY"),
    "ck_household_cbfbm_format": (_bad_cbfbm, "bad_code", "CBF"),
    "ck_household_cbfbm_sequence_matches_type": (_bad_sequence, "bad_code", "CBF"),
    "ck_household_cbflx": (_bad_cbflx, "code_list", "CBF"),
    "ck_household_member_relation": (_bad_relation, "code_list", "CBF_JTCY"),
    "ck_household_member_remark": (_bad_remark, "code_list", "CBF_JTCY"),
    "ck_parcel_code_format": (_bad_dkbm, "bad_code", "DK"),
    "ck_parcel_area_positive": (_zero_area, "area_too_small", "DK"),
    "household_code_in_collective": (_unknown_party, "unknown_issuing_party", "CBF"),
    "ck_parcel_survey_srid_gk_zone": (_far_east, "extreme_coordinates", "DK"),
    "ck_parcel_geom_finite": (_far_south, "extreme_coordinates", "DK"),
}


def test_every_reachable_rule_breaks_the_same_way_in_both_places(dbs):
    """Each mapped rule that a delivery can break has a breaking case here (or says why it
    cannot be broken by a delivery: 'derived')."""
    for name, (rule, _why) in validation.DB_RULES.items():
        if rule == "derived":
            continue
        if rule == "overlap_register":
            continue  # tests/test_import_sample.py and test_parcels cover the overlap guard
        assert name in BREAKS, f"no breaking delivery for {name}"
        assert BREAKS[name][1] == rule


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_validation_reports_it_first_and_acceptance_then_succeeds(dbs, tmp_path, name):
    breaker, rule, where = BREAKS[name]
    d = clean(9400 + sorted(BREAKS).index(name), households=2)
    breaker(d)
    batch = ops.run("bureau", d.write(tmp_path / name))
    found = ops.faults(batch.id)
    hits = [f for f in found if f.rule == rule]
    assert hits, f"{name}: expected {rule}, got {[(f.rule, f.detail) for f in found]}"
    anchors = {f.record.tbl if f.record_id else f.feature.layer for f in hits}
    assert where in anchors
    result = ops.accept("bureau", batch, valid_part=True)
    assert "failed" not in result, result
    left = dbs.execute(text("SELECT count(*) FROM import_feature WHERE batch_id = :b AND status"
                            " NOT IN ('registered', 'quarantined')"), {"b": batch.id}).scalar()
    assert left == 0


def test_bdcdyh_format_is_checked(dbs, tmp_path):
    d = clean(9450)
    _bad_bdcdyh(d)
    batch = ops.run("bureau", d.write(tmp_path / "z"))
    assert any(f.rule == "bad_code" and f.feature.layer == "ZJD" for f in ops.faults(batch.id))
    assert check_char("11010519491231002") == "X"  # the check digit the factory uses
