"""Set-wise validation of a staged survey delivery in PostGIS.

Each check is one SQL statement over the whole batch (or, where a judgement is needed — which
of two duplicates or of two overlapping parcels is at fault — a small Python step over the few
rows the SQL found).  Every fault names its feature or row, its rule and where it is.
"""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import text

from app.codes import cbfbm_sequence_sql
from app.extensions import db

# rule -> (Chinese label, English label, source)
RULES = {
    "self_intersection": ("自相交", "self-intersection", "OGC Simple Features; NY/T 2539-2016 §6"),
    "invalid_geometry": ("几何无效", "invalid geometry", "OGC Simple Features; NY/T 2539-2016 §6"),
    "missing_shape": ("无图形", "no geometry", "NY/T 2539-2016 §6"),
    "overlap": ("地块重叠", "overlapping parcels", "NY/T 2539-2016 §6 (地块不得重叠)"),
    "overlap_register": ("与登记簿重叠", "overlaps the register", "NY/T 2539-2016 §6"),
    "duplicate_parcel_code": ("地块编码重复", "duplicate parcel code", "NY/T 2539-2016 地块编码唯一"),
    "code_registered": ("编码已登记", "code already registered", "NY/T 2539-2016 地块编码唯一"),
    "bad_code": ("编码格式错误", "malformed code", "NY/T 2539-2016; GB/T 37346-2019"),
    "unknown_issuing_party": ("发包方不存在", "unknown issuing party", "NY/T 2539-2016 FBF"),
    "code_list": ("代码不在代码表中", "value outside the code list", "NY/T 2539-2016 代码表"),
    "area_mismatch": ("面积不符", "area mismatch", "NY/T 2539-2016 SCMJ; 计算面积"),
    "bad_id_checksum": ("身份号码校验码错误", "ID number check digit", "GB 11643-1999"),
    "two_homesteads": ("一户多宅", "household holds two homesteads", "土地管理法 第六十二条 一户一宅"),
    "missing_geometry": ("地块缺少图形", "parcel without geometry", "NY/T 2539-2016 CBDKXX"),
    "unknown_household": ("承包方不存在", "unknown household", "NY/T 2539-2016 CBF"),
    "wrong_geometry_type": ("图形类型错误", "wrong geometry type", "NY/T 2539-2016 §6 (面要素)"),
    "unreadable_geometry": ("图形无法读取", "unreadable geometry", "NY/T 2539-2016 §6"),
    "too_few_points": ("顶点过少", "ring with too few points", "OGC Simple Features"),
    "extreme_coordinates": ("坐标异常", "coordinates out of range", "domain.md §4; GB/T 18314"),
    "too_many_vertices": ("顶点过多", "too many vertices", "平台设置 IMPORT_MAX_VERTICES"),
    "geometry_too_large": ("图形过大", "feature too large", "平台设置 IMPORT_MAX_EXTENT_M"),
    "area_too_small": ("面积为零", "area rounds to zero", "NY/T 2539-2016 SCMJ"),
    "missing_value": ("必填项为空", "required field empty", "NY/T 2539-2016 数据字典"),
    "too_long": ("字段超长", "value too long", "NY/T 2539-2016 数据字典 (字段长度)"),
    "bad_date": ("日期无效", "not a real date", "NY/T 2539-2016 数据字典 (Date)"),
    "bad_number": ("数值无效", "not a valid number", "NY/T 2539-2016 数据字典 (Double/Int)"),
    "bad_format": ("格式错误", "wrong format", "NY/T 2539-2016 数据字典"),
    "id_length": ("身份号码位数错误", "ID number length or characters", "GB 11643-1999 §5"),
    "id_region": ("身份号码地址码错误", "ID number region code", "GB 11643-1999 §5.2; GB/T 2260"),
    "id_birth_date": ("身份号码出生日期错误", "ID number birth date", "GB 11643-1999 §5.3"),
    "no_resident_id": ("非居民身份证", "not a resident ID card", "GB 11643-1999; 登记簿以身份号码识别"),
    "duplicate_key": ("编码重复", "duplicate key", "NY/T 2539-2016 (主键唯一)"),
    "household_registered": ("承包方已登记", "household already registered",
                             "不动产登记暂行条例 第二十条 (变更登记)"),
    "person_in_other_household": ("成员已属他户", "member of another household",
                                  "NY/T 2539-2016 CBF_JTCY"),
    "unknown_contract": ("承包合同不存在", "unknown contract", "NY/T 2539-2016 CBHT"),
    "bad_term": ("承包期限不一致", "inconsistent contract term", "农村土地承包法 第二十一条"),
    "inconsistent_birth_date": ("出生日期不一致", "birth date differs from ID", "GB 11643-1999"),
    "parcel_reassigned": ("已登记地块改属他户", "registered parcel re-assigned",
                          "农村土地承包法 第二十七条、第三十三条至第三十五条"),
    "depends_on_fault": ("因关联错误待处理", "waits for a related fault", "NY/T 2539-2016"),
    "not_registered": ("未能登记", "not registered", "NY/T 2539-2016"),
    "acceptance_failed": ("入库失败", "acceptance failed", "NY/T 2539-2016"),
    # What the reader finds in a delivered text or file (gis.io: hostile values, CSV shape).
    "bad_character": ("含非法字符", "control, bidi or non-text character",
                      "NY/T 2539-2016 数据字典 (字符型); GB 18030-2022; Unicode TR#9/TR#36"),
    "ragged_row": ("列数不符", "row with too many or too few cells",
                   "NY/T 2539-2016 数据交换格式; RFC 4180 §2"),
    "duplicate_column": ("列名重复", "column delivered twice with different values",
                         "NY/T 2539-2016 数据字典 (字段唯一)"),
    "empty_table": ("表文件为空", "table file without header", "NY/T 2539-2016 数据交换格式"),
    "bad_csv": ("表文件无法读取", "unreadable table file", "RFC 4180"),
}

CODE_LISTS = {
    "SYQXZ": ("10", "30", "31", "32", "33", "34"),
    "DKLB": ("10", "21", "22", "23", "99"),
    "DLDJ": tuple(f"{i:02d}" for i in range(1, 11)),
    "TDYT": ("1", "2", "3", "4", "5"),
    "SFJBNT": ("1", "2"),
}


# ---------------------------------------------------------------------------------------------
# Every field of every table (NY/T 2539-2016 data dictionary): kind, max length, required.
# kind: text | code:<LIST> | date | number | int | digits:<n>.  Codes whose format has its own
# rule (DKBM, BDCDYH, CBFBM of CBF, FBFBM of FBF) are checked by `bad_code`, not here.
ZJLX = ("1", "2", "3", "4", "5", "9")
LISTS = {
    **CODE_LISTS,
    "ZJLX": ZJLX, "CBFLX": ("1", "2", "3"), "XB": ("1", "2"), "SF": ("1", "2"),
    "YHZGX": ("01", "02", "10", "11", "12", "20", "30", "51", "52", "97", "99"),
    "CYBZ": ("1", "2", "3", "4", "5", "6", "7", "9"),
    "CBFS": ("100", "110", "120", "121", "122", "123", "129", "200", "300", "900"),
}
FIELDS = {
    "FBF": [("FBFMC", "text", 50, True), ("FBFFZRXM", "text", 50, False),
            ("FZRZJLX", "code:ZJLX", 1, False), ("FZRZJHM", "text", 20, False),
            ("LXDH", "text", 20, False), ("FBFDZ", "text", 200, False),
            ("YZBM", "digits:6", 6, False), ("FBFDCY", "text", 50, False),
            ("FBFDCRQ", "pastdate", 10, False), ("FBFDCJS", "text", 254, False)],
    "CBF": [("CBFLX", "code:CBFLX", 1, True), ("CBFMC", "text", 50, True),
            ("CBFZJLX", "code:ZJLX", 1, False), ("CBFZJHM", "text", 20, False),
            ("CBFDZ", "text", 200, False), ("YZBM", "digits:6", 6, False),
            ("LXDH", "text", 20, False), ("CBFCYSL", "int", 4, False),
            ("CBFDCRQ", "pastdate", 10, False), ("CBFDCY", "text", 50, False),
            ("CBFDCJS", "text", 254, False), ("GSJS", "text", 254, False),
            ("GSJSR", "text", 50, False), ("GSSHRQ", "pastdate", 10, False),
            ("GSSHR", "text", 50, False)],
    "CBF_JTCY": [("CBFBM", "digits:18", 18, True), ("CYXM", "text", 50, True),
                 ("CYXB", "code:XB", 1, True), ("CYZJLX", "code:ZJLX", 1, False),
                 ("CYZJHM", "text", 20, True), ("YHZGX", "code:YHZGX", 2, True),
                 ("CYBZ", "code:CYBZ", 1, False), ("SFGYR", "code:SF", 1, False),
                 ("CYBZSM", "text", 254, False), ("CSRQ", "pastdate", 10, False)],
    "CBHT": [("CBHTBM", "text", 20, True), ("YCBHTBM", "text", 20, False),
             ("FBFBM", "digits:14", 14, True), ("CBFBM", "digits:18", 18, True),
             ("CBFS", "code:CBFS", 3, False), ("CBQXQ", "date", 10, True),
             ("CBQXZ", "date", 10, True), ("HTZMJ", "number", 20, False),
             ("CBDKZS", "int", 6, False), ("QDSJ", "pastdate", 10, False),
             ("HTZMJM", "number", 20, False), ("YHTZMJ", "number", 20, False),
             ("YHTZMJM", "number", 20, False)],
    "CBDKXX": [("DKBM", "digits:19", 19, True), ("FBFBM", "digits:14", 14, True),
               ("CBFBM", "digits:18", 18, True), ("CBJYQQDFS", "code:CBFS", 3, False),
               ("HTMJ", "number", 20, False), ("CBHTBM", "text", 20, False),
               ("LZHTBM", "text", 20, False), ("CBJYQZBM", "text", 20, False),
               ("YHTMJ", "number", 20, False), ("HTMJM", "number", 20, False),
               ("YHTMJM", "number", 20, False), ("SFQQQG", "code:SF", 1, False)],
    # The other tables of the standard, when delivered: kept, and checked as far as the
    # dictionary goes (transfer contracts, certificates).
    "LZHT": [("LZHTBM", "text", 20, True), ("CBFBM", "digits:18", 18, False),
             ("SRFBM", "text", 50, False), ("LZFS", "text", 3, False),
             ("LZQX", "text", 50, False), ("LZQXKSRQ", "date", 10, False),
             ("LZQXJSRQ", "date", 10, False), ("LZMJ", "number", 20, False),
             ("LZDKS", "int", 6, False), ("HTQDRQ", "pastdate", 10, False)],
    "CBJYQZ": [("CBJYQZBM", "text", 20, True), ("FZJG", "text", 50, False),
               ("FZRQ", "pastdate", 10, False), ("QZSFLQ", "code:SF", 1, False),
               ("QZLQRQ", "pastdate", 10, False), ("QZLQRXM", "text", 50, False)],
    "DK": [("DKMC", "text", 50, False), ("SYQXZ", "code:SYQXZ", 2, False),
           ("DKLB", "code:DKLB", 2, False), ("TDLYLX", "text", 3, False),
           ("DLDJ", "code:DLDJ", 2, False), ("TDYT", "code:TDYT", 1, False),
           ("SFJBNT", "code:SFJBNT", 1, False), ("SCMJ", "number", 20, False),
           ("SCMJM", "number", 20, False), ("DKDZ", "text", 50, False),
           ("DKNZ", "text", 50, False), ("DKXZ", "text", 50, False),
           ("DKBZ", "text", 50, False), ("DKBZXX", "text", 254, False),
           ("ZJRXM", "text", 50, False)],
    "ZJD": [("ZDMJ", "number", 20, False), ("FBFBM", "digits:14", 14, False),
            ("CBFBM", "digits:18", 18, False), ("QLRMC", "text", 50, False),
            ("QLRZJHM", "text", 20, False), ("YT", "text", 10, False)],
}
# Resident ID numbers: exactly 18 characters once the ID rules pass (id_length …).
ID_FIELDS = {("CBF_JTCY", "CYZJHM"): 18, ("CBF", "CBFZJHM"): 18, ("FBF", "FZRZJHM"): 18}
# The row key shown in the report, per table.
ROW_KEY = {"FBF": "FBFBM", "CBF": "CBFBM", "CBF_JTCY": "CBFBM", "CBHT": "CBHTBM",
           "CBDKXX": "DKBM"}
# Where a delivered field lands in the register (its column size bounds the field's length).
REGISTER_COLUMNS = {
    ("FBF", "FBFMC"): ("collective", "name"), ("FBF", "FBFFZRXM"): ("collective", "leader_name"),
    ("FBF", "FBFDZ"): ("collective", "address"), ("CBF", "CBFMC"): ("household", "name"),
    ("CBF", "CBFDZ"): ("household", "address"), ("CBF", "LXDH"): ("household", "phone"),
    ("CBF", "CBFLX"): ("household", "cbflx"), ("CBF_JTCY", "CYXM"): ("person", "name"),
    ("CBF_JTCY", "CYZJHM"): ("person", "id_number"),
    ("CBF_JTCY", "YHZGX"): ("household_member", "relation"),
    ("CBF_JTCY", "CYBZ"): ("household_member", "remark"),
    ("CBDKXX", "CBFBM"): ("parcel", "household_code"), ("DK", "DKMC"): ("parcel", "name"),
    ("DK", "SYQXZ"): ("parcel", "syqxz"), ("DK", "DKLB"): ("parcel", "dklb"),
    ("DK", "TDLYLX"): ("parcel", "tdlylx"), ("DK", "DLDJ"): ("parcel", "dldj"),
    ("DK", "TDYT"): ("parcel", "tdyt"), ("DK", "SFJBNT"): ("parcel", "sfjbnt"),
    ("DK", "DKDZ"): ("parcel", "east"), ("DK", "DKNZ"): ("parcel", "south"),
    ("DK", "DKXZ"): ("parcel", "west"), ("DK", "DKBZ"): ("parcel", "north"),
    ("DK", "ZJRXM"): ("parcel", "witness"), ("DK", "DKBZXX"): ("parcel", "remarks"),
    ("ZJD", "CBFBM"): ("parcel", "household_code"),
}
# Every CHECK constraint and trigger on the tables acceptance writes, and the validation rule
# that reports the same condition before acceptance ('derived': the importer computes the
# value itself, so a delivery cannot break it).  tests/test_import_db_rules.py reads the
# constraints from pg_catalog: a new one without an entry here fails that test.
DB_RULES = {
    "ck_division_code_format": ("bad_code", "FBF.FBFBM is 14 digits; divisions are its prefixes"),
    "ck_division_level": ("derived", "levels are set by the importer"),
    "ck_division_level_matches_length": ("bad_code", "township = FBFBM[:9], village = [:12]"),
    "ck_collective_fbfbm_format": ("bad_code", "FBF.FBFBM must be 14 digits"),
    "ck_collective_fbfbm_in_village": ("derived", "village_code = FBFBM[:12]"),
    "ck_person_sex": ("id_length", "sex comes from digit 17 of a well-formed ID number"),
    "ck_person_id_number_gb11643": ("bad_id_checksum", "length, region, birth date, check digit"),
    "ck_household_cbfbm_format": ("bad_code", "CBF.CBFBM must be 18 digits"),
    "ck_household_cbfbm_sequence_matches_type": ("bad_code", "sequence range of CBFLX"),
    "ck_household_cbflx": ("code_list", "CBF.CBFLX in 1, 2, 3"),
    "ck_household_member_relation": ("code_list", "CBF_JTCY.YHZGX in the code list"),
    "ck_household_member_remark": ("code_list", "CBF_JTCY.CYBZ in the code list"),
    "ck_parcel_code_format": ("bad_code", "DKBM 19 digits, BDCDYH 28 characters"),
    "ck_parcel_kind": ("derived", "kind comes from the layer"),
    "ck_parcel_lifespan": ("derived", "a registered parcel begins now and has no end"),
    "ck_parcel_area_positive": ("area_too_small", "computed area rounds to 0.00 m²"),
    # 0043_atk_db2: finite coordinates within longitude/latitude, and the survey zone a
    # Gauss-Krüger 3° zone of CGCS2000 (4513–4554) — both implied by the coordinate range check
    # (China's extent; the zone is the delivery's, or derived from a longitude inside China).
    "ck_parcel_geom_finite": ("extreme_coordinates", "finite coordinates inside China's extent"),
    "ck_parcel_survey_srid_gk_zone": ("extreme_coordinates",
                                      "a zone 4513–4554 from a longitude inside China"),
    "household_code_in_collective": ("unknown_issuing_party",
                                     "CBF.CBFBM[:14] must be an issuing party"),
    "parcel_guard": ("overlap_register", "overlap with the register, checked again in the lock"),
    "parcel_bulk_guard": ("derived", "acceptance holds the table lock"),
    "parcel_holder_kept": ("derived", "an import registers version 1 only; the trigger fires "
                                      "for later versions (amendments)"),
    "household_member_hukou_guard": ("derived", "an import moves no hukou"),
    # An import begins households and their members' places; it never ends or rewrites one.
    "ck_household_ended_on_its_ground": ("derived", "an import never ends a household"),
    "ck_household_member_left_on_its_ground": ("derived", "an import never ends a place"),
    "household_end_guard": ("derived", "an import never ends a household"),
    "household_member_successor": ("derived", "an import inserts current places only"),
    "household_member_versioned": ("derived", "an import never changes a place in place"),
    # Citus-ready (0036): the member's county is copied from its household; refuses nothing.
    "household_member_county_code": ("derived", "copied from the member's household"),
    # 0040_atk_db: the id always comes from its sequence (unique across counties); refuses
    # only a change of id, which an import never makes.
    "household_member_key": ("derived", "taken from the sequence; an import names no id"),
    # 0041_citus2: the same for the keys (id, county_code) of collective, household, parcel.
    "collective_key": ("derived", "taken from the sequence; an import names no id"),
    "household_key": ("derived", "taken from the sequence; an import names no id"),
    "parcel_key": ("derived", "taken from the sequence; an import names no id"),
    # 0045_citus_person: one person row per county.  The import names the household's county
    # (first six digits of a valid CBFBM) and joins the member to that row, so the placement
    # triggers find the row in place and the county always has six digits.
    "person_key": ("derived", "taken from the sequence; an import names no id"),
    "person_county": ("derived", "the import names the household's county; refuses nothing"),
    "ck_person_county_code_format": ("derived", "the first six digits of a valid CBFBM"),
    "household_member_person": ("derived", "the member's row in its household's county; "
                                           "refuses nothing"),
    "household_head_person": ("derived", "the head's row in the household's county; refuses "
                                         "nothing"),
    # 0046_person_one_human: fires on an UPDATE of person only; acceptance never renumbers.
    "person_one_human": ("derived", "acceptance inserts persons and never changes an ID number"),
    # 0049_person_one_hukou: a second county's row of a registered person is that person.
    "person_human": ("derived", "a registered ID number's new row takes the person's name and "
                                "hukou; refuses nothing"),
    "person_one_hukou": ("derived", "every row of an ID number has one hukou (person_human "
                                    "makes it so on insert)"),
    # Bookkeeping, not a rule: the register's version counter for tile ETags (0023_ops).
    "parcel_register_version": ("derived", "counts changes to the register; refuses nothing"),
}


# The geometry as it will be stored: one definition, in gis.stored.


# ---------------------------------------------------------------------------------------------
# Fast paths (issue 18): import_date() and gb11643_fault() are PL/pgSQL with an exception block
# (a subtransaction per call, ~20 µs); called for every date and ID number of a delivery they
# were most of the field, term and ID checks.  Each check now first tests, with inline built-in
# expressions only, whether a value is *certainly* fine; only the others go to the exact
# function, which names the fault as before.  "Certainly fine" implies what the function would
# say (tests/test_import_fast_paths.py compares both on generated values).

# A calendar date as import_date() reads it (separators '-', '/', '.' dropped), restricted to
# years 1880–2999 and to days that every month has (29 February goes the slow way).
SURE_DATE_RE = (r"^(18[89][0-9]|19[0-9]{2}|2[0-9]{3})[-/.]?("
                r"(0[1-9]|1[0-2])[-/.]?(0[1-9]|1[0-9]|2[0-8])"
                r"|(0[13-9]|1[0-2])[-/.]?(29|30)"
                r"|(0[13578]|1[02])[-/.]?31)$")
_SURE_DATE_SQL = SURE_DATE_RE.replace("'", "''")


def date_sql(x: str) -> str:
    """SQL equal to import_date(x), without the function call for the usual values."""
    return (f"(CASE WHEN {x} ~ '{_SURE_DATE_SQL}' THEN to_date(translate({x}, '-/.', ''), "
            f"'YYYYMMDD') ELSE import_date({x}) END)")


def sure_date_sql(x: str, past: bool) -> str:
    """SQL true only when x is a real date on or after 1880-01-01 (and, if `past`, not after
    today): no date fault is possible."""
    ok = f"({x} ~ '{_SURE_DATE_SQL}'"
    if past:
        ok += (f" AND translate({x}, '-/.', '') COLLATE \"C\" <= "
               f"to_char(current_date, 'YYYYMMDD') COLLATE \"C\"")
    return ok + ")"


PROVINCES = ("11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36",
             "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62",
             "63", "64", "65", "71", "81", "82")
# 18 characters, a GB/T 2260 province, a birth date on or after 1880 that every month has.
SURE_ID_RE = (r"^(" + "|".join(PROVINCES) + r")[0-9]{4}(18[89][0-9]|19[0-9]{2}|20[0-9]{2})("
              r"(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])(29|30)|(0[13578]|1[02])31)"
              r"[0-9]{3}[0-9X]$")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def sure_id_sql(n: str) -> str:
    """SQL true only when gb11643_fault(n, current_date) is NULL: the form, the region, the
    birth date (not after today) and the check digit, in built-in expressions."""
    total = " + ".join(f"{w} * substr({n}, {i}, 1)::int" for i, w in enumerate(ID_WEIGHTS, 1))
    return (f"({n} ~ '{SURE_ID_RE}' AND substr({n}, 3, 4) <> '0000'"
            f" AND substr({n}, 7, 8) COLLATE \"C\" <= to_char(current_date, 'YYYYMMDD') COLLATE \"C\""
            f" AND substr('10X98765432', ({total}) % 11 + 1, 1) = substr({n}, 18, 1))")


def id_fault_sql(n: str) -> str:
    """SQL equal to gb11643_fault(n, current_date), the function called only when needed."""
    return f"(CASE WHEN {sure_id_sql(n)} THEN NULL ELSE gb11643_fault({n}, current_date) END)"


def _exec(sql: str, **params):
    return db.session.execute(text(sql), params)


def _fault(batch_id, rule, code, detail, feature_id=None, record_id=None, location_sql=None):
    _exec(
        "INSERT INTO import_fault (batch_id, feature_id, record_id, rule, code, detail, location)"
        " VALUES (:b, :f, :r, :rule, :code, :detail, "
        + (location_sql or "NULL") + ")",
        b=batch_id, f=feature_id, r=record_id, rule=rule, code=code, detail=detail)


POINT_OF = ("(SELECT ST_Transform(ST_PointOnSurface(ST_MakeValid(geom)), 4490) "
            "FROM import_feature WHERE id = :f)")


def validate(batch_id: int, tolerance_m2: float, area_tolerance_m2: float, progress=None,
             checked_upto: tuple[int, int] = (0, 0)) -> dict:
    """Check the features and rows staged after `checked_upto` (feature id, record id); return
    {rule: count} of the batch's open faults.  Faulty rows get status 'faulty'."""
    steps = [
        _geometry, _attributes, _fields, _codes, _duplicates, _overlaps, _register_overlaps,
        _ids, _keys, _references, _terms, _households, _homesteads, _reassignments, _knock_ons,
    ]
    after, after_r = checked_upto
    # No JIT: the work is in PostGIS's functions, which JIT cannot compile; compiling the
    # expressions around them cost ~0.5 s per large query (1.7 s of CPU in 3 processes).
    _exec("SET LOCAL jit = off")
    ctx = {"b": batch_id, "tol": tolerance_m2, "atol": area_tolerance_m2, "explained": set(),
           "after": after, "after_r": after_r}
    for i, step in enumerate(steps):
        if progress:
            progress(i, len(steps), step.__name__.strip("_"))
        step(ctx)
    # Only the faulty change status: staged rows are 'valid' until a fault says otherwise.
    _exec("""UPDATE import_feature f SET status = 'faulty' WHERE f.id IN (
               SELECT x.feature_id FROM import_fault x WHERE x.batch_id = :b
                 AND x.resolved_at IS NULL AND x.feature_id > :after)
             AND f.status = 'valid'""", b=batch_id, after=after)
    _exec("""UPDATE import_record r SET status = 'faulty' WHERE r.id IN (
               SELECT x.record_id FROM import_fault x WHERE x.batch_id = :b
                 AND x.resolved_at IS NULL AND x.record_id > :after_r)
             AND r.status = 'valid'""", b=batch_id, after_r=after_r)
    rows = _exec("SELECT rule, count(*) FROM import_fault WHERE batch_id = :b "
                 "AND resolved_at IS NULL GROUP BY rule", b=batch_id).all()
    if progress:
        progress(len(steps), len(steps), "done")
    return dict(rows)


def _pending(alias="f"):
    """Features not yet checked: staged (or corrected) since the last validation."""
    return f"{alias}.batch_id = :b AND {alias}.id > :after AND {alias}.status = 'valid'"


def _geometry(ctx):
    # Features the reader already found at fault (null shape, unreadable, extreme, too big)
    # carry that fault; the others: empty, or not a polygon.
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail)
        SELECT f.batch_id, f.id,
               CASE WHEN f.geom IS NULL OR ST_IsEmpty(f.geom) THEN 'missing_shape'
                    ELSE 'wrong_geometry_type' END, f.code,
               CASE WHEN f.geom IS NULL THEN 'no geometry'
                    WHEN ST_IsEmpty(f.geom) THEN 'empty geometry'
                    ELSE GeometryType(f.geom) || ' where a polygon is expected' END
        FROM import_feature f WHERE {_pending()} AND (f.geom IS NULL OR ST_IsEmpty(f.geom)
          OR GeometryType(f.geom) NOT IN ('POLYGON', 'MULTIPOLYGON'))
          AND NOT EXISTS (SELECT 1 FROM import_fault o WHERE o.feature_id = f.id
                          AND o.resolved_at IS NULL)""", **ctx)
    # One pass: ST_IsValid on both geometries (cheap); the detail only for the invalid ones.
    bad = _exec(f"""
        SELECT f.id, ST_IsValid(f.geom) AS ok, ST_IsValid(f.geom_stored) AS ok_stored
        FROM import_feature f WHERE {_pending()} AND f.geom IS NOT NULL AND NOT ST_IsEmpty(f.geom)
          AND GeometryType(f.geom) IN ('POLYGON', 'MULTIPOLYGON')
          AND NOT (ST_IsValid(f.geom) AND ST_IsValid(f.geom_stored))""", **ctx).all()
    as_delivered = [r.id for r in bad if not r.ok]
    only_stored = [r.id for r in bad if r.ok and not r.ok_stored]
    if as_delivered:
        _exec("""
            INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
            SELECT f.batch_id, f.id,
                   CASE WHEN (f.d).reason ILIKE '%%self-intersection%%' THEN 'self_intersection'
                        WHEN (f.d).reason ILIKE '%%too few points%%' THEN 'too_few_points'
                        ELSE 'invalid_geometry' END,
                   f.code, (f.d).reason,
                   ST_Transform(ST_SetSRID((f.d).location, ST_SRID(f.geom)), 4490)
            FROM (SELECT f.*, ST_IsValidDetail(f.geom) AS d FROM import_feature f
                  WHERE f.id = ANY(:ids)) f""", ids=as_delivered)
    if only_stored:
        # Valid as delivered but not once cleaned and put in CGCS2000 (near-coincident vertices).
        _exec("""
            INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
            SELECT f.batch_id, f.id, 'invalid_geometry', f.code,
                   'invalid in CGCS2000 (EPSG:4490): ' || (f.d).reason, (f.d).location
            FROM (SELECT f.*, ST_IsValidDetail(f.geom_stored) AS d FROM import_feature f
                  WHERE f.id = ANY(:ids)) f""", ids=only_stored)
    # A valid polygon whose area rounds to 0.00 m² (the register needs a positive area).
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail)
        SELECT f.batch_id, f.id, 'area_too_small', f.code,
               'area ' || ST_Area(f.geom_stored::geography) || ' m² rounds to zero'
        FROM import_feature f WHERE {_pending()} AND f.geom_stored IS NOT NULL
          AND GeometryType(f.geom) IN ('POLYGON', 'MULTIPOLYGON') AND NOT (f.id = ANY(:ids))
          AND ST_Area(f.geom) < CASE WHEN ST_SRID(f.geom) IN (4326, 4490) THEN 1e-6 ELSE 1 END
          AND ST_Area(f.geom_stored::geography) < 0.005""", **ctx,
          ids=as_delivered + only_stored)
    ctx["bad"] = _bad_geometry(ctx)


def _codes(ctx):
    # The issuing party: in this delivery's FBF table, or already registered (a hash join).
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail)
        SELECT f.batch_id, f.id, 'unknown_issuing_party', f.code,
               'issuing party ' || substr(f.code, 1, 14) || ' is neither in FBF nor registered'
        FROM import_feature f
        LEFT JOIN (SELECT r.attrs->>'FBFBM' AS fb FROM import_record r
                   WHERE r.batch_id = :b AND r.tbl = 'FBF' AND r.status <> 'superseded'
                   UNION SELECT fbfbm FROM collective) k ON k.fb = substr(f.code, 1, 14)
        WHERE {_pending()} AND f.layer = 'DK' AND f.code ~ '^[0-9]{{19}}$' AND k.fb IS NULL
        """, **ctx)


def json_num_sql(j: str) -> str:
    """SQL for a staged attribute (jsonb `j`) read as a number exactly as import_num reads its
    text, but a JSON number (what a GeoPackage's or shapefile's numeric field is staged as) taken
    as it is, without the pattern: import_num's pattern was 3 of the 4 s of a 1M delivery's area
    check.  An expression, not a function: a function must pin its search_path
    (tests/test_guard_attacks.py), and a pinned SQL function is called, not inlined — 5-6 s per
    million rows, slower than the pattern it replaces.  The JSON number is taken as it is only
    where import_num would take its text (written out in full, as jsonb gives it): below 1e300
    and at most 200 digits after the point (migration 0055); the rest goes to import_num."""
    return (f"(CASE WHEN jsonb_typeof({j}) = 'number' AND abs(({j})::numeric) < 1e300 "
            f"AND scale(({j})::numeric) <= 200 "
            f"THEN ({j})::float8 ELSE import_num(({j}) #>> '{{}}') END)")


def _attributes(ctx):
    """Code formats, code lists and the delivered area (cheap scans, no geometry work but
    the area)."""
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail)
        SELECT f.batch_id, f.id, 'bad_code', f.code,
               CASE WHEN f.layer = 'DK' THEN 'DKBM must be 19 digits (FBFBM + 5-digit sequence)'
                    ELSE 'BDCDYH must be 28 characters with zone type JC (GB/T 37346-2019)' END
        FROM import_feature f WHERE {_pending()} AND (
          (f.layer = 'DK' AND coalesce(f.code, '') !~ '^[0-9]{{19}}$') OR
          (f.layer = 'ZJD' AND coalesce(f.code, '') !~ '^[0-9]{{12}}JC[0-9]{{5}}[FLQW][0-9]{{8}}$'))
        """, **ctx)
    # Each feature's two areas computed once (the fence): the inlined import_num and ST_Area
    # were evaluated again for every use of them in the statement.
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
        SELECT x.batch_id, x.id, 'area_mismatch', x.code,
               'delivered area ' || round(x.delivered::numeric, 2) || ' m², computed ' ||
               round(x.computed::numeric, 2) || ' m²',
               ST_Transform(ST_PointOnSurface(x.geom), 4490)
        FROM (SELECT f.batch_id, f.id, f.code, f.geom,
                     {json_num_sql("coalesce(nullif(f.attrs->'SCMJ', 'null'::jsonb), "
                                   "f.attrs->'ZDMJ')")} AS delivered,
                     ST_Area(f.geom) AS computed
              FROM import_feature f
              WHERE {_pending()} AND NOT (f.id = ANY(:bad)) OFFSET 0) x
        WHERE x.delivered IS NOT NULL AND abs(x.delivered - x.computed) > :atol""", **ctx)


def _duplicates(ctx):
    """Features sharing a code: the one whose area fits the contract's record keeps it; each
    other one is at fault, with the unmatched CBDKXX code it most likely is."""
    # The shared codes first (a hash aggregate over the codes alone), then the few features
    # that carry them with their areas.
    groups = _exec("""
        WITH shared AS (
          SELECT f.layer, f.code FROM import_feature f WHERE f.batch_id = :b
            AND f.status = 'valid' AND f.id > :after AND f.code IS NOT NULL
          GROUP BY f.layer, f.code HAVING count(*) > 1)
        SELECT f.layer, f.code, array_agg(f.id ORDER BY f.fid) AS ids,
               array_agg(coalesce(import_num(f.attrs->>'SCMJ'), ST_Area(f.geom), 0) ORDER BY f.fid)
                 AS areas
        FROM import_feature f JOIN shared s ON s.layer = f.layer AND s.code = f.code
        WHERE f.batch_id = :b AND f.status = 'valid' AND f.id > :after
        GROUP BY f.layer, f.code""", **ctx).all()
    if not groups:
        return
    unmatched = set(_exec("""
        SELECT DISTINCT r.attrs->>'DKBM' FROM import_record r WHERE r.batch_id = :b
          AND r.tbl = 'CBDKXX' AND NOT EXISTS (SELECT 1 FROM import_feature f
              WHERE f.batch_id = r.batch_id AND f.layer = 'DK' AND f.code = r.attrs->>'DKBM')""",
                          **ctx).scalars())
    # The contract areas of the shared codes and of the unmatched ones only: every other is
    # never looked up (reading all of a 1M delivery's contract lines into Python took ~6 s).
    wanted = sorted({code for _layer, code, _ids, _areas in groups} | (unmatched - {None}))
    contract_area = dict(_exec("""SELECT attrs->>'DKBM', import_num(attrs->>'HTMJ') FROM import_record
                                  WHERE batch_id = :b AND tbl = 'CBDKXX'
                                    AND status <> 'superseded'
                                    AND attrs->>'DKBM' = ANY(:wanted)""",
                               wanted=wanted, **ctx).all())
    for layer, code, ids, areas in groups:
        ref = contract_area.get(code)
        order = sorted(range(len(ids)), key=lambda i: abs(areas[i] - ref) if ref else i)
        for i in order[1:]:
            guess = None
            candidates = [c for c in unmatched if c[:14] == code[:14] and c in contract_area]
            if candidates and layer == "DK":
                guess = min(candidates, key=lambda c: abs(contract_area[c] - areas[i]))
                if abs(contract_area[guess] - areas[i]) > 0.1 * areas[i]:
                    guess = None
            if guess:
                unmatched.discard(guess)
                ctx["explained"].add(guess)
                detail = (f"feature carries code {code}, which another feature also carries; its "
                          f"area {areas[i]:.2f} m² fits parcel {guess} (contract area "
                          f"{contract_area[guess]:.2f} m²), listed in CBDKXX without geometry")
            else:
                detail = f"code {code} is carried by {len(ids)} features"
            _fault(ctx["b"], "duplicate_parcel_code", guess or code, detail, feature_id=ids[i],
                   location_sql=POINT_OF)
    # Codes already registered in the register (current versions).
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail)
        SELECT f.batch_id, f.id, 'code_registered', f.code, 'a current parcel already has this code'
        FROM import_feature f WHERE {_pending()} AND EXISTS (
          SELECT 1 FROM parcel p WHERE p.code = f.code AND p.end_lifespan IS NULL)""", **ctx)


def _bad_geometry(ctx) -> list[int]:
    return list(_exec("""SELECT feature_id FROM import_fault WHERE batch_id = :b
                         AND feature_id > :after AND resolved_at IS NULL AND rule IN
                         ('missing_shape', 'self_intersection', 'invalid_geometry',
                          'wrong_geometry_type', 'unreadable_geometry', 'too_few_points',
                          'extreme_coordinates', 'too_many_vertices', 'geometry_too_large',
                          'area_too_small')""",
                      **ctx).scalars())


def _overlaps(ctx):
    """Pairs overlapping by more than the tolerance.  The fault goes to the feature that fits
    its neighbours worst: the one in most overlaps, then the one sharing the least boundary.
    A second copy of a parcel (its code already at fault as a duplicate) is left out: its
    overlap with the first copy is that same fault, and blaming the first copy for it would
    quarantine both."""
    ctx["bad"] = _bad_geometry(ctx)
    b = int(ctx["b"])
    dup = list(_exec("""SELECT feature_id FROM import_fault WHERE batch_id = :b
                        AND feature_id > :after AND resolved_at IS NULL
                        AND rule = 'duplicate_parcel_code'""", **ctx).scalars())
    ctx = {**ctx, "bad": ctx["bad"] + dup}
    # The batch's own spatial index, built once its rows are loaded (faster than maintaining
    # one index row by row during COPY); a literal predicate so the planner can use it.
    _exec(f"SELECT staging_batch_index({b})")  # the owner builds it (the app's role owns nothing)
    # The area only of the pairs whose interiors meet: overlap_area_m2 is a SQL function with
    # the default cost (100), ST_Relate costs 10000, so in one WHERE the planner ran the area
    # (an intersection, a transformation) first, for every pair of neighbours whose boxes
    # touch — 4× the raw pipeline's step (issue 18).  The fence (OFFSET 0) keeps the order.
    pairs = _exec(f"""
        SELECT q.* FROM (
          SELECT p.a, p.b, p.ca, p.cb, overlap_area_m2(p.ga, p.gb, ST_SRID(p.ga)) AS area
          FROM (SELECT a.id AS a, b.id AS b, a.code AS ca, b.code AS cb, a.geom AS ga,
                       b.geom AS gb
                FROM import_feature a JOIN import_feature b
                  ON a.geom && b.geom AND (a.id + 0) < (b.id + 0)
                WHERE a.batch_id = {b} AND b.batch_id = {b} AND {_pending('a')}
                  AND b.status = 'valid' AND b.id > :after
                  AND NOT (a.id = ANY(:bad)) AND NOT (b.id = ANY(:bad))
                  AND ST_Relate(a.geom, b.geom, '2********')
                OFFSET 0) p
          OFFSET 0) q
        WHERE q.area > :tol""", **ctx).all()
    if not pairs:
        return
    degree = defaultdict(int)
    for p in pairs:
        degree[p.a] += 1
        degree[p.b] += 1
    fit = dict(_exec(f"""
        SELECT f.id, coalesce(sum(ST_Length(ST_Intersection(ST_Boundary(f.geom),
                                                            ST_Boundary(n.geom)))), 0)
                     / nullif(ST_Perimeter(f.geom), 0)
        FROM import_feature f JOIN import_feature n ON n.batch_id = {b}
          AND n.id <> f.id AND n.geom && f.geom AND NOT (n.id = ANY(:bad))
        WHERE f.id = ANY(:ids) GROUP BY f.id""", ids=list(degree), bad=ctx["bad"]).all())
    blamed: dict[int, list] = defaultdict(list)
    for p in pairs:
        key_a = (-degree[p.a], fit.get(p.a) or 0)
        key_b = (-degree[p.b], fit.get(p.b) or 0)
        culprit, other, other_code = (p.a, p.b, p.cb) if key_a <= key_b else (p.b, p.a, p.ca)
        blamed[culprit].append((other_code, p.area, other))
    codes = dict(_exec("SELECT id, code FROM import_feature WHERE id = ANY(:ids)",
                       ids=list(blamed)).all())
    for fid, hits in blamed.items():
        detail = "overlaps " + ", ".join(f"{c} by {a:.2f} m²" for c, a, _ in hits)
        _exec("""
            INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
            SELECT :b, :f, 'overlap', :code, :detail,
                   ST_Transform(ST_PointOnSurface(ST_Intersection(a.geom, o.geom)), 4490)
            FROM import_feature a, import_feature o WHERE a.id = :f AND o.id = :o""",
              b=ctx["b"], f=fid, code=codes[fid], detail=detail, o=hits[0][2])


def _register_overlaps(ctx):
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
        SELECT x.batch_id, x.id, 'overlap_register', x.code,
               'overlaps registered parcel ' || x.other || ' by ' || round(x.area::numeric, 2)
               || ' m²', ST_Transform(ST_PointOnSurface(x.geom), 4490)
        FROM (SELECT f.batch_id, f.id, f.code, f.geom, p.code AS other,
                     overlap_area_m2(f.geom_stored, p.geom, ST_SRID(f.geom)) AS area
              FROM import_feature f
              JOIN parcel p ON p.end_lifespan IS NULL AND p.geom && f.geom_stored
              WHERE {_pending()} AND NOT (f.id = ANY(:bad))) x
        WHERE x.area > :tol""", **ctx)


def _households(ctx):
    # CBDKXX rows naming a household absent from CBF.
    _exec("""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'unknown_household', r.attrs->>'DKBM',
               'CBDKXX row names household ' || (r.attrs->>'CBFBM') || ', which is not in CBF'
        FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBDKXX'
          AND r.status = 'valid' AND r.id > :after_r
          AND NOT EXISTS (SELECT 1 FROM import_record h WHERE h.batch_id = r.batch_id
                          AND h.tbl = 'CBF' AND h.status <> 'superseded'
                          AND h.attrs->>'CBFBM' = r.attrs->>'CBFBM')
          AND NOT EXISTS (SELECT 1 FROM household h WHERE h.cbfbm = r.attrs->>'CBFBM')""", **ctx)
    # CBDKXX parcels with no geometry (unless a duplicate-coded feature explains them); when a
    # feature with a malformed code is the likely same parcel, the fault is linked to it.
    missing = _exec("""
        SELECT r.id, r.attrs->>'DKBM' AS code, r.attrs->>'CBFBM' AS hh, import_num(r.attrs->>'HTMJ') AS a
        FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBDKXX'
          AND r.status = 'valid' AND r.id > :after_r
          AND EXISTS (SELECT 1 FROM import_feature f WHERE f.batch_id = r.batch_id AND f.layer = 'DK')
          AND NOT EXISTS (SELECT 1 FROM import_feature f WHERE f.batch_id = r.batch_id
                          AND f.layer = 'DK' AND f.code = r.attrs->>'DKBM')
          AND NOT EXISTS (SELECT 1 FROM parcel p WHERE p.code = r.attrs->>'DKBM')
          AND NOT (r.attrs->>'DKBM' = ANY(:explained))""",
                    b=ctx["b"], after_r=ctx["after_r"], explained=sorted(ctx["explained"])).all()
    if missing:
        malformed = _exec("""
            SELECT x.id AS fault_id, f.code, ST_Area(f.geom) AS area FROM import_fault x
            JOIN import_feature f ON f.id = x.feature_id
            WHERE x.batch_id = :b AND x.rule = 'bad_code' AND x.resolved_at IS NULL
              AND f.layer = 'DK' AND f.status <> 'superseded'""", b=ctx["b"]).all()
        used = set()
        for r in missing:
            cause = _likely_same(r, malformed, used)
            detail = (f"listed in CBDKXX for household {r.hh} but absent from the DK layer")
            if cause:
                used.add(cause.fault_id)
                detail += f"; probably the feature with the malformed code {cause.code}"
            _exec("""INSERT INTO import_fault (batch_id, record_id, rule, code, detail, cause_id)
                     VALUES (:b, :r, 'missing_geometry', :c, :d, :cause)""",
                  b=ctx["b"], r=r.id, c=r.code, d=detail,
                  cause=cause.fault_id if cause else None)
    # Issuing-party codes: 14 digits (county 6, township 3, village 3, group 2).
    _exec("""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'bad_code', left(r.attrs->>'FBFBM', 40),
               'FBFBM must be 14 digits: county 6, township 3, village 3, group 2 (NY/T 2539-2016)'
        FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'FBF'
          AND r.status = 'valid' AND r.id > :after_r
          AND coalesce(r.attrs->>'FBFBM', '') !~ '^[0-9]{14}$'""", **ctx)
    # Household codes: 18 digits, within their issuing party, sequence in range of their type.
    _exec("""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'bad_code', r.attrs->>'CBFBM',
               'CBFBM must be FBFBM + a sequence in the range of its type (NY/T 2539-2016)'
        FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBF'
          AND r.status = 'valid' AND r.id > :after_r
          AND NOT (
          coalesce(r.attrs->>'CBFBM', '') ~ '^[0-9]{18}$' AND ("""
          + cbfbm_sequence_sql("(r.attrs->>'CBFBM')", "(r.attrs->>'CBFLX')") + "))", **ctx)


def _likely_same(row, malformed, used):
    """The malformed-code feature that is most likely the parcel a CBDKXX row lists: its code
    differs in at most two characters (or only by non-digits), or it is the only candidate of
    the same issuing party whose area fits the contract area within 2 %."""
    code = row.code or ""
    best = None
    for m in malformed:
        if m.fault_id in used or not m.code:
            continue
        digits = "".join(ch for ch in m.code if ch.isdigit())
        close = digits == code or (len(m.code) == len(code) and sum(
            a != b for a, b in zip(m.code, code, strict=True)) <= 2)
        fits = (row.a and m.area and m.code[:14] == code[:14]
                and abs(m.area - row.a) <= 0.02 * row.a)
        if close:
            return m
        if fits and best is None:
            best = m
    return best


def _homesteads(ctx):
    """One household, one homestead: the first homestead stays, each further one is at fault."""
    _exec("""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
        SELECT :b, x.id, 'two_homesteads', x.hh,
               'household holds ' || x.n || ' homestead parcels: ' || x.codes,
               ST_Transform(ST_PointOnSurface(x.geom), 4490)
        FROM (SELECT f.id, f.geom, f.attrs->>'CBFBM' AS hh,
                     row_number() OVER w AS k, count(*) OVER (PARTITION BY f.attrs->>'CBFBM') AS n,
                     string_agg(f.code, ', ') OVER (PARTITION BY f.attrs->>'CBFBM') AS codes
              FROM import_feature f WHERE f.batch_id = :b AND f.layer = 'ZJD'
                AND f.status = 'valid' AND f.id > :after AND coalesce(f.attrs->>'CBFBM', '') <> ''
              WINDOW w AS (PARTITION BY f.attrs->>'CBFBM' ORDER BY f.fid)) x
        WHERE x.n > 1 AND x.k > 1""", **ctx)
    _exec("""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, location)
        SELECT :b, f.id, 'two_homesteads', f.attrs->>'CBFBM',
               'household already holds registered homestead ' || p.code,
               ST_Transform(ST_PointOnSurface(f.geom), 4490)
        FROM import_feature f JOIN parcel p ON p.kind = 'homestead' AND p.end_lifespan IS NULL
          AND p.household_code = f.attrs->>'CBFBM'
        WHERE f.batch_id = :b AND f.layer = 'ZJD' AND f.status = 'valid' AND f.id > :after""", **ctx)


def _spec_values() -> tuple[str, dict]:
    """The FIELDS table as a SQL VALUES list (bound parameters) for set-wise checks."""
    rows, params = [], {}
    for tbl, fields in FIELDS.items():
        for name, kind, maxlen, req in fields:
            i = len(rows)
            codes = list(LISTS[kind.split(":")[1]]) if kind.startswith("code:") else []
            pattern = f"^[0-9]{{{kind.split(':')[1]}}}$" if kind.startswith("digits:") else ""
            rows.append(f"(:t{i}, :f{i}, :k{i}, :m{i}, :r{i}, :c{i}, :p{i})")
            params.update({f"t{i}": tbl, f"f{i}": name, f"k{i}": kind.split(":")[0],
                           f"m{i}": maxlen, f"r{i}": req, f"c{i}": codes, f"p{i}": pattern})
    return ("(VALUES " + ", ".join(rows) + ") AS s(tbl, field, kind, maxlen, req, codes, pat)",
            params)


# What a required field may not consist of only: blanks of any width (btrim alone takes only
# U+0020: a name of ideographic spaces U+3000 is empty all the same).
BLANKS_SQL = ("E' \\t\\n\\r\\u000b\\u000c\\u00a0\\u1680\\u2000\\u2001\\u2002\\u2003"
              "\\u2004\\u2005\\u2006\\u2007\\u2008\\u2009\\u200a\\u2028\\u2029\\u202f"
              "\\u205f\\u3000\\ufeff'")

FIELD_RULE_SQL = """CASE
  WHEN v.v IS NULL THEN CASE WHEN s.req THEN 'missing_value' END
  WHEN length(v.v) > s.maxlen THEN 'too_long'
  WHEN s.kind = 'code' AND NOT (v.v = ANY(CAST(s.codes AS text[]))) THEN 'code_list'
  WHEN s.kind IN ('date', 'pastdate') AND import_date(v.v) IS NULL THEN 'bad_date'
  WHEN s.kind = 'pastdate' AND import_date(v.v) > current_date THEN 'bad_date'
  WHEN import_date(v.v) < DATE '1880-01-01' AND s.kind IN ('date', 'pastdate') THEN 'bad_date'
  WHEN s.kind = 'number' AND (v.v !~ '^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$'
                              OR import_num(v.v) IS NULL) THEN 'bad_number'
  WHEN s.kind = 'number' AND import_num(v.v) < 0 THEN 'bad_number'
  WHEN s.kind = 'int' AND v.v !~ '^[0-9]{1,9}(\\.0+)?$' THEN 'bad_number'
  WHEN s.kind = 'digits' AND v.v !~ s.pat THEN 'bad_format'
END"""
FIELD_DETAIL_SQL = """CASE x.rule
  WHEN 'missing_value' THEN s.tbl || '.' || s.field || ' is required and empty'
  WHEN 'too_long' THEN s.tbl || '.' || s.field || ' has ' || length(v.v) ||
       ' characters; at most ' || s.maxlen
  WHEN 'code_list' THEN s.field || ' = ' || v.v || ' is not in the code list'
  WHEN 'bad_date' THEN s.tbl || '.' || s.field || ' = ' || v.v || CASE s.kind
       WHEN 'pastdate' THEN ' is not a real past date' ELSE ' is not a real date' END
  WHEN 'bad_number' THEN s.tbl || '.' || s.field || ' = ' || v.v || ' is not a valid number'
  ELSE s.tbl || '.' || s.field || ' = ' || v.v || ' must be ' || length(s.pat) - 9 ||
       ' digits' END"""


def _suspect_sql(tbl: str, alias: str) -> str:
    """One cheap predicate over a row's fields, true when any field may be at fault (constants
    inlined, JSON numbers not parsed again): a single scan finds the few rows the detailed
    check then names fault by fault."""
    parts = []
    for name, kind, maxlen, req in FIELDS[tbl]:
        x = f"{alias}.attrs->>'{name}'"
        k = kind.split(":")[0]
        parts.append(f"length({x}) > {int(maxlen)}")
        if req:
            parts.append(f"coalesce(btrim({x}, {BLANKS_SQL}), '') = ''")
        if k == "code":
            codes = ", ".join("'" + c + "'" for c in LISTS[kind.split(":")[1]])
            parts.append(f"(btrim({x}) <> '' AND btrim({x}) NOT IN ({codes}))")
        elif k in ("date", "pastdate"):
            # A superset of the date faults: what is not certainly fine is a suspect.
            parts.append(f"(btrim({x}) <> '' AND NOT {sure_date_sql(x, k == 'pastdate')})")
        elif k in ("number", "int"):
            parts.append(f"(jsonb_typeof({alias}.attrs->'{name}') NOT IN ('number', 'null') "
                         f"AND btrim({x}) <> '' AND (btrim({x}) LIKE '-%' OR btrim({x}) !~ "
                         f"'^[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$' OR btrim({x}) ~ "
                         f"'[eE][-+]?[0-9]{{3}}'))"
                         if k == "number" else f"(btrim({x}) <> '' AND btrim({x}) !~ "
                                               f"'^[0-9]{{1,9}}(\\.0+)?$')")
            if k == "number":
                parts.append(f"(jsonb_typeof({alias}.attrs->'{name}') = 'number' AND "
                             f"({alias}.attrs->>'{name}')::numeric < 0)")
        elif k == "digits":
            n = int(kind.split(":")[1])
            parts.append(f"(btrim({x}) <> '' AND btrim({x}) !~ '^[0-9]{{{n}}}$')")
    return "(" + " OR ".join(parts) + ")"


def _fields(ctx):
    """Every field of every staged row and feature against the data dictionary: one scan per
    table with an inlined predicate finds the suspects, then one statement (a join with the
    dictionary) names each fault; no per-row Python."""
    spec, params = _spec_values()
    for tbl in [t for t in FIELDS if t not in ("DK", "ZJD")]:
        ids = _exec(f"""SELECT r.id FROM import_record r WHERE r.batch_id = :b
                        AND r.tbl = '{tbl}' AND r.status = 'valid' AND r.id > :after_r
                        AND {_suspect_sql(tbl, 'r')}""", **ctx).scalars().all()
        if ids:
            _exec(f"""
                INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
                SELECT r.batch_id, r.id, x.rule, left(coalesce(r.attrs->>(CASE r.tbl
                         WHEN 'CBHT' THEN 'CBHTBM' WHEN 'CBDKXX' THEN 'DKBM'
                         WHEN 'FBF' THEN 'FBFBM' WHEN 'LZHT' THEN 'LZHTBM'
                         WHEN 'CBJYQZ' THEN 'CBJYQZBM' ELSE 'CBFBM' END), '#' || r.rownum), 40),
                       'row ' || r.rownum || ': ' || {FIELD_DETAIL_SQL}
                FROM import_record r JOIN {spec} ON s.tbl = r.tbl
                CROSS JOIN LATERAL (SELECT CASE WHEN btrim(r.attrs->>s.field, {BLANKS_SQL}) <> ''
                                    THEN btrim(r.attrs->>s.field) END AS v) v
                CROSS JOIN LATERAL (SELECT {FIELD_RULE_SQL} AS rule) x
                WHERE r.id = ANY(:ids) AND x.rule IS NOT NULL""", ids=ids, **params)
    for layer in ("DK", "ZJD"):
        ids = _exec(f"""SELECT f.id FROM import_feature f WHERE {_pending()}
                        AND f.layer = '{layer}' AND {_suspect_sql(layer, 'f')}""",
                    **ctx).scalars().all()
        if ids:
            _exec(f"""
                INSERT INTO import_fault (batch_id, feature_id, rule, code, detail)
                SELECT f.batch_id, f.id, x.rule, f.code, {FIELD_DETAIL_SQL}
                FROM import_feature f JOIN {spec} ON s.tbl = f.layer
                CROSS JOIN LATERAL (SELECT CASE WHEN btrim(f.attrs->>s.field, {BLANKS_SQL}) <> ''
                                    THEN btrim(f.attrs->>s.field) END AS v) v
                CROSS JOIN LATERAL (SELECT {FIELD_RULE_SQL} AS rule) x
                WHERE f.id = ANY(:ids) AND x.rule IS NOT NULL""", ids=ids, **params)
    # The register keeps persons by resident ID number: a member with another document waits.
    _exec("""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT r.batch_id, r.id, 'no_resident_id', r.attrs->>'CBFBM',
               'member ' || coalesce(r.attrs->>'CYXM', '?') || ' has document type ' ||
               (r.attrs->>'CYZJLX') || ', not a resident ID card (1); register by hand'
        FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBF_JTCY'
          AND r.status = 'valid' AND r.id > :after_r
          AND coalesce(nullif(r.attrs->>'CYZJLX', ''), '1') <> '1'
          AND r.attrs->>'CYZJLX' = ANY(:zjlx)""", **ctx, zjlx=list(ZJLX))


ID_RULES = {"length": "id_length", "region": "id_region", "birth_date": "id_birth_date",
            "check_digit": "bad_id_checksum"}


def _ids(ctx):
    """Resident ID numbers of household heads (CBF), members (CBF_JTCY) and issuing-party
    leaders (FBF): length, region, birth date and check digit, each named for what is wrong;
    one fault per household and number, whichever table carries it (the member row first)."""
    _exec(f"""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT DISTINCT ON (x.hh, x.num) :b, x.rid,
               CASE x.fault WHEN 'length' THEN 'id_length' WHEN 'region' THEN 'id_region'
                    WHEN 'birth_date' THEN 'id_birth_date' ELSE 'bad_id_checksum' END,
               left(x.hh, 40),
               x.who || ' ' || coalesce(x.name, '?') || ' id ' || left({_masked('x.num')}, 40) || CASE x.fault
                 WHEN 'length' THEN ': must be 17 digits and a check character (0-9 or X)'
                 WHEN 'region' THEN ': ' || substr(x.num, 1, 6) || ' is not a region code'
                 WHEN 'birth_date' THEN ': characters 7-14 (the birth date) are not a real '
                                        || 'past date'
                 ELSE ': check digit should be ' || substr('10X98765432', (
                   (SELECT sum(substr(x.num, i, 1)::int * (ARRAY[7,9,10,5,8,4,2,1,6,3,7,9,10,5,
                    8,4,2])[i]) FROM generate_series(1, 17) i)::int % 11) + 1, 1) END
        FROM (
          SELECT y.*, {id_fault_sql('y.unum')} AS fault FROM (SELECT z.*, upper(z.num) AS unum
          FROM (
          SELECT r.id AS rid, r.attrs->>'CBFBM' AS hh, btrim(r.attrs->>'CYZJHM') AS num,
                 r.attrs->>'CYXM' AS name, 'member' AS who, 1 AS pri
          FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBF_JTCY'
            AND r.status = 'valid' AND r.id > :after_r
            AND coalesce(nullif(r.attrs->>'CYZJLX', ''), '1') = '1'
          UNION ALL
          SELECT r.id, r.attrs->>'CBFBM', btrim(r.attrs->>'CBFZJHM'), r.attrs->>'CBFMC', 'head', 2
          FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBF'
            AND r.status = 'valid' AND r.id > :after_r
            AND coalesce(nullif(r.attrs->>'CBFZJLX', ''), '1') = '1'
          UNION ALL
          SELECT r.id, r.attrs->>'FBFBM', btrim(r.attrs->>'FZRZJHM'), r.attrs->>'FBFFZRXM',
                 'leader', 3
          FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'FBF'
            AND r.status = 'valid' AND r.id > :after_r
            AND coalesce(nullif(r.attrs->>'FZRZJLX', ''), '1') = '1') z
          -- a fence: each number taken out of its row once, not once per use above
          WHERE coalesce(z.num, '') <> '' OFFSET 0) y) x
        WHERE x.fault IS NOT NULL
        ORDER BY x.hh, x.num, x.pri""", **ctx)


def _masked(expr: str) -> str:
    """SQL for a resident ID number as pages show it (app.people.idnumber.mask): the region and
    the last two characters.  Fault details are read by auditors, exported as CSV and GeoJSON:
    they never carry a full number (the record itself is open to the bureau for correction)."""
    return (f"(CASE WHEN length({expr}) > 8 THEN left({expr}, 6) || repeat('*', length({expr})"
            f" - 8) || right({expr}, 2) ELSE repeat('*', length({expr})) END)")


PERSONAL_KEYS = {"CBF_JTCY"}  # keyed by the member's ID number


# A CBDKXX row's household is delivered (CBF) or registered.  The delivered side is an
# uncorrelated IN over the batch (:b), which PostgreSQL hashes once; the correlated EXISTS it
# replaces sat under an OR, so it ran as a subplan per row — a scan of the batch's CBF rows for
# every CBDKXX row: 43 s for 2,500 contract lines of a complete delivery (bench/, issue 18).
RESOLVES = """((r.attrs->>'CBFBM') IN (SELECT h.attrs->>'CBFBM' FROM import_record h
                    WHERE h.batch_id = :b AND h.tbl = 'CBF' AND h.status <> 'superseded'
                    AND h.attrs->>'CBFBM' IS NOT NULL)
                OR EXISTS (SELECT 1 FROM household h WHERE h.cbfbm = r.attrs->>'CBFBM'))"""
KEYS = {"FBF": ["FBFBM"], "CBF": ["CBFBM"], "CBF_JTCY": ["CYZJHM"], "CBHT": ["CBHTBM"],
        "LZHT": ["LZHTBM"], "CBJYQZ": ["CBJYQZBM"]}
# CBDKXX: a parcel listed for two different households is at fault (the same assignment
# repeated is not: it says nothing new).
# (the distinct pairs first, then the count per parcel: two hash aggregates, where
# count(DISTINCT …) sorted every contract line of a 1M delivery on disk)
SAME_PARCEL_TWO_HOUSEHOLDS = """
    SELECT x.k FROM (SELECT DISTINCT r.attrs->>'DKBM' AS k, r.attrs->>'CBFBM' AS h
                     FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBDKXX'
                       AND r.status <> 'superseded' AND coalesce(r.attrs->>'DKBM', '') <> ''
                       AND {resolves}) x
    GROUP BY x.k HAVING count(x.h) > 1"""


def key_sql(cols: list[str], alias: str = "r") -> str:
    """SQL for a table's key (KEYS) as one text, its columns joined by '|'; shared with the
    fair raw pipeline (bench/raw.py)."""
    return " || '|' || ".join(f"coalesce({alias}.attrs->>'{c}', '')" for c in cols)


def _keys(ctx):
    """Keys unique where the standard says so, in every table: every row carrying a shared
    key is at fault (which one is right is for staff to say), the first row as the cause."""
    for tbl, cols in KEYS.items():
        key = key_sql(cols)
        shown = _masked("x.k") if tbl in PERSONAL_KEYS else "x.k"
        _exec(f"""
            INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
            SELECT :b, x.id, 'duplicate_key', left({shown}, 40),
                   '{tbl}.{"+".join(cols)} = ' || {shown} || ' appears in ' || x.n || ' rows ('
                   || x.rows || ')'
            FROM (SELECT r.id, {key} AS k, count(*) OVER w AS n,
                         string_agg(r.rownum::text, ', ') OVER w AS rows
                  FROM import_record r WHERE r.batch_id = :b AND r.tbl = '{tbl}'
                    AND r.status <> 'superseded' AND nullif({key}, '') IS NOT NULL
                    -- a CBDKXX row naming an unknown household is that fault, not a duplicate
                    AND (r.tbl <> 'CBDKXX' OR {RESOLVES})
                  WINDOW w AS (PARTITION BY {key})) x
            WHERE x.n > 1 AND x.id > :after_r
              AND NOT EXISTS (SELECT 1 FROM import_fault o WHERE o.record_id = x.id
                              AND o.rule = 'duplicate_key' AND o.resolved_at IS NULL)""",
              **ctx)
    _exec(f"""
        WITH g AS ({SAME_PARCEL_TWO_HOUSEHOLDS.format(resolves=RESOLVES)}),
        -- every household each such parcel is listed for, in one pass over the contract
        -- lines (a subquery per fault scanned all of them again: 49 faults of a 1M delivery,
        -- 29 s, issue 18)
        hh AS (SELECT o.attrs->>'DKBM' AS k, string_agg(DISTINCT o.attrs->>'CBFBM', ', ') AS h
               FROM import_record o JOIN g ON g.k = o.attrs->>'DKBM'
               WHERE o.batch_id = :b AND o.tbl = 'CBDKXX' AND o.status <> 'superseded'
               GROUP BY 1)
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'duplicate_key', r.attrs->>'DKBM',
               'CBDKXX lists parcel ' || (r.attrs->>'DKBM') || ' for ' || hh.h
               || ': one parcel, one contract'
        FROM import_record r JOIN g ON g.k = r.attrs->>'DKBM' JOIN hh ON hh.k = g.k
        WHERE r.batch_id = :b AND r.tbl = 'CBDKXX' AND r.status <> 'superseded'
          AND r.id > :after_r AND {RESOLVES}
          AND NOT EXISTS (SELECT 1 FROM import_fault o WHERE o.record_id = r.id
                          AND o.rule = 'duplicate_key' AND o.resolved_at IS NULL)""", **ctx)
    # A household already in the register is not registered again by a delivery.
    _exec("""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'household_registered', r.attrs->>'CBFBM',
               'household ' || (r.attrs->>'CBFBM') || ' is already registered; a registered '
               'household changes through the register''s own operations'
        FROM import_record r JOIN household h ON h.cbfbm = r.attrs->>'CBFBM'
        WHERE r.batch_id = :b AND r.tbl = 'CBF' AND r.status = 'valid' AND r.id > :after_r""",
          **ctx)
    # A member already a current member of another registered household.
    _exec("""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT DISTINCT ON (r.id) :b, r.id, 'person_in_other_household', r.attrs->>'CBFBM',
               'member ' || coalesce(r.attrs->>'CYXM', '?') || ' is a current member of '
               'registered household ' || h.cbfbm
        FROM import_record r JOIN person p ON p.id_number = upper(btrim(r.attrs->>'CYZJHM'))
        JOIN household_member m ON m.person_id = p.id AND m.left_on IS NULL
        JOIN household h ON h.id = m.household_id AND h.cbfbm <> r.attrs->>'CBFBM'
        WHERE r.batch_id = :b AND r.tbl = 'CBF_JTCY' AND r.status = 'valid'
          AND r.id > :after_r""", **ctx)


def _references(ctx):
    """Every reference resolvable: members, contracts and homesteads to a household in CBF
    (or the register); households and contracts to an issuing party in FBF (or the register);
    CBDKXX rows to their contract in CBHT (when CBHT is delivered)."""
    hh = """(SELECT h.attrs->>'CBFBM' AS k FROM import_record h WHERE h.batch_id = :b
              AND h.tbl = 'CBF' AND h.status <> 'superseded' UNION SELECT cbfbm FROM household)"""
    fb = """(SELECT h.attrs->>'FBFBM' AS k FROM import_record h WHERE h.batch_id = :b
              AND h.tbl = 'FBF' AND h.status <> 'superseded' UNION SELECT fbfbm FROM collective)"""
    for tbl, col, target, rule in (("CBF_JTCY", "CBFBM", hh, "unknown_household"),
                                   ("CBHT", "CBFBM", hh, "unknown_household"),
                                   ("CBHT", "FBFBM", fb, "unknown_issuing_party")):
        _exec(f"""
            INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
            SELECT :b, r.id, '{rule}', left(r.attrs->>'{col}', 40),
                   '{tbl} row ' || r.rownum || ' names {col} ' || (r.attrs->>'{col}') ||
                   ', which is neither delivered nor registered'
            FROM import_record r LEFT JOIN {target} t ON t.k = r.attrs->>'{col}'
            WHERE r.batch_id = :b AND r.tbl = '{tbl}' AND r.status = 'valid'
              AND r.id > :after_r AND coalesce(r.attrs->>'{col}', '') ~ '^[0-9]+$'
              AND t.k IS NULL""", **ctx)
    _exec(f"""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'unknown_issuing_party', r.attrs->>'CBFBM',
               'household ' || (r.attrs->>'CBFBM') || ': issuing party ' ||
               substr(r.attrs->>'CBFBM', 1, 14) || ' is neither in FBF nor registered'
        FROM import_record r LEFT JOIN {fb} t ON t.k = substr(r.attrs->>'CBFBM', 1, 14)
        WHERE r.batch_id = :b AND r.tbl = 'CBF' AND r.status = 'valid' AND r.id > :after_r
          AND coalesce(r.attrs->>'CBFBM', '') ~ '^[0-9]{{18}}$' AND t.k IS NULL""", **ctx)
    _exec(f"""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'unknown_contract', r.attrs->>'DKBM',
               'CBDKXX row names contract ' || (r.attrs->>'CBHTBM') || ', which is not in CBHT'
        FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBDKXX' AND r.status = 'valid'
          AND r.id > :after_r AND coalesce(r.attrs->>'CBHTBM', '') <> '' AND {RESOLVES}
          AND EXISTS (SELECT 1 FROM import_record c WHERE c.batch_id = :b AND c.tbl = 'CBHT')
          AND NOT EXISTS (SELECT 1 FROM import_record c WHERE c.batch_id = :b AND c.tbl = 'CBHT'
                          AND c.status <> 'superseded'
                          AND c.attrs->>'CBHTBM' = r.attrs->>'CBHTBM')""", **ctx)
    # Homesteads naming a household.
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail)
        SELECT f.batch_id, f.id, 'unknown_household', f.code,
               'homestead names household ' || (f.attrs->>'CBFBM') || ', which is neither '
               'delivered nor registered'
        FROM import_feature f LEFT JOIN {hh} t ON t.k = f.attrs->>'CBFBM'
        WHERE {_pending()} AND f.layer = 'ZJD'
          AND coalesce(f.attrs->>'CBFBM', '') ~ '^[0-9]{{18}}$' AND t.k IS NULL
          AND EXISTS (SELECT 1 FROM import_record c WHERE c.batch_id = :b AND c.tbl = 'CBF')""",
          **ctx)


def _terms(ctx):
    """Contract terms: start ≤ end, and at most 70 years (30, extended by another 30 — 农村土地
    承包法 art 21 — and grassland/forest up to 70); a member's CSRQ equal to the ID's date."""
    _exec(f"""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'bad_term', r.attrs->>'CBHTBM',
               'contract term ' || (r.attrs->>'CBQXQ') || ' – ' || (r.attrs->>'CBQXZ') ||
               CASE WHEN t.z < t.q THEN ' ends before it starts'
                    ELSE ' is longer than 70 years' END
        FROM import_record r
        CROSS JOIN LATERAL (SELECT {date_sql("(r.attrs->>'CBQXQ')")} AS q,
                                   {date_sql("(r.attrs->>'CBQXZ')")} AS z) t
        WHERE r.batch_id = :b AND r.tbl = 'CBHT' AND r.status = 'valid' AND r.id > :after_r
          AND t.q IS NOT NULL AND t.z IS NOT NULL
          AND (t.z < t.q OR t.z > t.q + interval '70 years')""", **ctx)
    _exec("""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'bad_term', r.attrs->>'LZHTBM',
               'transfer term ' || (r.attrs->>'LZQXKSRQ') || ' – ' || (r.attrs->>'LZQXJSRQ') ||
               ' ends before it starts'
        FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'LZHT' AND r.status = 'valid'
          AND r.id > :after_r
          AND import_date(r.attrs->>'LZQXJSRQ') < import_date(r.attrs->>'LZQXKSRQ')""", **ctx)
    num = "upper(btrim(r.attrs->>'CYZJHM'))"
    _exec(f"""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'inconsistent_birth_date', r.attrs->>'CBFBM',
               'member ' || coalesce(r.attrs->>'CYXM', '?') || ': CSRQ ' || (r.attrs->>'CSRQ')
               || ' differs from the birth date in the ID number'
        FROM import_record r WHERE r.batch_id = :b AND r.tbl = 'CBF_JTCY'
          AND r.status = 'valid' AND r.id > :after_r
          AND {date_sql("(r.attrs->>'CSRQ')")} IS NOT NULL
          AND {id_fault_sql(num)} IS NULL
          AND {date_sql(f"substr({num}, 7, 8)")}
              <> {date_sql("(r.attrs->>'CSRQ')")}
          AND NOT EXISTS (SELECT 1 FROM import_fault o WHERE o.record_id = r.id
                          AND o.resolved_at IS NULL)""", **ctx)


def _reassignments(ctx):
    """A delivery may not move a registered parcel to another household: reported, and
    audited by acceptance's caller (see operations.validate)."""
    ctx["reassigned"] = _exec("""
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail)
        SELECT :b, r.id, 'parcel_reassigned', r.attrs->>'DKBM',
               'registered parcel ' || p.code || ' belongs to household ' || p.household_code
               || '; the delivery assigns it to ' || (r.attrs->>'CBFBM') ||
               ' (a transfer or swap is registered by its own procedure, 农村土地承包法 art 33-35)'
        FROM import_record r JOIN parcel p ON p.code = r.attrs->>'DKBM' AND p.end_lifespan IS NULL
        WHERE r.batch_id = :b AND r.tbl = 'CBDKXX' AND r.status = 'valid' AND r.id > :after_r
          AND p.household_code IS NOT NULL AND p.household_code <> r.attrs->>'CBFBM'
        RETURNING id, code, detail""", **ctx).all()


def _knock_ons(ctx):
    """What depends on a faulty household waits with it, each knock-on linked to its cause:
    a CBF row at fault → its members, contracts, CBDKXX rows, their parcels and homesteads;
    a parcel listed for two households → the parcel."""
    _exec(f"""
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, cause_id)
        SELECT DISTINCT ON (f.id) :b, f.id, 'depends_on_fault', f.code,
               'parcel waits: CBDKXX lists it for more than one household', x.id
        FROM import_feature f JOIN import_record r ON r.batch_id = f.batch_id
          AND r.tbl = 'CBDKXX' AND r.attrs->>'DKBM' = f.code AND r.status <> 'superseded'
        JOIN import_fault x ON x.record_id = r.id AND x.rule = 'duplicate_key'
          AND x.resolved_at IS NULL
        WHERE {_pending()} AND f.layer = 'DK' AND NOT EXISTS (
            SELECT 1 FROM import_fault o WHERE o.feature_id = f.id AND o.resolved_at IS NULL)
        ORDER BY f.id, x.id""", **ctx)
    _exec("""
        WITH cause AS (
          SELECT DISTINCT ON (r.attrs->>'CBFBM') r.attrs->>'CBFBM' AS hh, x.id AS fault_id,
                 x.rule
          FROM import_fault x JOIN import_record r ON r.id = x.record_id
          WHERE x.batch_id = :b AND x.resolved_at IS NULL AND r.tbl = 'CBF'
            AND r.status <> 'superseded' AND x.cause_id IS NULL
            AND x.rule <> 'household_registered'
          ORDER BY r.attrs->>'CBFBM', x.id)
        INSERT INTO import_fault (batch_id, record_id, rule, code, detail, cause_id)
        SELECT :b, r.id, 'depends_on_fault', r.attrs->>'CBFBM',
               r.tbl || ' row ' || r.rownum || ' waits for household ' || c.hh || ' (' ||
               c.rule || ')', c.fault_id
        FROM import_record r JOIN cause c ON c.hh = r.attrs->>'CBFBM'
        WHERE r.batch_id = :b AND r.tbl IN ('CBF_JTCY', 'CBHT', 'CBDKXX')
          AND r.status = 'valid' AND NOT EXISTS (
            SELECT 1 FROM import_fault o WHERE o.record_id = r.id AND o.resolved_at IS NULL)""",
          **ctx)
    _exec(f"""
        WITH cause AS (
          SELECT DISTINCT ON (r.attrs->>'CBFBM') r.attrs->>'CBFBM' AS hh, x.id AS fault_id,
                 x.rule
          FROM import_fault x JOIN import_record r ON r.id = x.record_id
          WHERE x.batch_id = :b AND x.resolved_at IS NULL AND r.tbl = 'CBF'
            AND r.status <> 'superseded' AND x.cause_id IS NULL
            AND x.rule <> 'household_registered'
          ORDER BY r.attrs->>'CBFBM', x.id)
        INSERT INTO import_fault (batch_id, feature_id, rule, code, detail, cause_id)
        SELECT :b, f.id, 'depends_on_fault', f.code,
               'parcel waits for household ' || c.hh || ' (' || c.rule || ')', c.fault_id
        FROM import_feature f
        JOIN cause c ON c.hh = CASE WHEN f.layer = 'ZJD' THEN f.attrs->>'CBFBM' ELSE (
            SELECT r.attrs->>'CBFBM' FROM import_record r WHERE r.batch_id = :b
              AND r.tbl = 'CBDKXX' AND r.status <> 'superseded' AND r.attrs->>'DKBM' = f.code
            LIMIT 1) END
        WHERE {_pending()} AND NOT EXISTS (
            SELECT 1 FROM import_fault o WHERE o.feature_id = f.id AND o.resolved_at IS NULL)""",
          **ctx)
