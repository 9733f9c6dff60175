"""Each test runs in a transaction that is rolled back: a row written in one is gone in the next.

Self-contained (it once relied on test_a running before test_b): one test opens the `dbs`
session twice, the way two tests in a row would."""
from sqlalchemy import create_engine, func, select

from app.divisions.models import Division
from tests.conftest import _rolled_back_session

CODE = "140404999"


def _count(session) -> int:
    return session.scalar(select(func.count()).select_from(Division).where(Division.code == CODE))


def test_a_commit_inside_a_test_is_gone_in_the_next(app):
    outside = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        first = _rolled_back_session(app, None)
        dbs = next(first)
        assert _count(dbs) == 0
        dbs.add(Division(code=CODE, name="临时乡", level="township", parent_code="140404"))
        dbs.commit()  # even a commit inside the test only releases a savepoint
        assert dbs.get(Division, CODE) is not None
        with outside.connect() as other:  # never committed for anyone else
            assert other.scalar(select(func.count()).select_from(Division.__table__)
                                .where(Division.code == CODE)) == 0
        first.close()  # the test ends: its transaction is rolled back

        second = _rolled_back_session(app, None)
        assert _count(next(second)) == 0
        second.close()
    finally:
        outside.dispose()
