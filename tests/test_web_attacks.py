"""Attacks on today's web surface: the settings page, request ids, the demo accounts in
production, the to-do counts (each test was seen to fail before its fix)."""
import random

import pytest
from sqlalchemy import select

from app.audit.models import AuditLog
from app.errors import DomainError
from app.observability import new_request_id
from app.parcels.models import RegistrySetting
from app.settings import operations as settings
from tests.conftest import csrf_from, user

# ------------------------------------------------------------------------------ settings

@pytest.mark.parametrize("key", ["notice_days:", "withdrawal_cooling_days:"])
def test_a_global_key_with_an_empty_county_is_not_a_setting(dbs, key):
    """`notice_days:` used to be accepted and stored as a new key nobody reads (an audited
    'change' that changed nothing the features use)."""
    with pytest.raises(DomainError) as e:
        settings.change(user("admin"), key, "20", "县里通知")
    assert e.value.code == "settings.unknown"
    assert dbs.get(RegistrySetting, key) is None


def test_the_voluntariness_check_window_cannot_be_switched_off(dbs):
    spec = {s.name: s for s in settings.catalogue()}["withdrawal_check_window_days"]
    for bad in ("0", "1", str(int(spec.lo) - 1)):
        with pytest.raises(DomainError):
            settings.validate(spec, bad)
    assert settings.validate(spec, str(int(spec.lo))) == str(int(spec.lo))


def test_an_edit_made_on_a_stale_page_is_refused_not_lost(dbs, login_as):
    """Two administrators open the page; the second one's save must not silently overwrite
    the first one's change (a lost update the audit would record as 'old' = the first's)."""
    c = login_as("admin")
    html = c.get("/settings").get_data(as_text=True)
    token = csrf_from(html)
    seen = dbs.get(RegistrySetting, "notice_days")
    seen = seen.value if seen else ""
    rng = random.Random(31)
    first, second = rng.sample(range(8, 60), 2)
    settings.change(user("admin"), "notice_days", str(first), "第一位管理员")  # meanwhile
    r = c.post("/settings", data={"key": "notice_days", "value": str(second),
                                  "reason": "第二位管理员", "expected": seen,
                                  "csrf_token": token})
    assert r.status_code == 409
    assert dbs.get(RegistrySetting, "notice_days").value == str(first)
    # with the current value seen, the change goes through
    r = c.post("/settings", data={"key": "notice_days", "value": str(second),
                                  "reason": "第二位管理员", "expected": str(first),
                                  "csrf_token": token})
    assert r.status_code == 302
    assert dbs.get(RegistrySetting, "notice_days").value == str(second)
    e = dbs.scalar(select(AuditLog).where(AuditLog.object_id == "notice_days")
                   .order_by(AuditLog.id.desc()))
    assert e.changes["value"] == [str(first), str(second)]


def test_the_settings_form_carries_the_value_it_showed(dbs, login_as):
    html = login_as("admin").get("/settings").get_data(as_text=True)
    assert html.count('name="expected"') == len(settings.rows())


# ------------------------------------------------------------------------------ request id

@pytest.mark.parametrize("given", ["abc\n", "abc\r\n", "a" * 64 + "\n", "ok\nX-Evil: 1"])
def test_a_request_id_with_a_line_break_is_replaced(given):
    """`$` matches before a final newline: "abc\\n" passed the check and went into the
    response header and every log line."""
    rid = new_request_id(given)
    assert rid != given and "\n" not in rid and "\r" not in rid


def test_the_response_never_echoes_a_line_break(client):
    # a server hands the header value on as it came (the test client would refuse to send it)
    r = client.get("/healthz", environ_overrides={"HTTP_X_REQUEST_ID": "abc\n"})
    assert r.status_code == 200
    assert "\n" not in r.headers["X-Request-ID"] and r.headers["X-Request-ID"] != "abc"


# ------------------------------------------------------------------------------ demo accounts

def test_the_demo_makes_no_account_in_production(app, dbs, monkeypatch):
    """The start-up check looks for the demo password only at start-up; `flask demo load`
    run afterwards on a production server made accounts with the shared password."""
    from app.auth.models import User
    from app.demo import operations as demo

    farmer = dbs.scalar(select(User).where(User.username == "farmer"))
    farmer.username = "farmer-renamed"  # so that the demo would make a "farmer" again
    dbs.flush()
    monkeypatch.setitem(app.config, "ENV_NAME", "production")
    with pytest.raises(demo.DemoInProduction):
        demo.create_demo_users()
    assert dbs.scalar(select(User.id).where(User.username == "farmer")) is None
    r = app.test_cli_runner().invoke(args=["demo", "load", "--parcels", "10"])
    assert r.exit_code != 0 and "production" in r.output


def test_a_demo_account_is_found_among_many_users(dbs):
    """The production check read only 200 users in table order: a demo account behind them
    (a register with a few hundred officers, the demo loaded after them) passed."""
    from werkzeug.security import generate_password_hash

    from app import security
    from app.auth.models import User

    cheap = "pbkdf2:sha256:1"  # one iteration: the test checks hundreds of them
    other = generate_password_hash("someone-else-1", method=cheap)
    dbs.execute(select(User).where(User.username == "supervisor")).scalar_one().username = "s-0"
    n = random.Random(12).randint(201, 230)
    dbs.add_all(User(username=f"officer-{i:04d}", display_name=f"乡镇干部{i}",
                     password_hash=other, role="bureau_staff", jurisdiction_code="140404")
                for i in range(n))
    dbs.flush()
    # the demo loaded after them: its supervisor with the demo password
    dbs.add(User(username="supervisor", display_name="监督员", role="compliance_supervisor",
                 jurisdiction_code="140400",
                 password_hash=generate_password_hash(security.DEMO_DEFAULT, method=cheap)))
    dbs.flush()
    assert "supervisor" in security.users_with_password(dbs, {security.DEMO_DEFAULT})


# ------------------------------------------------------------------------------ settings history

def test_every_value_a_setting_had_is_kept_with_who_and_why(dbs):
    from sqlalchemy import text

    rng = random.Random(77)
    key = "withdrawal_cooling_days"
    start = len(settings.versions(key))
    values = rng.sample(range(15, 365), 3)
    for i, v in enumerate(values):
        settings.change(user("admin"), key, str(v), f"县政府文件 第{i}号")
    got = settings.versions(key)[start:]
    assert [(g.value, g.actor, g.reason) for g in got] == [
        (str(v), "admin", f"县政府文件 第{i}号") for i, v in enumerate(values)]
    # a write that bypasses the settings page is versioned too (who: the database user)
    dbs.execute(text("UPDATE registry_setting SET value = '99' WHERE key = :k"), {"k": key})
    last = settings.versions(key)[-1]
    assert last.value == "99" and last.actor is None and last.db_user
    # clearing an optional setting is a version too (NULL: the default applies again)
    cap = "homestead_cap_m2:140404"
    settings.change(user("admin"), cap, "200", "省标准")
    settings.change(user("admin"), cap, "", "省标准取消")
    assert [v.value for v in settings.versions(cap)][-2:] == ["200.0", None]


@pytest.mark.parametrize("sql", [
    "UPDATE registry_setting_version SET value = '1'",
    "DELETE FROM registry_setting_version",
    "INSERT INTO registry_setting_version (key, value, db_user) VALUES ('notice_days', '1', 'x')",
])
def test_the_app_cannot_rewrite_a_settings_history(dbs, sql):
    from sqlalchemy import exc, text

    settings.change(user("admin"), "notice_days", "21", "为了有一条历史")
    with pytest.raises(exc.DBAPIError), dbs.begin_nested():
        dbs.execute(text(sql))


def test_an_optional_setting_can_be_cleared_from_the_page(dbs, login_as):
    """Clearing the homestead cap (blank: no cap applies) deleted the row, which the app role
    had no right to do: 500."""
    c = login_as("admin")
    token = csrf_from(c.get("/settings").get_data(as_text=True))
    key = "homestead_cap_m2:140404"
    cap = random.Random(3).randint(50, 1000)
    for value, reason in ((str(cap), "省标准"), ("", "标准废止")):
        r = c.post("/settings", data={"key": key, "value": value, "reason": reason,
                                      "csrf_token": token})
        assert r.status_code == 302, r.status_code
    assert dbs.get(RegistrySetting, key) is None


# ------------------------------------------------------------------------------ to-do counts

def test_a_notice_on_its_last_day_is_running_not_ready_to_register(app, dbs):
    """The to-do said "ready to register" on the notice's last day (notice_end <= today),
    while registering is refused until the day after (campaigns.notice_has_run)."""
    import datetime as dt

    from app.campaigns import operations as campaigns
    from app.campaigns.todo import campaign_work
    from app.parcels.models import Parcel

    officer = user("officer")
    p = dbs.scalar(select(Parcel).where(Parcel.code.like(officer.jurisdiction_code + "%"),
                                        Parcel.kind == "contract",
                                        Parcel.end_lifespan.is_(None)).order_by(Parcel.code))
    days = random.Random(4).randint(7, 30)
    today = dt.date.today()
    c = campaigns.open_campaign("bureau", p.code[:14])
    campaigns.publish_notice("bureau", c, start=today - dt.timedelta(days=days), days=days)
    assert c.notice_end == today
    with app.test_request_context():
        def counts(day):
            return {i.key: i.count for i in campaign_work(officer, day)}
        last_day, day_after = counts(today), counts(today + dt.timedelta(days=1))
    assert not campaigns.notice_has_run(c, today)
    assert day_after["campaigns.register"] == last_day["campaigns.register"] + 1
    assert last_day["campaigns.notice"] == day_after["campaigns.notice"] + 1


# ------------------------------------------------------------------------------ /metrics

@pytest.mark.parametrize("header", ["X-Real-IP", "Via", "True-Client-IP"])
def test_metrics_refuse_a_request_relayed_by_a_local_proxy(app, header):
    """nginx with `proxy_set_header X-Real-IP $remote_addr` and no X-Forwarded-For: the peer is
    loopback and the metrics went to any client on the internet."""
    c = app.test_client()
    assert c.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert c.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"},
                 headers={header: "203.0.113.9"}).status_code == 404


def test_behind_trusted_proxies_only_the_token_opens_the_metrics(app, monkeypatch):
    monkeypatch.setitem(app.config, "TRUSTED_PROXIES", 1)
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "t0ken-" + str(random.random()))
    c = app.test_client()
    assert c.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 404
    assert c.get("/metrics", environ_base={"REMOTE_ADDR": "::ffff:127.0.0.1"}).status_code == 404
    assert c.get("/metrics", headers={"X-Metrics-Token": app.config["METRICS_TOKEN"]},
                 environ_base={"REMOTE_ADDR": "10.0.0.8"}).status_code == 200


# ------------------------------------------------------------------------------ charts

@pytest.mark.parametrize("n", [1, 4, 5, 13])
def test_every_township_of_the_legend_is_inside_the_chart_and_names_are_escaped(n):
    import re
    import xml.dom.minidom

    from app.charts import grouped_bars

    rng = random.Random(n)
    names = [f'乡{i}<script>"&' for i in range(n)]
    months = ["2026-09", "2026-10"]
    svg = grouped_bars("<b>标题</b>", months, {t: [rng.uniform(0, 1e9) for _ in months]
                                              for t in names})
    doc = xml.dom.minidom.parseString(svg)  # well-formed: nothing escaped its text
    assert "<script>" not in svg and not doc.getElementsByTagName("script")
    root = doc.documentElement
    w, h = float(root.getAttribute("width")), float(root.getAttribute("height"))
    legend = [t for t in doc.getElementsByTagName("text") if t.getAttribute("font-size") == "11"]
    assert [t.firstChild.data for t in legend] == names
    for t in legend:
        assert 0 <= float(t.getAttribute("x")) < w - 20 and float(t.getAttribute("y")) < h
    for r in doc.getElementsByTagName("rect"):  # bars stay below the legend, inside the chart
        y, rh = float(r.getAttribute("y")), float(r.getAttribute("height"))
        assert rh >= 0 and y + rh <= h
    bars = [r for r in doc.getElementsByTagName("rect") if r.getElementsByTagName("title")]
    legend_bottom = max(float(t.getAttribute("y")) for t in legend)
    assert all(float(r.getAttribute("y")) >= legend_bottom for r in bars)
    assert re.search(r'aria-label="&lt;b&gt;', svg)


# ------------------------------------------------------------------------------ market CLI setting

@pytest.mark.parametrize("name,bad", [("announcement_days", "1"), ("deposit_percent", "500"),
                                      ("risk_deposit_months", "24"), ("method", "lottery"),
                                      ("sign_days", "七")])
def test_the_market_cli_cannot_set_a_value_the_settings_page_refuses(app, dbs, name, bad):
    """`flask market setting announcement_days 140404 1` wrote a 1-day announcement (the law:
    at least 7 working days) with no check at all."""
    from app.market import operations as market

    key = f"market_{name}:140404"
    before = dbs.get(RegistrySetting, key)
    before = before.value if before else None
    spec, _c = settings.spec_of(key)
    with pytest.raises(DomainError):
        settings.validate(spec, bad)  # the page refuses it…
    with pytest.raises(DomainError):
        market.set_setting("market-cli", name, "140404", bad)  # …and so does the market
    r = app.test_cli_runner().invoke(args=["market", "setting", name, "140404", bad])
    assert r.exit_code != 0
    after = dbs.get(RegistrySetting, key)
    assert (after.value if after else None) == before


def test_a_first_market_setting_is_audited_with_no_old_value(dbs):
    from app.market import operations as market

    key = "market_sign_days:140404"
    assert dbs.get(RegistrySetting, key) is None
    n = random.Random(2).randint(1, 60)
    market.set_setting("market-cli", "sign_days", "140404", n, "测试")
    e = dbs.scalar(select(AuditLog).where(AuditLog.object_id == key)
                   .order_by(AuditLog.id.desc()))
    assert e.changes["value"] == [None, str(n)]  # it said [n, n]: as if nothing had changed


def test_only_an_administrator_with_the_form_token_changes_a_setting(app, dbs, login_as):
    before = dbs.get(RegistrySetting, "notice_days")
    before = before.value if before else None
    form = {"key": "notice_days", "value": "45", "reason": "越权"}
    anon = app.test_client()
    assert anon.post("/settings", data=form).status_code in (302, 400, 401, 403)
    assert anon.get("/settings").status_code in (302, 401)
    admin = login_as("admin")
    assert admin.post("/settings", data=form).status_code == 400  # no CSRF token
    for who in ("bureau", "officer", "auditor", "exchange"):
        c = login_as(who)
        token = csrf_from(c.get("/").get_data(as_text=True))
        assert c.post("/settings", data={**form, "csrf_token": token}).status_code == 403
    after = dbs.get(RegistrySetting, "notice_days")
    assert (after.value if after else None) == before


def test_the_open_import_faults_are_counted_from_their_own_index(dbs):
    """The bureau's to-do counts open faults on every home page visit; without an index of the
    open ones it read every fault of every delivery."""
    from sqlalchemy import text

    dbs.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(dbs.scalars(text("""EXPLAIN SELECT count(*) FROM import_fault f
        JOIN import_batch b ON b.id = f.batch_id
        WHERE f.resolved_at IS NULL AND b.status NOT IN ('refused', 'failed')""")))
    assert "ix_import_fault_open" in plan


@pytest.mark.deep
def test_two_first_writes_of_a_setting_at_once_neither_fails(app):
    """Two administrators set a county's homestead cap (no row yet) at the same moment: both
    read "no row" (FOR UPDATE locks nothing), both insert, the second died on the primary key
    (a 500).  Now the second waits for the first and then changes its value."""
    import threading
    import time

    from sqlalchemy import text

    from app.extensions import db

    key = "homestead_cap_m2:140404"
    errors, done_a = [], threading.Event()
    b_waiting = threading.Event()

    def writer(value, first):
        with app.app_context():
            try:
                settings.change(user("admin"), key, value, "并发测试")
                if first:
                    done_a.set()
                    b_waiting.wait(20)  # commit only once the other writer is blocked
                db.session.commit()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
                db.session.rollback()
            finally:
                done_a.set()
                db.session.remove()

    a = threading.Thread(target=writer, args=("300", True))
    a.start()
    done_a.wait(20)
    b = threading.Thread(target=writer, args=("400", False))
    b.start()
    try:
        with app.app_context():
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not db.session.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")):
                db.session.rollback()
            db.session.remove()
        b_waiting.set()
        a.join(30)
        b.join(30)
        assert not errors, errors
        with app.app_context():
            assert db.session.get(RegistrySetting, key).value == "400.0"
    finally:
        b_waiting.set()
        with app.app_context():
            db.session.execute(text("DELETE FROM registry_setting WHERE key = :k"), {"k": key})
            db.session.commit()


# ------------------------------------------------------------------------------ demo, interrupted

@pytest.mark.deep
def test_an_interrupted_demo_load_is_completed_without_a_village_twice(app, dbs):
    """`flask demo load` killed after some villages (each committed): `--if-empty` found data
    and stopped short (the county stayed smaller than planned, for ever); without it a second
    load generated the whole plan again on top of it."""
    from app.demo import operations as demo

    have = demo.demo_villages()
    assert have >= 1
    parcels = (have + 1) * demo.PARCELS_PER_VILLAGE  # a plan one village bigger: one missing
    assert demo.missing_villages(parcels) == 1
    made = demo.complete_county(parcels, seed=5)  # what `demo load --if-empty` now does
    assert made["villages"] == 1
    assert demo.demo_villages() == have + 1 and demo.missing_villages(parcels) == 0
    assert demo.complete_county(parcels, seed=5) is None  # nothing twice
    assert demo.demo_villages() == have + 1
