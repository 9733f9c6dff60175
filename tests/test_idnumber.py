import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.errors import DomainError
from app.people import idnumber
from app.people import operations as ops


def test_accepts_the_standard_example_and_derives_birth_and_sex():
    info = idnumber.parse("11010519491231002X")
    assert info.birth_date == dt.date(1949, 12, 31)
    assert info.sex == "2"  # 17th digit 2 is even: female
    assert info.division == "110105"


def test_lowercase_x_is_normalised():
    assert idnumber.parse("11010519491231002x").number == "11010519491231002X"


@pytest.mark.parametrize("number,reason", [
    ("110105194912310021", "check_digit"),
    ("11010519491331002X", "birth_date"),
    ("1101051949123100", "shape"),
    ("11010519491231002Y", "shape"),
])
def test_refuses_bad_numbers_naming_the_fault(number, reason):
    with pytest.raises(idnumber.IdNumberError) as e:
        idnumber.parse(number)
    assert e.value.reason == reason


def test_wrong_check_digit_message_names_expected_digit_and_standard(dbs):
    with pytest.raises(DomainError) as e:
        ops.parse_id("110105194912310021")
    assert e.value.code == "person.id_number.check_digit"
    en = e.value.message("en")
    assert "X" in en and "check digit" in en
    assert "GB 11643" in e.value.source("en")
    assert "校验码" in e.value.message("zh")


def test_mask_keeps_region_and_last_two():
    # Region and the last two characters; the birth date and two sequence digits hidden (the
    # old mask kept the whole sequence, and the birth date shown beside it completed the number).
    assert idnumber.mask("11010519491231002X") == "110105**********2X"
    assert idnumber.mask_phone("13812345678") == "138****5678"


def test_database_refuses_a_wrong_check_digit_too(dbs):
    with pytest.raises(IntegrityError) as e:
        dbs.execute(text("INSERT INTO person (id_number, name, sex, birth_date) "
                         "VALUES ('110105194912310021', 'x', '2', '1949-12-31')"))
        dbs.flush()
    assert "id_number_gb11643" in str(e.value)


def test_database_function_agrees_with_python(dbs):
    for n in ("11010519491231002X", "110105194912310021", "11010519490230002X"):
        assert dbs.execute(text("SELECT gb11643_valid(:n)"), {"n": n}).scalar() == \
            idnumber.is_valid(n), n


def test_register_person_derives_fields_and_audits(dbs):
    from app.audit.models import AuditLog

    p = ops.register_person(None, "11010519491231002X", "测试人", "140404")
    assert p.sex == "2" and p.birth_date == dt.date(1949, 12, 31)
    entry = dbs.query(AuditLog).filter_by(action="person.register", object_id=str(p.id)).one()
    assert entry.changes["id_number"] == "110105**********2X"  # never the full number
    with pytest.raises(DomainError) as e:
        ops.register_person(None, "11010519491231002X", "重复", "140404")
    assert e.value.code == "person.id_number.duplicate"
