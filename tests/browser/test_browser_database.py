"""Browser tests commit (their live server runs in another thread): on their own database."""
import urllib.parse

from tests.browser.conftest import browser_database_url
from tests.conftest import main_test_database_url


def _db(url: str) -> str:
    return urllib.parse.urlsplit(url).path.lstrip("/")


def test_browser_tests_run_on_their_own_database(app, live_server):
    assert _db(app.config["SQLALCHEMY_DATABASE_URI"]) == _db(browser_database_url())
    assert _db(browser_database_url()) != _db(main_test_database_url())
