"""axe-core on every page type: no serious or critical violation; every form field labelled."""
import pytest

from tests.browser.axe import serious
from tests.conftest import PASSWORD

PAGES = {  # role → the page types it opens
    None: ["/login", "/market"],
    "admin": ["/", "/settings", "/audit", "/admin/users", "/account/password"],
    "bureau": ["/", "/campaigns", "/people", "/collectives", "/imports", "/certificates",
               "/withdrawals", "/compliance", "/map"],
    "farmer": ["/", "/me", "/me/market", "/me/settlement"],
    "exchange": ["/", "/market/review", "/market/mandates"],
    "hukou": ["/", "/settlement", "/settlement/new"],
    "officer": ["/market/collective/new"],
    "supervisor": ["/reports", "/report"],
}


def _login(page, live_server, username):
    page.goto(live_server + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(live_server + "/")


@pytest.mark.parametrize("who", list(PAGES))
def test_no_serious_accessibility_violation(browser, live_server, who):
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    if who:
        _login(page, live_server, who)
    found = {}
    for path in PAGES[who]:
        r = page.goto(live_server + path)
        assert r.status < 400, (who, path, r.status)
        page.wait_for_load_state("networkidle")
        v = serious(page)
        if v:
            found[path] = v
    ctx.close()
    import json

    assert not found, json.dumps(found, ensure_ascii=False, indent=1)


def test_the_map_works_from_the_keyboard(browser, live_server):
    """Tab reaches the map; + zooms in and an arrow key pans it (MapLibre's keyboard handler),
    the zoom buttons are buttons with names."""
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    _login(page, live_server, "bureau")
    page.goto(live_server + "/map")
    page.wait_for_function("() => window.sanquanMap && window.sanquanMap.loaded()",
                           timeout=20000)
    z0 = page.evaluate("window.sanquanMap.getZoom()")
    c0 = page.evaluate("window.sanquanMap.getCenter().toArray()")
    for _ in range(30):  # tab through the page until the map's canvas has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('maplibregl-canvas')"):
            break
    else:
        raise AssertionError("the map canvas is not reachable by Tab")
    page.keyboard.press("Equal")
    page.wait_for_function(f"() => window.sanquanMap.getZoom() > {z0} + 0.5", timeout=5000)
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => window.sanquanMap.getCenter().lng > {c0[0]}", timeout=5000)
    names = page.eval_on_selector_all(".maplibregl-ctrl button",
                                      "els => els.map(e => e.getAttribute('aria-label') || '')")
    assert names and all(names)
    ctx.close()
