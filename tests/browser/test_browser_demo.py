"""The demo county as a newcomer meets it (deep: it builds its own database with `flask demo
load`'s story, about a minute): each demo role signs in and finds its work on the home page,
the menu on one line at 1280 px and no menu entry answering 403; the tour's screenshots
(docs/tour/, `make tour`) are taken on the way."""
import socket
import threading
import urllib.parse
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, select, text
from werkzeug.serving import make_server

from app import create_app
from app.config import TestConfig
from app.extensions import db
from tests.browser.test_browser_home import _menu_rows
from tests.conftest import PASSWORD, admin_url

pytestmark = pytest.mark.deep
ROOT = Path(__file__).resolve().parents[2]
TOUR = ROOT / "docs" / "tour"
# Every role has work in the demo county.
BUSY = {"admin", "bureau", "officer", "farmer", "hukou", "exchange", "auditor", "supervisor"}
ROLES = ["farmer", "officer", "bureau", "hukou", "exchange", "auditor", "supervisor", "admin"]


def _sibling(url: str, suffix: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=parts.path + suffix))


@pytest.fixture(scope="module")
def demo_server(app):
    """A database of its own (…_demo) with the county and its whole story, served live."""
    base, owner = app.config["SQLALCHEMY_DATABASE_URI"], app.config["MIGRATE_DATABASE_URL"]
    url, owner_url = _sibling(base, "_demo"), _sibling(owner, "_demo")
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    admin = create_engine(admin_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER '
                          f'"{urllib.parse.urlsplit(owner).username}"'))
    admin.dispose()
    sa = create_engine(_sibling(admin_url(base), "_demo"), isolation_level="AUTOCOMMIT")
    with sa.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    sa.dispose()
    demo = create_app({**{k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()},
                       "SQLALCHEMY_DATABASE_URI": url, "MIGRATE_DATABASE_URL": owner_url,
                       "DEMO_PASSWORD": PASSWORD})
    with demo.app_context():
        from flask_migrate import upgrade

        from app.demo import operations as ops

        upgrade()
        ops.generate(4000, seed=2024)
        ops.create_demo_users()
        story = ops.populate(lambda s: None)
        db.session.remove()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server("127.0.0.1", port, demo, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield demo, f"http://127.0.0.1:{port}", story
    server.shutdown()
    with demo.app_context():
        db.engine.dispose()
    admin = create_engine(admin_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _login(page, server, username):
    page.goto(server + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#dashboard-title")).to_be_visible()


def _shot(page, name):
    TOUR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(TOUR / f"{name}.png"))


@pytest.mark.parametrize("who", ROLES)
def test_each_role_finds_its_work_first(browser, demo_server, who):
    _demo, server, _story = demo_server
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    _login(page, server, who)
    items = page.locator("#todo .todo-list li")
    if who in BUSY:
        assert items.count() > 0, who
        counts = [int(x) for x in page.locator("#todo .count").all_inner_texts()]
        assert all(n > 0 for n in counts)
    rows, wraps, _h, width = _menu_rows(page)
    assert rows == 1 and wraps == 0 and width <= 1280
    hrefs = page.eval_on_selector_all("#menu a", "els => els.map(e => e.getAttribute('href'))")
    for href in hrefs:
        if href.startswith("/api/docs"):
            continue
        status = page.request.get(server + href).status
        assert status not in (403, 404, 500), (who, href, status)
    _shot(page, f"home-{who}")
    ctx.close()


def test_tour_pictures(browser, demo_server):
    demo, server, story = demo_server
    with demo.app_context():
        from app.certificates.models import Certificate
        from app.market.models import Auction

        cert = db.session.scalar(select(Certificate).where(Certificate.status == "valid")
                                 .order_by(Certificate.id))
        auction = db.session.scalar(select(Auction).where(Auction.status == "open")
                                    .order_by(Auction.id))
        db.session.remove()
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    _login(page, server, "bureau")
    page.goto(f"{server}/certificates/{cert.id}")
    _shot(page, "certificate")
    page.goto(server + "/map")
    page.wait_for_timeout(1500)  # the tiles draw (a picture, not an assertion)
    _shot(page, "map")
    page.goto(f"{server}/market/auctions/{auction.id}")
    expect(page.locator("#countdown")).to_be_visible()
    _shot(page, "bidding")
    ctx.close()
    _write_tour()


def _write_tour():
    shots = sorted(p.name for p in TOUR.glob("*.png"))
    lines = ["# A tour of Sanquan", "",
             "Screenshots taken by the browser tests on the demo county "
             "(`make tour` regenerates them: tests/browser/test_browser_demo.py).", ""]
    titles = {"home-farmer": "The farmer's home page", "home-officer": "The village officer's",
              "home-bureau": "The land bureau's", "home-hukou": "The hukou officer's",
              "home-exchange": "The exchange operator's", "home-auditor": "The auditor's",
              "home-supervisor": "The compliance supervisor's", "home-admin": "The administrator's",
              "map": "The map", "certificate": "A certificate", "bidding": "Live bidding"}
    for stem, title in titles.items():
        if f"{stem}.png" in shots:
            lines += [f"## {title}", "", f"![{title}](tour/{stem}.png)", ""]
    (TOUR.parent / "tour.md").write_text("\n".join(lines), encoding="utf-8")



def test_the_story_is_in_every_state_and_loads_once(demo_server):
    demo, _server, story = demo_server
    with demo.app_context():
        q = lambda sql: dict(db.session.execute(text(sql)).all())  # noqa: E731
        assert q("SELECT status, count(*) FROM campaign GROUP BY 1").keys() >= {"registered",
                                                                               "notice"}
        assert q("SELECT status, count(*) FROM objection GROUP BY 1")["open"] >= 1
        assert story["campaigns"]["certificates"] == db.session.scalar(text(
            "SELECT count(*) FROM certificate WHERE status = 'valid'"))
        assert db.session.scalar(text("SELECT count(*) FROM import_fault "
                                      "WHERE resolved_at IS NULL")) == story["campaigns"]["faults"]
        assert q("SELECT status, count(*) FROM settlement_application GROUP BY 1").keys() == {
            "approved", "submitted", "rejected"}
        assert q("SELECT status, count(*) FROM withdrawal GROUP BY 1").keys() >= {"check",
                                                                                 "cooling"}
        listings = q("SELECT status, count(*) FROM market_listing GROUP BY 1")
        assert listings.keys() >= {"draft", "review", "returned", "announced", "competition",
                                   "negotiation", "withdrawn"}
        assert q("SELECT status, count(*) FROM market_auction GROUP BY 1").keys() >= {"open",
                                                                                     "closed"}
        assert db.session.scalar(text("SELECT count(*) FROM market_contract WHERE status = "
                                      "'filed' AND management_right_uid IS NOT NULL")) == 1
        farmer = db.session.execute(text(
            "SELECT household_code FROM app_user WHERE username = 'farmer'")).scalar()
        kinds = {r[0] for r in db.session.execute(text(
            "SELECT r.kind FROM land_right r JOIN certificate c ON c.right_uid = r.uid "
            "AND c.status = 'valid' WHERE r.holder_household_code = :h"), {"h": farmer})}
        assert kinds == {"land_contract", "homestead"}
        before = db.session.scalar(text("SELECT count(*) FROM audit_log"))
        from app.demo import operations as ops

        again = ops.populate(lambda s: None)
        assert all(not v for v in again.values())
        assert db.session.scalar(text("SELECT count(*) FROM audit_log")) == before
        db.session.remove()
