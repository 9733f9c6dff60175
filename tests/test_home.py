"""The home page starts with the work (待办): the to-do registry, each role's items from the
data, the grouped menu whose every entry opens for its role; the administrators' settings."""
import datetime as dt
import random
import re

import pytest
from sqlalchemy import select, text

from app import todo
from app.audit.models import AuditLog
from app.campaigns import operations as campaigns
from app.errors import DomainError
from app.parcels.models import Parcel, RegistrySetting
from app.settings import operations as settings
from tests.conftest import user

ROLES = ["admin", "bureau", "officer", "farmer", "hukou", "exchange", "auditor", "supervisor"]


def test_registry_keeps_order_replaces_by_name_and_survives_a_failing_provider(app, dbs):
    with app.test_request_context():
        before = todo.providers()
        assert {"campaigns", "imports", "market", "settlement", "withdrawal"} <= set(before)
        n = random.Random(5).randint(1, 99)
        todo.provider("zz-test")(lambda u: [todo.Item("x", n, "/x"), todo.Item("y", 0, "/y")])
        todo.provider("zz-broken")(lambda u: 1 / 0)
        try:
            got = [i for i in todo.items(user("admin")) if i.key == "zz-test"]
            assert [(i.label, i.count) for i in got] == [("x", n)]  # zero counts left out
            todo.provider("zz-test")(lambda u: [todo.Item("z", n + 1, "/z")])  # replaced
            assert [i.count for i in todo.items(user("admin")) if i.key == "zz-test"] == [n + 1]
        finally:
            todo._providers[:] = [p for p in todo._providers if not p[0].startswith("zz-")]
        assert todo.providers() == before


def _objections(dbs, k):
    """A campaign in notice in the officer's village with k open objections."""
    officer = user("officer")
    p = dbs.scalar(select(Parcel).where(Parcel.code.like(officer.jurisdiction_code + "%"),
                                        Parcel.kind == "contract",
                                        Parcel.end_lifespan.is_(None)).order_by(Parcel.code))
    c = campaigns.open_campaign("bureau", p.code[:14])
    campaigns.publish_notice("bureau", c, start=dt.date.today())
    for i in range(k):
        campaigns.lodge_objection("bureau", c, "area", f"面积不符 {i}", "村民", p.code)
    return c


@pytest.mark.parametrize("k", [1, 3])
def test_open_objections_appear_with_their_count_for_bureau_and_the_village_officer(
        app, dbs, login_as, k):
    base = dbs.scalar(text("SELECT count(*) FROM objection WHERE status = 'open'"))
    _objections(dbs, k)
    with app.test_request_context():
        by = {u: {i.key: i.count for i in todo.items(user(u))} for u in
              ("bureau", "officer", "officer2", "farmer", "hukou")}
    assert by["bureau"]["campaigns.objections"] == base + k
    assert by["officer"]["campaigns.objections"] >= k
    assert by["officer2"].get("campaigns.objections", 0) == 0  # another village: not theirs
    assert "campaigns.objections" not in by["farmer"] and "campaigns.objections" not in by["hukou"]
    html = login_as("bureau").get("/").get_data(as_text=True)
    assert html.index('id="todo"') < html.index("tiles")  # the work first, then the overview
    assert re.search(r'data-key="campaigns.objections"><a [^>]*><b class="count">'
                     + str(base + k) + "<", html)


def _nav_links(html):
    nav = html[html.index('<nav id="menu"'):html.index("</nav>")]
    return re.findall(r'href="([^"]+)"', nav)


@pytest.mark.parametrize("who", ROLES)
def test_every_menu_entry_opens_for_its_role(dbs, login_as, who):
    c = login_as(who)
    r = c.get("/")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'id="todo"' in html
    links = _nav_links(html)
    assert len(links) >= 3
    for href in links:
        if href.startswith("/api/docs"):
            continue
        code = c.get(href).status_code
        assert code not in (403, 404, 500), (who, href, code)


# ------------------------------------------------------------------------------ settings


def test_settings_page_lists_every_setting_key_the_features_read(dbs, login_as):
    html = login_as("admin").get("/settings").get_data(as_text=True)
    stored = dbs.scalars(select(RegistrySetting.key)).all()
    for k in stored:
        if k in ("market_demo",):
            continue
        assert f"<code>{k}</code>" in html, k
    for k in ("notice_days", "withdrawal_pilot:140404", "homestead_cap_m2:140404",
              "market_deposit_percent:140404"):
        assert f"<code>{k}</code>" in html
    for who in ("bureau", "farmer", "auditor"):
        assert login_as(who).get("/settings").status_code == 403


def test_a_change_is_validated_audited_with_reason_and_read_by_the_feature(dbs, login_as):
    from tests.conftest import csrf_from

    c = login_as("admin")
    token = csrf_from(c.get("/settings").get_data(as_text=True))
    days = random.Random(8).randint(8, 60)
    old = campaigns.notice_days()
    r = c.post("/settings", data={"key": "notice_days", "value": str(days), "reason": "",
                                  "csrf_token": token})
    assert r.status_code == 422 and campaigns.notice_days() == old  # no reason: refused
    r = c.post("/settings", data={"key": "notice_days", "value": str(days),
                                  "reason": "县农业农村局通知", "csrf_token": token})
    assert r.status_code == 302
    assert campaigns.notice_days() == days  # the campaign reads the new value
    entry = dbs.scalar(select(AuditLog).where(AuditLog.action == "settings.change",
                                              AuditLog.object_id == "notice_days")
                       .order_by(AuditLog.id.desc()))
    assert entry.changes["value"][1] == str(days)
    assert entry.reason == "县农业农村局通知" and entry.actor_name == "admin"
    assert "县农业农村局通知" in c.get("/settings").get_data(as_text=True)


def test_generated_bad_values_are_each_refused_and_change_nothing(dbs):
    rng = random.Random(1717)
    specs = {s.name: s for s in settings.catalogue()}
    for _ in range(60):
        s = rng.choice(list(specs.values()))
        key = settings.key_of(s, "140404")
        before = dbs.get(RegistrySetting, key)
        before = before.value if before else None
        bad = rng.choice(["", "abc", "1e999", "nan", "-1", "99999999", "on/off", " ", "7.5",
                          "<script>"])
        ok = False
        try:
            settings.validate(s, bad)
            ok = True
        except DomainError as e:
            assert e.code in ("settings.value",)
            with pytest.raises(DomainError):
                settings.change(user("admin"), key, bad, "测试")
        if ok:  # some of them are valid for some settings (7.5 m² is a tolerance)
            continue
        after = dbs.get(RegistrySetting, key)
        assert (after.value if after else None) == before
    with pytest.raises(DomainError) as e:
        settings.change(user("admin"), "no_such_setting", "1", "x")
    assert e.value.code == "settings.unknown"
    with pytest.raises(DomainError):
        settings.change(user("admin"), "withdrawal_pilot:999999", "on", "x")  # no such county
