import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditLog
from app.collectives import operations as ops
from app.collectives.models import Collective, Membership
from app.errors import DomainError

FORBIDDEN = ["settled_in_town", "study", "military_service", "migrant_work", "business",
             "divorce", "widowhood", "imprisonment", "married_out"]


def _active(dbs) -> Membership:
    return dbs.scalars(select(Membership).where(Membership.status == "active")
                       .order_by(Membership.id)).first()


@pytest.mark.parametrize("ground", FORBIDDEN)
def test_forbidden_grounds_are_refused_citing_the_law_and_recorded(dbs, ground):
    m = _active(dbs)
    with pytest.raises(DomainError) as e:
        ops.end_membership(None, m, ground, dt.date.today(), reason="test")
    err = e.value
    assert err.code == "membership.end.forbidden_ground"
    assert "art 17" in err.source("en") and "农村集体经济组织法" in err.source("zh")
    if ground == "settled_in_town":
        assert "乡村振兴促进法" in err.source("zh")
    dbs.refresh(m)
    assert m.status == "active" and m.end_ground is None
    logged = dbs.scalars(select(AuditLog).where(AuditLog.action == "membership.end.refused",
                                                AuditLog.object_id == str(m.id))).all()
    assert logged and logged[-1].changes["ground"] == ground


def test_unknown_ground_is_refused(dbs):
    with pytest.raises(DomainError) as e:
        ops.end_membership(None, _active(dbs), "moved_away", dt.date.today())
    assert e.value.code == "membership.end.unknown_ground"


def test_a_missing_ground_is_refused_and_recorded_as_missing(dbs):
    """No ground at all is an unknown ground, recorded as empty (not as some placeholder);
    a lawful ground is taken with its blanks stripped (mutation testing of app/grounds.py)."""
    m = _active(dbs)
    with pytest.raises(DomainError) as e:
        ops.end_membership(None, m, None, dt.date.today(), reason="test")
    assert e.value.code == "membership.end.unknown_ground"
    logged = dbs.scalars(select(AuditLog).where(AuditLog.action == "membership.end.refused",
                                                AuditLog.object_id == str(m.id))).all()
    assert logged and logged[-1].changes["ground"] == ""
    ops.end_membership(None, m, "  death ", dt.date.today(), reason="test")
    assert m.status == "ended" and m.end_ground == "death"


@pytest.mark.parametrize("ground,note", [("death", None), ("nationality_lost", None),
                                         ("civil_servant", "公务员录用通知"),
                                         ("law_or_charter", "章程第十二条")])
def test_lawful_grounds_end_the_membership_with_history(dbs, ground, note):
    m = _active(dbs)
    cited = {}
    if ground == "law_or_charter":  # a clause of the collective's own charter register
        cited["charter_clause"] = ops.add_charter_clause(
            None, m.collective, "第十二条", "成员书面申请自愿退出本社，经成员大会确认的，丧失成员身份。",
            dt.date(2020, 1, 1), ends_membership=True, reason="章程登记")
    ops.end_membership(None, m, ground, dt.date.today(), note, reason="test", **cited)
    assert m.status == "ended" and m.end_ground == ground
    assert dbs.scalars(select(AuditLog).where(AuditLog.action == "membership.end",
                                              AuditLog.object_id == str(m.id))).one()


def test_charter_ground_must_cite_its_article(dbs):
    with pytest.raises(DomainError) as e:
        ops.end_membership(None, _active(dbs), "law_or_charter", dt.date.today(), "  ")
    assert e.value.code == "membership.end.charter_basis"


def test_other_membership_needs_a_real_other_membership(dbs):
    m = _active(dbs)
    with pytest.raises(DomainError) as e:
        ops.end_membership(None, m, "other_membership", dt.date.today())
    assert e.value.code == "membership.end.no_other_membership"
    other = dbs.scalars(select(Collective).where(Collective.id != m.collective_id)).first()
    ops.admit(None, m.person, other, "marriage", dt.date.today())
    ops.end_membership(None, m, "other_membership", dt.date.today())
    assert m.status == "ended"


def test_an_ended_membership_cannot_be_ended_again(dbs):
    m = _active(dbs)
    ops.end_membership(None, m, "death", dt.date.today())
    with pytest.raises(DomainError) as e:
        ops.end_membership(None, m, "death", dt.date.today())
    assert e.value.code == "membership.not_active"


@pytest.mark.parametrize("ground", FORBIDDEN + ["anything_else"])
def test_database_refuses_forbidden_grounds_by_direct_sql(dbs, ground):
    m = _active(dbs)
    with pytest.raises(DBAPIError) as e:
        with dbs.begin_nested():
            dbs.execute(text("UPDATE membership SET status='ended', ended_on=current_date, "
                             "end_ground=:g WHERE id=:id"), {"g": ground, "id": m.id})
    assert "art 17" in str(e.value)


def test_database_refuses_deleting_or_rewriting_history(dbs):
    m = _active(dbs)
    with pytest.raises(DBAPIError, match="permission denied"):  # the app's role: no DELETE
        with dbs.begin_nested():
            dbs.execute(text("DELETE FROM membership WHERE id=:id"), {"id": m.id})
    ops.end_membership(None, m, "death", dt.date.today())
    dbs.flush()
    with pytest.raises(DBAPIError, match="never rewritten"):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE membership SET status='active', ended_on=NULL, "
                             "end_ground=NULL WHERE id=:id"), {"id": m.id})


def test_end_form_refuses_a_forged_ground_with_the_law(login_as, dbs):
    m = _active(dbs)
    c = login_as("bureau")
    page = c.get(f"/collectives/{m.collective_id}/members/{m.id}/end")
    assert page.status_code == 200
    from tests.conftest import csrf_from

    r = c.post(f"/collectives/{m.collective_id}/members/{m.id}/end",
               data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                     "ground": "settled_in_town", "ended_on": "2026-01-01", "reason": "x"},
               follow_redirects=True)
    body = r.get_data(as_text=True)
    assert "农村集体经济组织法" in body and "进城落户" in body
    dbs.refresh(m)
    assert m.status == "active"
