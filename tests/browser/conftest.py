"""Debian's Chromium driven by Playwright, against an app on a database of its own.

Browser tests drive a live server in another thread, so what they do is committed: they get
their own database (TEST_BROWSER_DATABASE_URL, default: the test database's name + `_browser`
on the same server), created if missing by `scripts/pg.sh ensure`, migrated and seeded exactly
as the main test database is (under xdist: each worker's a copy, `sanquan_test_gw0_browser`, as
tests/conftest.py says).  The main test database never sees their rows, so no other test has to
subtract them."""
import os
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from tests.conftest import WORKER, app_on, build_app, for_worker, main_test_database_url, serve

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]


def browser_database_url() -> str:
    if os.environ.get("TEST_BROWSER_DATABASE_URL"):
        return for_worker(os.environ["TEST_BROWSER_DATABASE_URL"])
    parts = urllib.parse.urlsplit(main_test_database_url())
    return urllib.parse.urlunsplit(parts._replace(path=parts.path + "_browser"))


@pytest.fixture(scope="session")
def app():
    """Overrides tests/conftest.py's `app` for the browser tests (and so their `dbs`,
    `login_as`, `live_server`)."""
    url = browser_database_url()
    if WORKER:
        return app_on(url)
    subprocess.run([str(ROOT / "scripts" / "pg.sh"), "ensure", url], check=True,
                   capture_output=True)
    return build_app(url)


@pytest.fixture(scope="session")
def live_server(app):
    yield from serve(app)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-quic"])
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    ctx = browser.new_context(locale="zh-CN")
    pg = ctx.new_page()
    yield pg
    ctx.close()
