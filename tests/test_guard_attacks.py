"""Fresh attacks on the rights guard (issue 11), by a pair of eyes that did not build it.

Each test is an attack that got through before the fix next to it: the expectation follows from
the input (a text that ties settling to giving up a right is refused; a proof the database reads
must be the real record, not one the app's own session made up)."""
import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.test_guard_adversarial_db import contract  # noqa: F401  (fixture)

TODAY = dt.date.today()


# ------------------------------------------------------------ the database: shadowing tables

@pytest.mark.parametrize("table, ground, cols", [
    ("court_judgment", "court_judgment",
     "id bigint, right_uid bigint, judged_on date"),
    ("expropriation", "expropriation",
     "id bigint, right_uid bigint, compensation numeric"),
])
def test_a_temp_table_cannot_stand_in_for_the_proof_record(dbs, contract, table, ground, cols):  # noqa: F811
    """The app role may create temporary tables; one named like a proof table came first in the
    trigger functions' search path, so a made-up judgment or expropriation in the session's own
    pg_temp ended a right "lawfully".  The guard's functions now read only the real tables."""
    _, r, _ = contract
    with pytest.raises(DBAPIError, match="right.end.evidence"):
        with dbs.begin_nested():
            dbs.execute(text(f"CREATE TEMP TABLE {table} ({cols}) ON COMMIT DROP"))
            vals = ("99999, :u, current_date" if table == "court_judgment"
                    else "99999, :u, 1000")
            dbs.execute(text(f"INSERT INTO pg_temp.{table} VALUES ({vals})"), {"u": r.uid})
            dbs.execute(text("UPDATE land_right SET status = 'ended', end_ground = :g, "
                             "ended_on = current_date, end_record_id = 99999 WHERE id = :i"),
                        {"g": ground, "i": r.id})
    dbs.expire_all()
    assert dbs.execute(text("SELECT status FROM land_right WHERE id = :i"),
                       {"i": r.id}).scalar() == "current"


def test_a_temp_household_cannot_make_the_holder_extinct(dbs, contract):  # noqa: F811
    hh, r, _ = contract
    with pytest.raises(DBAPIError, match="right.end.evidence"):
        with dbs.begin_nested():
            dbs.execute(text("CREATE TEMP TABLE household (cbfbm text, ended_on date, "
                             "end_ground text) ON COMMIT DROP"))
            dbs.execute(text("INSERT INTO pg_temp.household VALUES (:c, current_date, "
                             "'all_members_left')"), {"c": hh.cbfbm})
            dbs.execute(text("UPDATE land_right SET status = 'ended', end_ground = "
                             "'holder_extinct', ended_on = current_date WHERE id = :i"),
                        {"i": r.id})
