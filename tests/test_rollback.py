"""Each test runs in a transaction that is rolled back: a row written in one is gone in the next."""
from sqlalchemy import select

from app.divisions.models import Division

CODE = "140404999"


def test_a_writes(dbs):
    dbs.add(Division(code=CODE, name="临时乡", level="township", parent_code="140404"))
    dbs.commit()  # even a commit inside the test only releases a savepoint
    assert dbs.get(Division, CODE) is not None


def test_b_does_not_see_it(dbs):
    assert dbs.scalar(select(Division).where(Division.code == CODE)) is None
